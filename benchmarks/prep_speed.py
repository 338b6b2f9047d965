"""Prep speed: `kit prep` pages/s on the annual reports, against plain pdfplumber text extraction
(`page.extract_text()` over the same pages, one process) measured in the same run; goal >= 10 pages/s.

    .venv/bin/python benchmarks/prep_speed.py [--dir ../shared/data/pdfs/annual_reports] [--workers 0]

Query generation speed has its own script: benchmarks/querygen_speed.py.
"""
from __future__ import annotations

import argparse
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


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--dir", default=str(REPO.parent / "shared/data/pdfs/annual_reports"))
    ap.add_argument("--workers", type=int, default=0)
    ap.add_argument("--skip-peer", action="store_true")
    args = ap.parse_args()
    from kit.prep import PrepOptions, prep

    files = sorted(Path(args.dir).glob("*.pdf"))
    with tempfile.TemporaryDirectory() as d:
        t0 = time.perf_counter()
        r = prep(files, Path(d) / "corpus.jsonl", PrepOptions(workers=args.workers, progress=False), echo=lambda m: None)
        kit_s = time.perf_counter() - t0
    print(f"kit prep: {r.summary()} in {kit_s:.1f}s = {r.pages / kit_s:.2f} pages/s "
          f"(goal >= 10 pages/s: ratio {r.pages / kit_s / 10:.2f})")
    if not args.skip_peer:
        t0 = time.perf_counter()
        pages = plain_pdfplumber(files)
        peer_s = time.perf_counter() - t0
        print(f"peer, plain pdfplumber extract_text (1 process, no cleaning/tables/chunking): {pages} pages in "
              f"{peer_s:.1f}s = {pages / peer_s:.2f} pages/s; kit/peer wall-time ratio {kit_s / peer_s:.2f}")


if __name__ == "__main__":
    main()
