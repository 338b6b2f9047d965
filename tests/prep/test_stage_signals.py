"""`kit prep --workers 2` stopped by SIGKILL, SIGTERM or Ctrl-C leaves no worker running; bad input on the
command line is one line per file and an honest exit status."""
import os
import signal
import subprocess
import sys
import time

import pytest

from conftest import DATA, LAW_PDFS
from helpers.bad_pdfs import write_bad_files
from helpers.signals import ctrl_c_default

REPORTS = sorted((DATA / "pdfs" / "annual_reports").glob("*.pdf"))


def _children(pid: int) -> set[int]:
    out = set()
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            try:
                with open(f"/proc/{entry}/stat") as f:
                    fields = f.read().rsplit(")", 1)[1].split()
            except OSError:
                continue
            if int(fields[1]) == pid:
                out.add(int(entry))
    return out


def _alive(pid: int) -> bool:
    try:
        with open(f"/proc/{pid}/stat") as f:
            return f.read().rsplit(")", 1)[1].split()[0] != "Z"   # a zombie has exited
    except OSError:
        return False


@pytest.mark.parametrize("sig", [signal.SIGKILL, signal.SIGTERM, signal.SIGINT], ids=lambda s: s.name)
def test_no_worker_outlives_a_stopped_prep(shared_dir, tmp_path, sig):
    if len(REPORTS) < 3:
        pytest.skip("annual reports missing")
    proc = subprocess.Popen([sys.executable, "-m", "kit.cli", "prep", *map(str, REPORTS[:3]), "-o",
                             str(tmp_path / "corpus.jsonl"), "--workers", "2", "--ocr", "off"],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, preexec_fn=ctrl_c_default)
    workers: set[int] = set()
    deadline = time.monotonic() + 60
    while len(workers) < 2 and time.monotonic() < deadline and proc.poll() is None:
        workers = {p for p in _children(proc.pid) if _alive(p)}
        time.sleep(0.1)
    assert len(workers) == 2, "the pool never started"
    time.sleep(1.0)
    proc.send_signal(sig)
    proc.communicate(timeout=30)
    deadline = time.monotonic() + 10
    while any(_alive(p) for p in workers) and time.monotonic() < deadline:
        time.sleep(0.1)
    assert not [p for p in workers if _alive(p)]
    assert proc.returncode != 0 and not (tmp_path / "corpus.jsonl").exists()


def _run(*args):
    return subprocess.run([sys.executable, "-m", "kit.cli", "prep", *map(str, args)], capture_output=True, text=True)


def test_cli_a_pdf_cut_short_with_an_end_marker_fails_and_no_stale_output_survives(shared_dir, tmp_path):
    out = tmp_path / "corpus.jsonl"
    r = _run(LAW_PDFS / "中华人民共和国就业促进法_2007.pdf", "-o", out, "--workers", "1")
    assert r.returncode == 0 and out.exists()
    write_bad_files(tmp_path)
    r = _run(tmp_path / "cut_eof.pdf", "-o", out, "--workers", "1")
    assert r.returncode == 1
    assert "1 files, 0 pages, 0 chunks; 1 files failed" in r.stdout
    assert len([ln for ln in r.stderr.splitlines() if "cut_eof.pdf" in ln]) == 1
    assert not out.exists()
