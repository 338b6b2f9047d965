"""Raw page lines -> cleaned pages of paragraphs and table rows.

Dropped on purpose (and counted, so the fidelity figure can say what was left out and why):
- lines that repeat at the top or bottom of many pages (running headers, footers, ``file://`` print headers),
  digits ignored so a changing page counter still repeats;
- page numbers (``—1—``, ``- 3 -``, ``第 3 页``, ``3/20``) among the first or last two lines of a page (a
  lone number inside the page, e.g. a year in a borderless table, is text);
then compatibility characters are normalised (text.py) and wrapped lines joined into paragraphs; table rows
stay rows, in place.
"""
from __future__ import annotations

import re
from collections import Counter
from dataclasses import dataclass

from .document import Block, Page
from .layout import Line
from .text import PAGE_NUMBER, PRINT_HEADER, full_line_length, join_lines, nfkc_keep_chinese_punct

EDGE = 2                 # lines at each end of a page where headers, footers and page numbers live
REPEAT_SHARE = 0.4       # a line (digits ignored) at a page edge on this share of pages is a running header


@dataclass
class RawPage:
    number: int
    lines: list[Line]
    ref: str                 # the page's text layer, extract_text() (outside tables; see layout.py)
    ocr: bool = False
    cells: str = ""          # the characters in its tables' cells


def _norm_repeat(line: str) -> str:
    return re.sub(r"\d+", "#", re.sub(r"\s+", "", line))


def _edge_lines(lines: list[Line]) -> list[Line]:
    text = [ln for ln in lines if ln.text.strip()]
    return text[:EDGE] + text[-EDGE:] if len(text) > 2 * EDGE else text


def running_lines(raw: list[RawPage]) -> set[str]:
    counts: Counter = Counter()
    for page in raw:
        counts.update({_norm_repeat(ln.text) for ln in _edge_lines(page.lines) if ln.kind == "text"})
    min_repeat = max(3, int(REPEAT_SHARE * len(raw)))
    return {k for k, c in counts.items() if c >= min_repeat and k}


def _blocks(kept: list[Line], full: int) -> list[Block]:
    blocks: list[Block] = []
    run: list[str] = []
    for ln in kept + [Line(0, "", "end")]:
        if ln.kind == "text":
            run.append(nfkc_keep_chinese_punct(ln.text).strip())
            continue
        blocks += [Block(p) for p in join_lines(run, full)]
        run = []
        if ln.kind == "row":
            blocks.append(Block(nfkc_keep_chinese_punct(ln.text).strip(), "row"))
    return blocks


def clean_page(page: RawPage, repeated: set[str]) -> Page:
    lines = [ln for ln in page.lines if ln.text.strip()]
    n = len(lines)
    kept, top, bottom = [], [], []
    for j, ln in enumerate(lines):
        edge = j < EDGE or j >= n - EDGE
        drop = ln.kind == "text" and edge and (
            PRINT_HEADER.match(ln.text) or PAGE_NUMBER.match(nfkc_keep_chinese_punct(ln.text))
            or _norm_repeat(ln.text) in repeated)
        if drop:
            (top if j < n / 2 else bottom).append(ln.text)
        else:
            kept.append(ln)
    full = full_line_length([ln.text for ln in kept if ln.kind == "text"])
    return Page(page.number, _blocks(kept, full), ref=page.ref, dropped_top="\n".join(top),
                dropped_bottom="\n".join(bottom), ocr=page.ocr, ref_cells=page.cells)


def clean_pages(raw: list[RawPage]) -> list[Page]:
    repeated = running_lines(raw)
    return [clean_page(p, repeated) for p in raw]
