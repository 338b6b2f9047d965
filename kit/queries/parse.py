"""Turn an LLM's answer into clean questions, and drop the ones not worth training on.

LLMs asked for JSON still answer with fenced JSON, a bare list, or a numbered list after a
preamble ("以下是…", "Here are…"); all of these are accepted. An answer from which no question can
be read is :class:`JunkAnswer` (the caller retries it a bounded number of times).
"""
from __future__ import annotations

import json
import re
import unicodedata
from collections import Counter
from difflib import SequenceMatcher


class JunkAnswer(ValueError):
    """The answer holds no readable question (empty, prose, broken JSON)."""


_CJK = re.compile(r"[\u3400-\u4dbf\u4e00-\u9fff\uf900-\ufaff]")
_FENCE = re.compile(r"```(?:json|JSON)?\s*(.*?)```", re.S)
# Leading list markers: "1.", "1、", "(1)", "（一）", "一、", "-", "*", "•", "Q1:", "问题1：".
_MARKER = re.compile(
    r"^\s*(?:"
    r"[-*•·●▪]+|"
    r"\d{1,3}\s*[.、)）:：]|"
    r"[（(]\s*(?:\d{1,3}|[一二三四五六七八九十]{1,3})\s*[)）]|"
    r"[一二三四五六七八九十]{1,3}\s*[、.]|"
    r"(?:Q|q|问题|问)\s*\d{0,3}\s*[.:：、]"
    r")\s*"
)
_PREAMBLE = re.compile(r"^\s*(?:以下是|下面是|好的|当然|Here (?:are|is)|Sure|Certainly)", re.I)
_QUOTES = "\"'“”‘’「」『』`"
# Characters ignored when questions are compared: punctuation, symbols and whitespace.
_NOT_CONTENT = re.compile(r"[\W_]+", re.U)


def normalise(text: str) -> str:
    """NFKC, lower case, no punctuation or spaces: two questions equal here are duplicates."""
    return _NOT_CONTENT.sub("", unicodedata.normalize("NFKC", text).lower())


def clean_question(q: str) -> str:
    q = unicodedata.normalize("NFKC", str(q)).strip()
    for _ in range(2):  # "1. 问题：..." carries two markers
        q = _MARKER.sub("", q, count=1).strip()
    q = q.strip(_QUOTES).strip()
    q = re.sub(r"\s+", " ", q)
    # NFKC turns full-width ？ into ?; Chinese questions read better with the full-width mark.
    if _CJK.search(q) and q.endswith("?"):
        q = q[:-1] + "？"
    return q


def _from_json(obj) -> list[str] | None:
    if isinstance(obj, dict):
        for key in ("questions", "queries", "问题", "question_list"):
            if key in obj:
                return _from_json(obj[key])
        lists = [v for v in obj.values() if isinstance(v, list)]
        return _from_json(lists[0]) if len(lists) == 1 else None
    if isinstance(obj, list):
        out = []
        for item in obj:
            if isinstance(item, str):
                out.append(item)
            elif isinstance(item, dict):
                text = item.get("question") or item.get("query") or item.get("问题")
                if isinstance(text, str):
                    out.append(text)
        return out
    return None


def _try_json(text: str) -> list[str] | None:
    candidates = [text]
    candidates += [m.group(1) for m in _FENCE.finditer(text)]
    # JSON embedded in prose: the widest {...} or [...] span.
    for open_, close in (("{", "}"), ("[", "]")):
        i, j = text.find(open_), text.rfind(close)
        if 0 <= i < j:
            candidates.append(text[i:j + 1])
    for c in candidates:
        try:
            obj = json.loads(c.strip())
        except (json.JSONDecodeError, ValueError):
            continue
        got = _from_json(obj)
        if got is not None:
            return got
    return None


def _from_lines(text: str) -> list[str]:
    out = []
    for line in text.splitlines():
        line = line.strip()
        if not line or line.startswith("```") or _PREAMBLE.match(line):
            continue
        had_marker = bool(_MARKER.match(line))
        q = clean_question(line)
        if not q or q.endswith((":", "：")):
            continue  # a heading or preamble such as "问题如下："
        # Unmarked prose lines count only when they read as a question.
        if had_marker or q.endswith(("？", "?")):
            out.append(q)
    return out


def parse_questions(content: str | None) -> list[str]:
    """Questions in ``content`` (JSON object/list, fenced JSON, or a numbered/bulleted list)."""
    if content is None or not content.strip():
        raise JunkAnswer("empty answer")
    got = _try_json(content)
    if got is None:
        got = _from_lines(content)
    questions = [q for q in (clean_question(x) for x in got) if q]
    if not questions:
        raise JunkAnswer(f"no question found in answer: {content[:80]!r}")
    return questions


def copies_chunk(question: str, chunk: str, min_chars: int = 10, share: float = 0.8) -> bool:
    """True when most of the question is one stretch of the chunk (a copied sentence, not a question).

    A question may quote a term of the chunk; it is a copy when its longest run shared with the chunk
    is at least ``min_chars`` characters and ``share`` of the question.
    """
    q, c = normalise(question), normalise(chunk)
    if not q:
        return False
    if q in c:
        return len(q) >= min(min_chars, len(c))
    m = SequenceMatcher(None, q, c, autojunk=False).find_longest_match(0, len(q), 0, len(c))
    return m.size >= min_chars and m.size >= share * len(q)


def filter_questions(questions: list[str], chunk: str, seen: set[str], drops: Counter,
                     limit: int, min_chars: int = 5, require_cjk: bool = True) -> list[str]:
    """Keep up to ``limit`` questions; count each dropped one in ``drops`` under its reason.

    ``seen`` holds normalised questions kept so far (across chunks), so a generic question
    ("这是什么？") asked for two chunks is kept once.
    """
    kept = []
    for q in questions:
        key = normalise(q)
        if len(key) < min_chars:
            drops["too_short"] += 1
        elif require_cjk and not _CJK.search(q):
            drops["wrong_language"] += 1
        elif copies_chunk(q, chunk):
            drops["copies_chunk"] += 1
        elif key in seen:
            drops["duplicate"] += 1
        elif len(kept) >= limit:
            drops["over_per_chunk"] += 1
        else:
            seen.add(key)
            kept.append(q)
    return kept
