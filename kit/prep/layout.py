"""One PDF page -> its lines in reading order: running text lines and table rows.

pdfplumber gives characters with positions, its word and line grouping, and a table finder. What it does not
give, and is written here:

- *when a found table is a table*: ``find_tables()`` with default settings turns every ruled or shaded box into
  a "table" (a shaded article number, a frame around a paragraph, a page border), and replacing those regions
  with rows damages the text around them. A table is kept only with at least two rows that each have text in
  at least two cells; anything else stays ordinary text.
- *where a table goes*: rows are placed at the table's position among the text lines, so the text before and
  after a table stays in order; only characters inside a kept table's cells leave the running text (a
  character inside the table frame but in no cell stays text, so nothing is lost between the two);
- *two-column pages*: pdfplumber reads a line across the whole page width, mixing the columns. When lines share
  a gutter (a vertical gap in the middle that no line crosses and both sides are filled with running text,
  not a borderless table), each band of such lines is read left column first, then the right column.
"""
from __future__ import annotations

import re
from dataclasses import dataclass

from pdfplumber.utils import cluster_objects
from pdfplumber.utils.text import WordExtractor

from .text import CN_NUM, join_wrapped

ARTICLE_START = re.compile(rf"^第[{CN_NUM}\d]+条")
Y_TOLERANCE = 3   # pdfplumber's default, so the lines are the ones extract_text() gives


@dataclass
class Line:
    top: float
    text: str
    kind: str = "text"          # "text" | "row" (a table row)
    x0: float = 0.0
    x1: float = 0.0


@dataclass
class Table:
    top: float
    bottom: float
    rows: list[str]
    cells: list[tuple]


def _cell_text(cell: str | None) -> str:
    # a cell wrapped over several lines: joined like running text (no space inside Chinese words)
    return join_wrapped((cell or "").split("\n"))


def real_tables(page) -> list[Table]:
    """pdfplumber's tables that are tables: >= 2 rows with text in >= 2 cells each."""
    try:
        found = page.find_tables()
    except Exception:  # pdfplumber's table finder can fail on odd vector art; the text is still usable
        return []
    out = []
    for t in found:
        rows = [[_cell_text(c) for c in row] for row in (t.extract() or [])]
        if sum(1 for r in rows if sum(1 for c in r if c) >= 2) < 2 or _statute_boxes(rows):
            continue
        top, bottom = t.bbox[1], t.bbox[3]
        out.append(Table(top, bottom, [" | ".join(r) for r in rows if any(r)], list(t.cells)))
    return out


def _statute_boxes(rows: list[list[str]]) -> bool:
    """Boxes behind article numbers stacked into a grid (第一条 | text / 第二条 | text) are statute text."""
    firsts = [r[0] for r in rows if r and r[0]]
    return bool(firsts) and sum(1 for c in firsts if ARTICLE_START.match(c)) >= 0.5 * len(firsts)


def _in_cells(char, cells) -> bool:
    x, y = (char["x0"] + char["x1"]) / 2, (char["top"] + char["bottom"]) / 2
    return any(c[0] <= x <= c[2] and c[1] <= y <= c[3] for c in cells)


def _lines(words) -> list[list[dict]]:
    """Words clustered into lines top to bottom, each left to right (as extract_text() does)."""
    lines = cluster_objects(words, lambda w: w["top"], Y_TOLERANCE)
    return [sorted(ws, key=lambda w: w["x0"]) for ws in lines]


def _line(words) -> Line:
    return Line(min(w["top"] for w in words), " ".join(w["text"] for w in words),
                x0=words[0]["x0"], x1=max(w["x1"] for w in words))


def _gutter(lines: list[list[dict]], width: float) -> float | None:
    """x of a column gutter shared by the page's lines, or None (see the module docstring)."""
    if len(lines) < 6:
        return None
    char_w = max(4.0, _median_char_width(lines))
    gaps = []   # (gap start, gap end, line index)
    for i, ws in enumerate(lines):
        for a, b in zip(ws, ws[1:]):
            lo, hi = a["x1"], b["x0"]
            if hi - lo >= 1.5 * char_w and 0.25 * width <= (lo + hi) / 2 <= 0.75 * width:
                gaps.append((lo, hi, i))
    if not gaps:
        return None
    # the x covered by the most gaps
    best_x, best_n = None, 0
    for lo, hi, _ in gaps:
        x = (lo + hi) / 2
        n = sum(1 for a, b, _ in gaps if a <= x <= b)
        if n > best_n:
            best_x, best_n = x, n
    if best_n < max(4, 0.3 * len(lines)):
        return None
    split = [ws for ws in lines if any(a["x1"] <= best_x <= b["x0"] for a, b in zip(ws, ws[1:]))]
    if not _prose_columns(split, best_x, char_w):
        return None
    return best_x


def _median_char_width(lines) -> float:
    widths = sorted((w["x1"] - w["x0"]) / max(1, len(w["text"])) for ws in lines for w in ws)
    return widths[len(widths) // 2] if widths else 10.0


def _prose_columns(split: list[list[dict]], g: float, char_w: float) -> bool:
    """Both sides are running text: each side of most split lines is one run of words without wide gaps
    (a borderless table has several), and the left column's lines mostly reach the gutter (justified prose;
    a label/value list has ragged short labels)."""
    sides_ok, full_left = 0, 0
    left_edge = max(max(w["x1"] for w in ws if w["x1"] <= g) for ws in split)
    for ws in split:
        left = [w for w in ws if w["x1"] <= g]
        right = [w for w in ws if w["x0"] >= g]
        wide = [b["x0"] - a["x1"] >= 1.5 * char_w for part in (left, right) for a, b in zip(part, part[1:])]
        chars = min(sum(len(w["text"]) for w in left), sum(len(w["text"]) for w in right))
        if not any(wide) and chars >= 6:
            sides_ok += 1
        if left and left[-1]["x1"] >= left_edge - 2 * char_w:
            full_left += 1
    return sides_ok >= 0.7 * len(split) and full_left >= 0.5 * len(split)


def _column_order(lines: list[list[dict]], g: float) -> list[Line]:
    """Bands of lines that do not cross the gutter are read left column, then right column."""
    out: list[Line] = []
    left: list[Line] = []
    right: list[Line] = []

    def flush():
        out.extend(left + right)
        left.clear()
        right.clear()

    for ws in lines:
        crosses = any(w["x0"] < g < w["x1"] for w in ws)
        if crosses:
            flush()
            out.append(_line(ws))
            continue
        lw = [w for w in ws if w["x1"] <= g]
        rw = [w for w in ws if w["x0"] >= g]
        if lw:
            left.append(_line(lw))
        if rw:
            right.append(_line(rw))
    flush()
    return out


@dataclass
class PageLayout:
    lines: list[Line]
    tables: int = 0
    columns: bool = False
    flow_ref: str | None = None     # pdfplumber's text of the characters outside tables (when there are tables)
    cell_chars: str = ""            # the characters inside kept tables' cells


def _place_tables(text_lines: list[Line], tables: list[Table]) -> list[Line]:
    """Tables go where they stand: before the first text line below their top."""
    out: list[Line] = []
    pending = sorted(tables, key=lambda t: t.top)
    for ln in text_lines:
        while pending and pending[0].top <= ln.top:
            t = pending.pop(0)
            out += [Line(t.top, r, "row") for r in t.rows]
        out.append(ln)
    for t in pending:
        out += [Line(t.top, r, "row") for r in t.rows]
    return out


def page_lines(page) -> PageLayout:
    """The page's text lines and table rows in reading order, with what fidelity.py compares them to."""
    chars = page.chars
    tables = real_tables(page) if (page.rects or page.lines or page.curves) else []
    cells = [c for t in tables for c in t.cells]
    text_chars = [c for c in chars if not _in_cells(c, cells)] if cells else chars
    words = WordExtractor().extract_words(text_chars)
    lines = _lines(words)
    g = _gutter(lines, float(page.width))
    text_lines = _column_order(lines, g) if g is not None else [_line(ws) for ws in lines]
    layout = PageLayout(_place_tables(text_lines, tables), len(tables), g is not None)
    if not tables and g is None:
        return layout
    # The page's text layer reads a table line by line across its cells (interleaving wrapped cells) and a
    # two-column page across both columns; prep reads cell by cell and column by column. So the reference
    # for the text outside tables is pdfplumber's lines in that reading order, and the cells are compared as
    # a bag of characters (see fidelity.py).
    layout.flow_ref = "\n".join(ln.text for ln in text_lines)
    layout.cell_chars = "".join(c["text"] for c in chars if _in_cells(c, cells))
    return layout
