"""What every reader (PDF, text, Word, JSONL) hands to chunking: a document of pages, each a list of blocks.

A *block* is one paragraph-level piece of cleaned text: a paragraph, a table row (``a | b | c``) or an
explicit heading (Markdown ``#``, Word heading styles). A *page* is a PDF page, or for text inputs a run of
paragraphs (``seg`` numbers the pieces the fidelity check compares; see fidelity.py). ``ref`` is what the page
says before cleaning (the PDF text layer), against which fidelity is measured.
"""
from __future__ import annotations

import os
from dataclasses import dataclass, field


def display(path) -> str:
    """A path as it can be printed and written to JSON: bytes that are not UTF-8 shown as U+FFFD."""
    return os.fsencode(str(path)).decode("utf-8", "replace")


@dataclass
class Block:
    text: str
    kind: str = "par"           # "par" | "row" (table row) | "heading" (explicit, with level)
    level: int = 0              # heading level for kind == "heading" (1 = top)


@dataclass
class Page:
    number: int                                  # 1-based page reported in chunks (text inputs: 1)
    blocks: list[Block] = field(default_factory=list)
    seg: int = 0                                 # fidelity segment (PDF: the page number); 0 = number
    ref: str = ""                                # the source text of this page (PDF: extract_text())
    ref_cells: str = ""                          # PDF: the characters in its tables' cells (compared as a bag)
    dropped_top: str = ""                        # running headers / print headers dropped on purpose
    dropped_bottom: str = ""                     # footers / page numbers dropped on purpose
    ocr: bool = False                            # the blocks were read by OCR
    source_id: str | None = None                 # JSONL input: the row's id (kept on its chunks)
    title: str | None = None                     # JSONL input: the row's title (starts a section)

    def __post_init__(self):
        self.seg = self.seg or self.number

    @classmethod
    def from_text(cls, number: int, text: str, **kw) -> "Page":
        """A page whose paragraphs are the lines of ``text`` (lines with `` | `` are table rows)."""
        blocks = [Block(p.strip(), "row" if " | " in p else "par") for p in text.split("\n") if p.strip()]
        return cls(number, blocks, ref=kw.pop("ref", text), **kw)

    @property
    def text(self) -> str:
        return "\n".join(b.text for b in self.blocks)


@dataclass
class Document:
    path: str
    name: str
    pages: list[Page] = field(default_factory=list)
    page_count: int = 0
    problems: list[str] = field(default_factory=list)   # "file: page N: what" lines
    failed: bool = False                                 # the whole file was rejected
    kind: str = "pdf"                                    # pdf | txt | md | docx | jsonl
    tables: int = 0                                      # tables found (>= 2 rows x 2 columns with text)
    ocr_pages: int = 0
    skipped: int = 0                                     # pages left out (and reported): scans, garbage, errors

    def fail(self, reason: str) -> "Document":
        self.problems.append(f"{self.path}: {reason}")
        self.failed = True
        self.pages = []
        return self
