"""Sections of units -> chunks within a token budget, with a title path, page range and stable ids.

Structure first, budget second: a section (structure.py) is packed into as few chunks as the budget allows,
units whole; a unit is cut (into sentences: 。！？；…) only when it alone exceeds the budget, and a sentence
(by characters) only when it alone does. ``overlap`` sentences are repeated when running text is cut. Tokens
are counted with the target model's tokenizer (so a chunk fits what the model will see) or as characters.
"""
from __future__ import annotations

import re
from dataclasses import dataclass
from typing import TYPE_CHECKING, Callable

from ..io import text_hash
from .document import Document
from .structure import Section, Unit, sections_of

if TYPE_CHECKING:   # chunking reads max_tokens, overlap and min_chars of the prep section itself (no copy)
    from .options import PrepOptions

# Sentence ends: Chinese/ASCII terminal punctuation, optionally followed by closing quotes/brackets.
SENTENCE = re.compile(r"[^。！？；!?;…]*(?:[。！？；!?;]+|…+)[”’」』）)]*|[^。！？；!?;…]+$")


def split_sentences(text: str) -> list[str]:
    return [s for s in (m.group(0).strip() for m in SENTENCE.finditer(text)) if s]


@dataclass
class Chunk:
    id: str
    doc: str
    page_start: int
    page_end: int
    title: str
    text: str
    segs: tuple[int, int] = (0, 0)      # fidelity segments covered (not written)
    source_id: str | None = None
    ocr: bool = False

    def to_json(self) -> dict:
        row = {"id": self.id, "doc": self.doc, "page_start": self.page_start, "page_end": self.page_end,
               "title": self.title, "text": self.text}
        if self.source_id is not None:
            row["source_id"] = self.source_id
        if self.ocr:
            row["ocr"] = True
        return row


def _join(units: list[Unit]) -> str:
    out = ""
    for u in units:
        out += ("" if not out or u.cont else "\n") + u.text.strip("\n")
    return re.sub(r"\n{2,}", "\n", out).strip()


def _pieces(u: Unit, room: int, count: Callable[[str], int]) -> list[Unit]:
    """A unit over budget as sentence pieces (paragraph breaks inside it kept); a sentence still over budget
    is cut by characters in proportion to the budget."""
    out: list[Unit] = []
    for j, par in enumerate(u.text.split("\n")):
        for k, s in enumerate(split_sentences(par)):
            cost = count(s)
            step = len(s) if cost <= room else max(1, int(len(s) * room / cost))
            for i in range(0, len(s), step):
                out.append(Unit(s[i:i + step], u.pages, u.segs, "piece", u.article, u.ocr,
                                cont=bool(out) and (k > 0 or i > 0)))
    return out


class _Packer:
    def __init__(self, doc: Document, options: "PrepOptions", count: Callable[[str], int]):
        self.doc, self.options, self.count = doc, options, count
        self.chunks: list[Chunk] = []

    def emit(self, section: Section, units: list[Unit], first: bool) -> None:
        text = _join(units)
        if not text:
            return
        arts = [u.article for u in units if u.article]
        title = section.title
        if arts:
            label = arts[0] if len(set(arts)) == 1 else f"{arts[0]}至{arts[-1]}"
            title = f"{title} {label}".strip()
        span = units + (([section.heading] if section.heading else []) + section.carried if first else [])
        seq = len(self.chunks)
        self.chunks.append(Chunk(
            id=f"{text_hash(self.doc.name, 8)}-{seq:05d}-{text_hash(title + text, 8)}", doc=self.doc.name,
            page_start=min(u.pages[0] for u in span), page_end=max(u.pages[1] for u in span), title=title,
            text=text, segs=(min(u.segs[0] for u in span), max(u.segs[1] for u in span)),
            source_id=section.source_id, ocr=any(u.ocr for u in units)))

    def section(self, section: Section) -> None:
        room = max(16, self.options.max_tokens - (self.count(section.title) if section.title else 0))
        units: list[Unit] = []
        for u in section.units:
            units += _pieces(u, room, self.count) if self.count(u.text) > room else [u]
        current: list[Unit] = []
        used, first = 0, True
        newline = self.count("\n")       # the line break between units counts too (1 character, 0 tokens)
        for u in units:
            cost = self.count(u.text) + (0 if u.cont else newline)
            if current and used + cost > room:
                self.emit(section, current, first)
                first = False
                carry = current[-self.options.overlap:] if self.options.overlap and u.kind == "piece" else []
                carry = [x for x in carry if x.kind == "piece"]
                current, used = list(carry), sum(self.count(x.text) + newline for x in carry)
                if used + cost > room:
                    current, used = [], 0
            current.append(u)
            used += cost
        if current:
            self.emit(section, current, first)


def chunk_document(doc: Document, options: "PrepOptions", count_tokens: Callable[[str], int]) -> list[Chunk]:
    packer = _Packer(doc, options, count_tokens)
    for section in sections_of(doc, options.min_chars):
        packer.section(section)
    return packer.chunks


def make_token_counter(tokenizer: str | None) -> Callable[[str], int]:
    """Token count with the target model's tokenizer, or characters when none is given."""
    if not tokenizer:
        return lambda s: len(s)
    from functools import lru_cache

    from transformers import AutoTokenizer

    from ..io import KitError
    from ..registry import ensure_available

    ensure_available(tokenizer, "tokenizer")
    try:
        tok = AutoTokenizer.from_pretrained(tokenizer)
    except (OSError, ValueError) as e:   # a folder without tokenizer files, a broken tokenizer.json
        raise KitError(f"tokenizer {tokenizer}: cannot be loaded ({str(e).splitlines()[0][:200]})") from None

    @lru_cache(maxsize=200_000)
    def count(s: str) -> int:
        return len(tok(s, add_special_tokens=False)["input_ids"])

    return count
