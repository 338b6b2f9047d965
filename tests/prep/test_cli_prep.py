"""`kit prep` on the command line: per-file problems, summary, exit status."""
import json
import subprocess
import sys

from conftest import BROKEN_PDFS, LAW_PDFS


def test_cli_reports_broken_files_and_exits_1(shared_dir, tmp_path):
    out = tmp_path / "corpus.jsonl"
    good = LAW_PDFS / "中华人民共和国就业促进法_2007.pdf"
    broken = sorted(BROKEN_PDFS.glob("*.pdf"))[0]
    r = subprocess.run([sys.executable, "-m", "kit.cli", "prep", str(good), str(broken), "-o", str(out),
                        "--max-tokens", "200"], capture_output=True, text=True)
    assert r.returncode == 1, r.stderr
    assert broken.name in r.stderr and "ToUnicode" in r.stderr
    assert "2 files" in r.stdout and "1 files failed" in r.stdout
    rows = [json.loads(x) for x in open(out, encoding="utf-8")]
    assert rows and {x["doc"] for x in rows} == {good.stem}


def test_cli_help_has_an_example():
    r = subprocess.run([sys.executable, "-m", "kit.cli", "prep", "--help"], capture_output=True, text=True)
    assert r.returncode == 0 and "Example" in r.stdout
