"""Cleaned pages -> sections of units: the document's structure, before any token budget is applied.

Headings (第X编/章/节, 一、, （一）, 1., Markdown/Word headings) open a section whose title is the heading path
(``第二编 分则 第一章 总则``). Inside a section the *units* are what chunking keeps whole when it can:
a law article (第N条 with its continuation paragraphs and list items, also across a page break), a numbered
clause, a paragraph (a paragraph cut by a page break is joined back), a table row. A heading whose section
ends up with no text of its own and is not carried by a deeper heading's path (``第七节 优先股相关情况``
followed by ``第八节``) becomes text of the section before it, so no heading is lost; so do sections with less
than ``min_chars`` of text.
"""
from __future__ import annotations

import re
from dataclasses import dataclass, field, replace

from .document import Block, Document
from .text import BLOCK_START, CJK, CN_NUM, GLUED_ARTICLE, SENTENCE_END, TOC_LINE, opens_glued_article

HEADING_PATTERNS: list[tuple[int, re.Pattern]] = [
    (1, re.compile(rf"^第[{CN_NUM}\d]+编\s*\S*")),
    (2, re.compile(rf"^第[{CN_NUM}\d]+章\s*\S*")),
    (3, re.compile(rf"^第[{CN_NUM}\d]+节\s*\S*")),
    (4, re.compile(rf"^[{CN_NUM}]+、\s*\S+")),
    (5, re.compile(rf"^[（(][{CN_NUM}]+[)）]\s*\S+")),
    (6, re.compile(r"^\d+(?:\.\d+)*[、.．]?\s*[^\d\s.．、]\S*")),
]
# An article marker is followed by a space in statute layouts; "第四十七条的规定" at a line start is a reference.
ARTICLE = re.compile(rf"^(第[{CN_NUM}\d]+条(?:之[{CN_NUM}]+)?)(?:[\s　]+|$)")
MAX_HEADING_CHARS = 40
# A heading's numbering (第一编, 第二章, 第三节, 第十条, 一、, （一）, 1.2): the space after it stays in the title.
NUMBERING = re.compile(rf"^(?:第[{CN_NUM}\d]+[编章节条](?:之[{CN_NUM}]+)?|[{CN_NUM}]+、|[（(][{CN_NUM}\d]+[)）]"
                       rf"|\d+(?:\.\d+)*[、.．]?)(?=\s)")
# Letter spacing: single Chinese characters each set one space apart ("总 则", "自 然 人"). A space between
# longer words stands for a lost 、 ("第七章 公司合并 分立" in 公司法_1999) and stays.
LETTER_SPACED = re.compile(rf"(?<![{CJK}])[{CJK}](?: [{CJK}])+(?![{CJK}])")
AMOUNT = re.compile(r"-?\d[\d,]*\.\d+")


@dataclass
class Unit:
    """A piece kept whole if it fits: an article, a clause, a paragraph, a table row, a heading as text."""
    text: str
    pages: tuple[int, int]
    segs: tuple[int, int]
    kind: str = "par"            # article | clause | par | row | heading | piece (a sentence of a cut unit)
    article: str = ""            # "第十条" for articles (and their pieces)
    ocr: bool = False
    cont: bool = False           # continues the previous unit's paragraph (a sentence piece): no line break

    def extend(self, text: str, pages: tuple[int, int], segs: tuple[int, int], sep: str = "\n") -> None:
        self.text += sep + text
        self.pages = (min(self.pages[0], pages[0]), max(self.pages[1], pages[1]))
        self.segs = (min(self.segs[0], segs[0]), max(self.segs[1], segs[1]))


@dataclass
class Section:
    title: str
    heading: Unit | None = None      # the heading that opened it (its page counts for the first chunk)
    carried: list[Unit] = field(default_factory=list)   # empty parent sections' headings, now in the title
    units: list[Unit] = field(default_factory=list)
    source_id: str | None = None

    def chars(self) -> int:
        return sum(len(u.text.strip()) for u in self.units)


def heading_title(text: str) -> str:
    """A heading as its chunks' titles say it: whitespace collapsed, letter spacing removed from its words
    ("第一编 总 则" -> "第一编 总则"), the space after its numbering kept."""
    text = re.sub(r"\s+", " ", text).strip()
    m = NUMBERING.match(text)
    number, words = (m.group(0), text[m.end():]) if m else ("", text)
    words = LETTER_SPACED.sub(lambda w: w.group(0).replace(" ", ""), words)
    return number + words


def heading_level(par: str) -> int | None:
    if len(par) > MAX_HEADING_CHARS or par.endswith(("。", "；", "，", "：")) or ARTICLE.match(par):
        return None
    if " | " in par or TOC_LINE.search(par) or len(AMOUNT.findall(par)) >= 2:
        return None  # a table row, a table-of-contents line or a borderless table's line is never a heading
    for level, pat in HEADING_PATTERNS:
        if pat.match(par):
            return level
    return None


@dataclass
class Para:
    block: Block
    pages: tuple[int, int]
    segs: tuple[int, int]
    ocr: bool
    source_id: str | None
    row_title: str | None


def paragraphs_of(doc: Document) -> list[Para]:
    """Every block of the document in order; a paragraph cut by a page break (no sentence end before the
    break, no block marker after it) is joined back together and spans both pages."""
    out: list[Para] = []
    for page in doc.pages:
        for i, block in enumerate(page.blocks):
            prev = out[-1] if out else None
            if (i == 0 and prev is not None and prev.block.kind == "par" and block.kind == "par"
                    and prev.source_id == page.source_id and page.title is None
                    and not prev.block.text.endswith(SENTENCE_END) and not BLOCK_START.match(block.text)):
                prev.block = replace(prev.block, text=prev.block.text + block.text)
                prev.pages = (prev.pages[0], page.number)
                prev.segs = (prev.segs[0], page.seg)
                prev.ocr = prev.ocr or page.ocr
                continue
            out.append(Para(block, (page.number, page.number), (page.seg, page.seg), page.ocr, page.source_id,
                            page.title if i == 0 else None))
    return out


class _Walker:
    def __init__(self):
        self.stack: dict[int, str] = {}
        self.sections: list[Section] = [Section(title="")]
        self.article: Unit | None = None
        self.before = ""                 # the previous paragraph ("" after a heading, a table row, a new row)

    def unit(self, p: Para, kind: str, article: str = "") -> Unit:
        u = Unit(p.block.text, p.pages, p.segs, kind, article, p.ocr)
        self.sections[-1].units.append(u)
        return u

    def open(self, p: Para, level: int, text: str, source_id) -> None:
        self.stack = {k: v for k, v in self.stack.items() if k < level}
        self.stack[level] = heading_title(text)
        title = " ".join(self.stack[k] for k in sorted(self.stack))
        heading = Unit(text, p.pages, p.segs, "heading", ocr=p.ocr)
        self.sections.append(Section(title, heading, source_id=source_id))
        self.article = None

    def add(self, p: Para) -> None:
        text = p.block.text
        if p.source_id != self.sections[-1].source_id or p.row_title is not None:
            # a new JSONL row: its own section, titled by the row (never packed with another row)
            self.stack = {0: p.row_title} if p.row_title else {}
            self.sections.append(Section(p.row_title or "", source_id=p.source_id))
            self.article = None
            self.before = ""
        level = p.block.level if p.block.kind == "heading" else \
            heading_level(text) if p.block.kind == "par" else None
        if level is not None and p.block.kind == "par" and level >= 4 and self.article is not None:
            level = None  # （一）/一、/1. inside an article are its list items, not headings
        if level is not None:
            self.open(p, max(1, level), text, p.source_id)
            self.before = ""
            return
        m = None
        if p.block.kind == "par":
            # "第一条 …" always; "第一条为了…" (OCR) only after a sentence end (text.opens_glued_article)
            m = ARTICLE.match(text) or (GLUED_ARTICLE.match(text) if opens_glued_article(text, self.before)
                                        else None)
        self.before = text if p.block.kind == "par" else ""
        if m:
            self.article = self.unit(p, "article", m.group(1))
        elif self.article is not None and p.block.kind == "par":
            self.article.extend(text, p.pages, p.segs)   # continuation paragraph of the current article
        else:
            self.article = None
            kind = "row" if p.block.kind == "row" else "clause" if BLOCK_START.match(text) else "par"
            self.unit(p, kind)


def sections_of(doc: Document, min_chars: int = 10) -> list[Section]:
    """Walk the paragraphs of a document, tracking the heading path and grouping units per section."""
    w = _Walker()
    for p in paragraphs_of(doc):
        w.add(p)
    return _fold_small(w.sections, min_chars)


def _kept(sections: list[Section], min_chars: int) -> list[bool | None]:
    """Per section: True = a chunk of its own, False = its text joins a neighbour, None = nothing to write
    (an empty section whose heading lives on in the title of the kept section right after it: a chapter
    heading before its first 节). Decided from the end, since that depends on what follows."""
    keep: list[bool | None] = [False] * len(sections)
    for i in range(len(sections) - 1, -1, -1):
        s = sections[i]
        nxt = sections[i + 1] if i + 1 < len(sections) else None
        if s.units and s.chars() >= min_chars:
            keep[i] = True
        elif not s.units and (s.heading is None or (
                nxt is not None and keep[i + 1] and s.title and nxt.title.startswith(s.title + " ")
                and nxt.source_id == s.source_id)):
            keep[i] = None
    return keep


def _fold_small(sections: list[Section], min_chars: int) -> list[Section]:
    out: list[Section] = []
    carry: list[Unit] = []          # text of a small first section waiting for the next one
    carried: list[Unit] = []        # headings of empty sections that live on in the next title
    keep = _kept(sections, min_chars)
    for i, s in enumerate(sections):
        if keep[i] is None:
            carried += [s.heading] if s.heading else []
            continue
        s.carried, carried = carried, []
        if not keep[i]:
            units = s.carried + ([s.heading] if s.heading else []) + s.units
            s.carried = []
            if out and out[-1].source_id == s.source_id:
                out[-1].units += units           # joins the section before it
                continue
            nxt = sections[i + 1] if i + 1 < len(sections) else None
            if nxt is not None and nxt.source_id == s.source_id:
                carry += units                   # or the one after it
                continue
            s.units = units
        if carry:
            s.units = carry + s.units
            carry = []
        out.append(s)
    if carry:
        out.append(Section("", units=carry))
    return out
