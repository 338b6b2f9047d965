"""Prep speed: `kit prep` pages/s on the annual reports, against plain pdfplumber text extraction
(`page.extract_text()` over the same pages, one process) measured in the same run; goal >= 10 pages/s.

    .venv/bin/python benchmarks/prep_speed.py [--dir ../shared/data/pdfs/annual_reports] [--workers 0]

Query generation speed has its own script: benchmarks/querygen_speed.py.
"""
from __future__ import annotations

import argparse
import os
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent


def plain_pdfplumber(files) -> int:
    import pdfplumber
    pages = 0
    for f in files:
        with pdfplumber.open(f) as pdf:
            for p in pdf.pages:
                p.extract_text()
                pages += 1
    return pages


def cpu_seconds() -> float:
    """CPU time of this process and its reaped children (the prep worker pool): unlike wall time it does not
    grow when other jobs share the two cores, so it shows what an idle machine would do."""
    import resource
    own, kids = resource.getrusage(resource.RUSAGE_SELF), resource.getrusage(resource.RUSAGE_CHILDREN)
    return own.ru_utime + own.ru_stime + kids.ru_utime + kids.ru_stime


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--dir", default=str(REPO.parent / "shared/data/pdfs/annual_reports"))
    ap.add_argument("--workers", type=int, default=0, help="prep processes (0 = one per core)")
    ap.add_argument("--skip-peer", action="store_true")
    args = ap.parse_args()
    from kit.prep import PrepOptions, prep

    cores = os.cpu_count() or 1
    files = sorted(Path(args.dir).glob("*.pdf"))
    print(f"{len(files)} PDFs in {args.dir}; {cores} cores; load average before: "
          f"{' '.join(f'{x:.1f}' for x in os.getloadavg())}")
    with tempfile.TemporaryDirectory() as d:
        c0, t0 = cpu_seconds(), time.perf_counter()
        r = prep(files, Path(d) / "corpus.jsonl", PrepOptions(workers=args.workers, progress=False),
                 echo=lambda m: None)
        kit_s, kit_cpu = time.perf_counter() - t0, cpu_seconds() - c0
    kit_rate = r.pages / kit_s
    print(f"kit prep (workers={args.workers or min(cores, len(files))}): {r.summary()}")
    print(f"  wall {kit_s:.1f}s = {kit_rate:.2f} pages/s; goal >= 10 pages/s: ratio {kit_rate / 10:.2f} "
          f"({'met' if kit_rate >= 10 else 'NOT met'})")
    print(f"  cpu {kit_cpu:.1f}s = {kit_cpu / r.pages * 1000:.0f} ms/page; on {cores} idle cores at most "
          f"{r.pages / (kit_cpu / cores):.2f} pages/s (projection from CPU time, not a measurement)")
    if not args.skip_peer:
        c0, t0 = cpu_seconds(), time.perf_counter()
        pages = plain_pdfplumber(files)
        peer_s, peer_cpu = time.perf_counter() - t0, cpu_seconds() - c0
        print(f"peer, plain pdfplumber page.extract_text() (1 process; no tables, cleaning or chunking): "
              f"{pages} pages")
        print(f"  wall {peer_s:.1f}s = {pages / peer_s:.2f} pages/s; cpu {peer_cpu / pages * 1000:.0f} ms/page")
        print(f"  kit/peer: wall-time ratio {kit_s / peer_s:.2f} (kit uses {args.workers or min(cores, len(files))} "
              f"processes), CPU-per-page ratio {(kit_cpu / r.pages) / (peer_cpu / pages):.2f}")
    print(f"load average after: {' '.join(f'{x:.1f}' for x in os.getloadavg())}")


if __name__ == "__main__":
    main()
