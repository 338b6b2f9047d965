"""`kit prep` on the command line: per-file problems, summary, exit status."""
import json
import re
import subprocess
import sys

from conftest import LAW_PDFS


def _run(*args):
    return subprocess.run([sys.executable, "-m", "kit.cli", "prep", *map(str, args)], capture_output=True, text=True)


def test_cli_reports_bad_files_prints_the_summary_and_exits_1(shared_dir, tmp_path):
    out = tmp_path / "corpus.jsonl"
    good = LAW_PDFS / "中华人民共和国就业促进法_2007.pdf"
    bad = tmp_path / "minutes.pdf"
    bad.write_text("会议纪要（其实是文本文件）", encoding="utf-8")
    r = _run(good, bad, "-o", out, "--max-tokens", "200", "--workers", "1")
    assert r.returncode == 1, r.stderr
    assert [ln for ln in r.stderr.splitlines() if "minutes.pdf" in ln] == [f"{bad}: not a PDF (starts with {bad.read_bytes()[:16]!r})"]
    rows = [json.loads(x) for x in open(out, encoding="utf-8")]
    assert rows and {x["doc"] for x in rows} == {good.stem}
    assert re.search(rf"^2 files, 6 pages, {len(rows)} chunks; 1 files failed, 0 pages skipped$", r.stdout, re.M), r.stdout


def test_cli_exits_0_when_every_file_is_good(shared_dir, tmp_path):
    out = tmp_path / "corpus.jsonl"
    r = _run(LAW_PDFS / "中华人民共和国劳动合同法实施条例_excerpt.pdf", "-o", out, "--max-tokens", "300")
    assert r.returncode == 0, r.stderr
    assert re.search(r"^1 files, \d+ pages, \d+ chunks; 0 files failed, 0 pages skipped$", r.stdout, re.M), r.stdout
    assert out.stat().st_size > 0


def test_cli_help_has_an_example():
    r = subprocess.run([sys.executable, "-m", "kit.cli", "prep", "--help"], capture_output=True, text=True)
    assert r.returncode == 0 and "Example" in r.stdout
