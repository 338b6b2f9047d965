"""Prep speed: `kit prep` pages/s on the annual reports (OCR off, as their pages all have a text layer),
against plain pdfplumber text extraction (`page.extract_text()` over the same pages, one process) measured in
the same run; goal >= 10 pages/s. Then OCR speed: pages of a statute rendered at 150 dpi into an image-only PDF
(a scan, as a copier makes it), read back by `kit prep` with `ocr: auto` (RapidOCR on the CPU).

    .venv/bin/python benchmarks/prep_speed.py [--dir ../shared/data/pdfs/annual_reports] [--workers 0] \
        [--ocr-pages 8]

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
    ap.add_argument("--ocr-pages", type=int, default=8, help="scanned pages for the OCR measurement (0 = skip)")
    args = ap.parse_args()
    from kit.prep import PrepOptions, prep

    cores = os.cpu_count() or 1
    files = sorted(Path(args.dir).glob("*.pdf"))
    print(f"{len(files)} PDFs in {args.dir}; {cores} cores; load average before: "
          f"{' '.join(f'{x:.1f}' for x in os.getloadavg())}")
    with tempfile.TemporaryDirectory() as d:
        c0, t0 = cpu_seconds(), time.perf_counter()
        r = prep(files, Path(d) / "corpus.jsonl", PrepOptions(workers=args.workers, progress=False, ocr="off"),
                 echo=lambda m: None)
        kit_s, kit_cpu = time.perf_counter() - t0, cpu_seconds() - c0
    kit_rate = r.pages / kit_s
    print(f"kit prep (workers={args.workers or min(cores, len(files))}): {r.summary()}")
    print(f"  wall {kit_s:.1f}s = {kit_rate:.2f} pages/s; goal >= 10 pages/s: ratio {kit_rate / 10:.2f} "
          f"({'met' if kit_rate >= 10 else 'NOT met'})")
    print(f"  cpu {kit_cpu:.1f}s = {kit_cpu / r.pages * 1000:.0f} ms/page; on {cores} idle cores at most "
          f"{r.pages / (kit_cpu / cores):.2f} pages/s (projection from CPU time, not a measurement)")
    print(f"  fidelity per file: " + ", ".join(f"{Path(f).name.split('__')[3] if '__' in f else Path(f).stem} "
                                             f"{v:.2%}" for f, v in sorted(r.fidelity.items())))
    if not args.skip_peer:
        c0, t0 = cpu_seconds(), time.perf_counter()
        pages = plain_pdfplumber(files)
        peer_s, peer_cpu = time.perf_counter() - t0, cpu_seconds() - c0
        print(f"peer, plain pdfplumber page.extract_text() (1 process; no tables, cleaning or chunking): "
              f"{pages} pages")
        print(f"  wall {peer_s:.1f}s = {pages / peer_s:.2f} pages/s; cpu {peer_cpu / pages * 1000:.0f} ms/page")
        print(f"  kit/peer: wall-time ratio {kit_s / peer_s:.2f} (kit uses {args.workers or min(cores, len(files))} "
              f"processes), CPU-per-page ratio {(kit_cpu / r.pages) / (peer_cpu / pages):.2f}")
    if args.ocr_pages:
        ocr_speed(args.ocr_pages, args.workers)
    print(f"load average after: {' '.join(f'{x:.1f}' for x in os.getloadavg())}")


def ocr_speed(n: int, workers: int) -> None:
    import pypdfium2

    from kit.prep import PrepOptions, prep

    src = REPO.parent / "shared/data/pdfs/laws/中华人民共和国劳动合同法_2012修正.pdf"
    with tempfile.TemporaryDirectory() as d:
        pdf = pypdfium2.PdfDocument(str(src))
        images = [pdf[i].render(scale=150 / 72).to_pil().convert("RGB") for i in range(min(n, len(pdf)))]
        # one scan per file, as a copier writes them: prep hands out work per file
        scans = []
        for i, img in enumerate(images):
            scans.append(Path(d) / f"scan{i:02d}.pdf")
            img.save(scans[-1], resolution=150)
        c0, t0 = cpu_seconds(), time.perf_counter()
        r = prep(scans, Path(d) / "ocr.jsonl", PrepOptions(workers=workers, progress=False, ocr="auto"),
                 echo=lambda m: None)
        s, cpu = time.perf_counter() - t0, cpu_seconds() - c0
    print(f"OCR (RapidOCR, ocr: auto, workers={workers or min(os.cpu_count() or 1, len(scans))}): {r.ocr_pages} "
          f"scanned pages in {s:.1f}s = {r.ocr_pages / s:.2f} pages/s ({s / r.ocr_pages:.1f} s/page); "
          f"OCR share of the text {r.ocr_share:.0%}")
    cores = os.cpu_count() or 1
    print(f"  cpu {cpu:.1f}s = {cpu / r.ocr_pages:.1f} s/page; on {cores} idle cores at most "
          f"{r.ocr_pages / (cpu / cores):.2f} pages/s (projection from CPU time, not a measurement)")


if __name__ == "__main__":
    main()
