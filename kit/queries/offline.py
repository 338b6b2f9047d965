"""Query generators that need no LLM: inverse cloze (ict), keyword queries (keywords), title -> body (headings).

Each yields ``(chunk, query, positive_text)`` and counts what it skipped in ``drops``. Randomness is
seeded per chunk id (not by position), so a chunk gets the same queries whatever else is in the corpus.
"""
from __future__ import annotations

import logging
import random
import re
from collections import Counter
from collections.abc import Iterable, Iterator

from .parse import normalise

# A sentence ends at 。！？；… (or their ASCII forms followed by a space) or at a line break; the
# closing quote or bracket after the mark stays with the sentence.
_SENTENCE = re.compile(r"[^。！？；!?;…\n]*(?:[。！？；!?;]+|…+|\n|$)[”’」』）)]*")
_CJK = re.compile(r"[\u4e00-\u9fff]")
# Pure numbering that may open a title: 第十条, 第三章, 第一节, 一、, （一）, 1., 1.2.3, Article 5.
_NUMBERING = re.compile(
    r"^\s*(?:"
    r"第\s*[0-9零〇一二三四五六七八九十百千两]+\s*[编章节条款项部分篇]|"
    r"[（(]\s*[0-9一二三四五六七八九十]+\s*[)）]|"
    r"[一二三四五六七八九十]+\s*[、.．]|"
    r"\d+(?:\.\d+)*(?:\s*[.、．]|\s+|$)|"
    r"(?:Article|Chapter|Section)\s+\d+"
    r")[\s:：.、]*")

log = logging.getLogger("kit.queries.offline")


def split_sentences(text: str) -> list[str]:
    return [s.strip() for s in _SENTENCE.findall(text) if s.strip()]


def _rng(seed: int, chunk_id: str, generator: str) -> random.Random:
    return random.Random(f"{seed}:{generator}:{chunk_id}")


def ict(chunks: Iterable[dict], per_chunk: int, seed: int, drops: Counter,
        min_sentence_chars: int = 8, keep_ratio: float = 0.5) -> Iterator[tuple[dict, str, str]]:
    """Inverse cloze task: a sentence of the chunk is the query, the chunk without it the positive.

    With probability ``keep_ratio`` the sentence stays in (the positive is the whole chunk), the remedy ORQA
    (Lee et al., 2019) introduced, keeping it 10% of the time: always removing it trains the encoder to ignore
    word overlap. On the sample statutes (benchmarks/RESULTS.md) removing it always made the fine-tuned model
    worse than its base at finding the passage a sentence comes from (MRR@10 0.80 -> 0.55), 10% left that
    unstable (0.69-0.82 across checkpoints), and 50% improved it steadily (0.80 -> 0.90) while keyword queries
    improved as much as before; hence 0.5. The draw is seeded per chunk, like the choice of sentences."""
    if not 0.0 <= keep_ratio <= 1.0:
        raise ValueError(f"ict keep_ratio must lie in [0, 1], got {keep_ratio}")
    for c in chunks:
        sentences = split_sentences(c["text"])
        candidates = [i for i, s in enumerate(sentences) if len(normalise(s)) >= min_sentence_chars]
        if len(sentences) < 2 or not candidates:
            drops["ict_too_few_sentences"] += 1
            continue
        rng = _rng(seed, c["id"], "ict")
        picked = rng.sample(candidates, min(per_chunk, len(candidates)))
        for i in sorted(picked):
            if keep_ratio and rng.random() < keep_ratio:
                yield c, sentences[i], c["text"]
                continue
            rest = "".join(s for j, s in enumerate(sentences) if j != i)
            if len(normalise(rest)) < min_sentence_chars:
                drops["ict_too_few_sentences"] += 1
                continue
            yield c, sentences[i], rest


_jieba_ready = False


def _extractors():
    """jieba's TF-IDF and TextRank extractors (loading jieba's dictionary once, quietly)."""
    global _jieba_ready
    import jieba
    import jieba.analyse
    if not _jieba_ready:
        jieba.setLogLevel(logging.WARNING)
        _jieba_ready = True
    return jieba.analyse.extract_tags, jieba.analyse.textrank


def keywords(chunks: Iterable[dict], per_chunk: int, seed: int, drops: Counter,
             words_per_query: int = 4) -> Iterator[tuple[dict, str, str]]:
    """Keyword queries, the way people type into a search box: TF-IDF top words, then TextRank
    top words, then seeded samples of the top 10 TF-IDF words; each query distinct for its chunk."""
    tfidf, textrank = _extractors()
    for c in chunks:
        text = f"{c.get('title') or ''}\n{c['text']}"
        # Keywords must carry Chinese or be long enough to mean something (drops "1", "a", "of").
        top = [w for w in tfidf(text, topK=10) if _CJK.search(w) or len(w) >= 3]
        if len(top) < 2:
            drops["keywords_too_few"] += 1
            continue
        ranked = [w for w in textrank(text, topK=words_per_query) if _CJK.search(w) or len(w) >= 3]
        rng = _rng(seed, c["id"], "keywords")
        options = [top[:words_per_query], ranked]
        for _ in range(per_chunk * 3):
            k = min(len(top), rng.randint(2, words_per_query))
            options.append(sorted(rng.sample(top, k), key=top.index))
        seen, made = set(), 0
        for words in options:
            if made >= per_chunk:
                break
            if len(words) < 2 or frozenset(words) in seen:
                continue
            seen.add(frozenset(words))
            made += 1
            yield c, " ".join(words), c["text"]


def strip_numbering(title: str) -> str:
    """The words of a title without its leading numbering: '第三章 劳动合同的履行' -> '劳动合同的履行'."""
    t = title.strip()
    for _ in range(3):  # "第一章 第二节 一、总则"
        stripped = _NUMBERING.sub("", t, count=1).strip()
        if stripped == t:
            break
        t = stripped
    return t


def headings(chunks: Iterable[dict], per_chunk: int, seed: int, drops: Counter,
             min_title_chars: int = 2) -> Iterator[tuple[dict, str, str]]:
    """Title -> body. A title that is only numbering ('第十条') carries no words to search with and
    is skipped; a title shared by several chunks of a document points to its first chunk only, so
    the same query never has two contradicting positives."""
    used: set[tuple[str, str]] = set()
    for c in chunks:
        raw = (c.get("title") or "").strip()
        if not raw:
            drops["headings_no_title"] += 1
            continue
        title = strip_numbering(raw)
        if len(normalise(title)) < min_title_chars or not (_CJK.search(title) or re.search(r"[A-Za-z]{3}", title)):
            drops["headings_numbering_only"] += 1
            continue
        key = (c.get("doc") or "", normalise(title))
        if key in used:
            drops["headings_repeated_title"] += 1
            continue
        used.add(key)
        yield c, title, c["text"]


OFFLINE = {"ict": ict, "keywords": keywords, "headings": headings}
