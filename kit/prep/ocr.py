"""Image-only pages read with RapidOCR (PP-OCR Chinese detection/recognition models shipped inside the
``rapidocr-onnxruntime`` wheel, run on the CPU by onnxruntime: nothing is downloaded).

A page is rendered with pypdfium2 (already installed with pdfplumber); RapidOCR returns text boxes, which are
grouped here into lines top to bottom, left to right, so the OCR'd page goes through the same cleaning and
chunking as a text page (RapidOCR returns boxes, not lines, hence the grouping).
"""
from __future__ import annotations

import os

from .text import joiner

RENDER_SCALE = 2.0          # 144 dpi: a scan's own resolution is usually 150-300 dpi, and RapidOCR scales
                            # anything over 2000 pixels down anyway (its max_side_len)
MIN_SCORE = 0.5             # boxes RapidOCR itself doubts (stamps, signatures, specks) are not text

_engine = None
_engine_pid = 0
_inherited: list = []       # engines a forked worker got from its parent: never used, never freed
_threads = -1               # onnxruntime threads per process; -1 = one per core


def configure(threads: int) -> None:
    """Threads for this process's engine: parallel prep workers share the cores instead of each taking all."""
    global _threads
    _threads = threads


def engine():
    """One RapidOCR engine per process (loading the three ONNX models takes ~0.5 s). An engine inherited
    through fork is not used (onnxruntime's thread pools do not survive fork) nor freed (freeing it in the
    child crashes): it is kept aside and a new one is made."""
    global _engine, _engine_pid
    if _engine is not None and _engine_pid != os.getpid():
        _inherited.append(_engine)
        _engine = None
    if _engine is None:
        from rapidocr_onnxruntime import RapidOCR

        _engine = RapidOCR(intra_op_num_threads=_threads, inter_op_num_threads=1 if _threads > 0 else -1)
        _engine_pid = os.getpid()
    return _engine


def render(pdf, index: int, scale: float = RENDER_SCALE):
    """Page ``index`` (0-based) of a ``pypdfium2.PdfDocument`` as a BGR numpy image."""
    page = pdf[index]
    try:
        return page.render(scale=scale).to_numpy()
    finally:
        page.close()


def group_lines(boxes) -> list[str]:
    """RapidOCR's ``[points, text, score]`` boxes -> text lines: a box joins a line when it overlaps the
    line's vertical extent by half its height; a line's boxes are joined left to right."""
    items = []
    for pts, text, score in boxes or []:
        if float(score) < MIN_SCORE or not str(text).strip():
            continue
        ys = [p[1] for p in pts]
        xs = [p[0] for p in pts]
        items.append((min(ys), max(ys), min(xs), str(text).strip()))
    items.sort(key=lambda t: (t[0] + t[1]) / 2)
    lines: list[list] = []       # [top, bottom, [(x, text)]]
    for top, bottom, x, text in items:
        h = bottom - top
        for ln in lines:
            overlap = min(bottom, ln[1]) - max(top, ln[0])
            if overlap >= 0.5 * min(h, ln[1] - ln[0]):
                ln[0], ln[1] = min(top, ln[0]), max(bottom, ln[1])
                ln[2].append((x, text))
                break
        else:
            lines.append([top, bottom, [(x, text)]])
    out = []
    for _, _, parts in sorted(lines, key=lambda ln: ln[0]):
        s = ""
        for _, text in sorted(parts):
            s = s + joiner(s, text) + text
        out.append(s)
    return out


def ocr_image(image) -> list[str]:
    result, _ = engine()(image)
    return group_lines(result)
