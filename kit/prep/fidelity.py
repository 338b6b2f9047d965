"""How much of what a document says reached its chunks: the fidelity figure.

For every page (PDF) or segment (text inputs), the source text — a PDF page's text layer, ``extract_text()``
— is compared with the chunks that cover the page, titles included (headings live in titles): the share of
its characters found in the chunks *in order* is the longest common subsequence over the source's length,
whitespace ignored and both sides normalised alike. The characters inside a table's cells are
compared as a bag with what those chunks hold beyond the text outside tables: the text layer reads a table line by line across its
cells, prep cell by cell (see layout.py), so only their presence can be checked, not their order. What prep drops on purpose (running headers, footers,
page numbers) is counted separately, not as lost. Per page, because the LCS costs O(n·m/64) (rapidfuzz's
bit-parallel LCS: a page against its few chunks is ~1 ms, a 300-page report in one piece would be seconds).
"""
from __future__ import annotations

from collections import Counter
from dataclasses import dataclass

from rapidfuzz.distance import LCSseq

from .chunk import Chunk
from .document import Document
from .text import comparable

WARN_BELOW = 0.99


@dataclass
class Fidelity:
    chars: int = 0           # source characters (whitespace excluded), dropped ones excluded
    found: int = 0           # of those, found in the chunks in order
    dropped: int = 0         # dropped on purpose: headers, footers, page numbers
    ocr_chars: int = 0       # characters of the document read by OCR (no text layer to compare with)
    text_chars: int = 0      # characters of the document (cleaned), OCR'd or not
    lost_pages: tuple = ()   # pages below WARN_BELOW, worst first (page, share)

    @property
    def share(self) -> float | None:
        return self.found / self.chars if self.chars else None


def measure(doc: Document, chunks: list[Chunk]) -> Fidelity:
    f = Fidelity()
    by_seg: dict[int, list[str]] = {}
    for c in chunks:
        for s in range(c.segs[0], c.segs[1] + 1):
            by_seg.setdefault(s, []).append(comparable(c.title) + comparable(c.text))
    low = []
    for page in doc.pages:
        size = len(comparable(page.text))
        f.text_chars += size
        if page.ocr:
            f.ocr_chars += size
            continue   # OCR'd: the text layer (if any) is not what the chunks were made from
        ref = comparable(page.ref)
        top, bottom = comparable(page.dropped_top), comparable(page.dropped_bottom)
        out = top + "".join(by_seg.get(page.seg, [])) + bottom
        found = LCSseq.similarity(ref, out) if ref else 0
        dropped = min(len(top) + len(bottom), found)
        cells = Counter(comparable(page.ref_cells))
        # what the chunks hold beyond the text outside tables is what the cells can be found in
        in_rows = sum((cells & (Counter(out) - Counter(ref))).values()) if cells else 0
        chars, hit = len(ref) - dropped + sum(cells.values()), found - dropped + in_rows
        f.chars, f.found, f.dropped = f.chars + chars, f.found + hit, f.dropped + dropped
        if chars and hit / chars < WARN_BELOW:
            low.append((page.number, round(hit / chars, 4)))
    f.lost_pages = tuple(sorted(low, key=lambda x: x[1])[:10])
    return f
