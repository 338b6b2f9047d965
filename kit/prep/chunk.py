"""Cleaned pages -> chunks within a token budget, with a title breadcrumb and page range.

Structure first, budget second: headings (第X编/章/节, 一、, （一）, 1.) open a new section and form the chunk
``title``; a law article (第N条 …) is a unit that is never cut unless it alone exceeds the budget; other text is
split into sentences (。！？；… and paragraph ends) and packed greedily up to ``max_tokens``, with ``overlap``
sentences repeated when a flow of text is cut. Tokens are counted with the target model's tokenizer (so a
chunk fits what the model will see) or as characters when no tokenizer is given.
"""
from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Callable

from ..io import text_hash
from .pdf import Document

CN_NUM = "一二三四五六七八九十百千零〇两"
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
# Sentence ends: Chinese/ASCII terminal punctuation, optionally followed by closing quotes/brackets.
SENTENCE = re.compile(r"[^。！？；!?;…]*(?:[。！？；!?;]+|…+)[”’」』）)]*|[^。！？；!?;…]+$")
MAX_HEADING_CHARS = 40


@dataclass
class ChunkOptions:
    max_tokens: int = 480
    overlap: int = 0            # sentences repeated at the start of the next chunk when a text flow is cut
    min_chars: int = 10         # chunks shorter than this (after stripping) are dropped


@dataclass
class Unit:
    """A piece that is kept whole if it fits: one law article, or one sentence of running text."""
    text: str
    page: int
    article: str = ""           # "第十条" for article units
    flow: bool = True           # running text: may be packed with neighbours and overlapped


@dataclass
class Section:
    title: str
    units: list[Unit] = field(default_factory=list)


def heading_level(par: str) -> int | None:
    if len(par) > MAX_HEADING_CHARS or par.endswith(("。", "；", "，", "：")) or ARTICLE.match(par):
        return None
    if " | " in par:  # a table row is never a heading
        return None
    for level, pat in HEADING_PATTERNS:
        if pat.match(par):
            return level
    return None


def split_sentences(text: str) -> list[str]:
    return [s for s in (m.group(0).strip() for m in SENTENCE.finditer(text)) if s]


@dataclass
class _PageRef:
    number: int


def paragraphs_of(doc: Document) -> list[tuple[int, str]]:
    """(page, paragraph) pairs; a paragraph cut by a page break (no sentence end before the break, no
    block marker after it) is joined back together and keeps its first page."""
    from .pdf import BLOCK_START, SENTENCE_END

    out: list[tuple[int, str]] = []
    for page in doc.pages:
        pars = [p.strip() for p in page.text.split("\n") if p.strip()]
        for i, par in enumerate(pars):
            if (i == 0 and out and not out[-1][1].endswith(SENTENCE_END) and " | " not in out[-1][1]
                    and not BLOCK_START.match(par) and " | " not in par):
                out[-1] = (out[-1][0], out[-1][1] + par)
            else:
                out.append((page.number, par))
    return out


def sections_of(doc: Document) -> list[Section]:
    """Walk the paragraphs of a document, tracking the heading stack and grouping units per section."""
    stack: dict[int, str] = {}
    sections: list[Section] = [Section(title="")]
    article: Unit | None = None
    for number, par in paragraphs_of(doc):
        if True:
            page = _PageRef(number)
            level = heading_level(par)
            if level is not None and level >= 4 and article is not None:
                level = None  # （一）/一、/1. inside an article are its list items, not headings
            if level is not None:
                stack = {k: v for k, v in stack.items() if k < level}
                stack[level] = re.sub(r"\s+", " ", par)
                sections.append(Section(title=" ".join(stack[k] for k in sorted(stack))))
                article = None
                continue
            m = ARTICLE.match(par)
            if m:
                article = Unit(text=par, page=page.number, article=m.group(1), flow=False)
                sections[-1].units.append(article)
                continue
            if article is not None and " | " not in par:
                # continuation paragraph of the current article (lists, second paragraphs)
                article.text += "\n" + par
                continue
            article = None
            for s in split_sentences(par):
                sections[-1].units.append(Unit(text=s, page=page.number))
            if sections[-1].units:
                sections[-1].units[-1].text += "\n"  # paragraph end
    return [s for s in sections if s.units]


@dataclass
class Chunk:
    id: str
    doc: str
    page_start: int
    page_end: int
    title: str
    text: str

    def to_json(self) -> dict:
        return {"id": self.id, "doc": self.doc, "page_start": self.page_start, "page_end": self.page_end,
                "title": self.title, "text": self.text}


def _join(units: list[Unit]) -> str:
    out = ""
    for u in units:
        piece = u.text
        if out and not out.endswith("\n") and not u.flow:
            out += "\n"
        out += piece
    return re.sub(r"\n{2,}", "\n", out).strip()


def chunk_document(doc: Document, options: ChunkOptions, count_tokens: Callable[[str], int]) -> list[Chunk]:
    chunks: list[Chunk] = []
    budget = options.max_tokens

    def emit(section: Section, units: list[Unit]):
        text = _join(units)
        if len(text.replace("\n", "").strip()) < options.min_chars:
            return
        arts = [u.article for u in units if u.article]
        title = section.title
        if arts:
            label = arts[0] if len(set(arts)) == 1 else f"{arts[0]}至{arts[-1]}"
            title = f"{title} {label}".strip()
        seq = len(chunks)
        chunks.append(Chunk(id=f"{text_hash(doc.name, 8)}-{seq:05d}-{text_hash(title + text, 8)}",
                            doc=doc.name, page_start=min(u.page for u in units), page_end=max(u.page for u in units),
                            title=title, text=text))

    for section in sections_of(doc):
        title_cost = count_tokens(section.title) if section.title else 0
        room = max(16, budget - title_cost)
        # long articles are split into sentence units (the only case an article is cut)
        units: list[Unit] = []
        for u in section.units:
            if not u.flow and count_tokens(u.text) > room:
                parts = split_sentences(u.text)
                units += [Unit(text=s, page=u.page, article=u.article, flow=True) for s in parts]
            else:
                units.append(u)
        current: list[Unit] = []
        used = 0
        for u in units:
            cost = count_tokens(u.text)
            if current and used + cost > room:
                emit(section, current)
                carry = [x for x in current[-options.overlap:]] if options.overlap and u.flow and current[-1].flow else []
                carry = [x for x in carry if x.flow]
                current, used = list(carry), sum(count_tokens(x.text) for x in carry)
                if used + cost > room:
                    current, used = [], 0
            if cost > room:
                # a single sentence over budget: hard cut by characters proportional to the budget
                step = max(1, int(len(u.text) * room / cost))
                for i in range(0, len(u.text), step):
                    emit(section, [Unit(text=u.text[i:i + step], page=u.page, article=u.article)])
                continue
            current.append(u)
            used += cost
        if current:
            emit(section, current)
    return chunks


def make_token_counter(tokenizer: str | None) -> Callable[[str], int]:
    """Token count with the target model's tokenizer, or characters when none is given."""
    if not tokenizer:
        return lambda s: len(s)
    from functools import lru_cache

    from transformers import AutoTokenizer

    tok = AutoTokenizer.from_pretrained(tokenizer)

    @lru_cache(maxsize=200_000)
    def count(s: str) -> int:
        return len(tok(s, add_special_tokens=False)["input_ids"])

    return count
