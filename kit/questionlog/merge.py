"""Duplicates and near-duplicates of a log merged into one question each, counted; and the log questions that are
(near) eval questions.

Questions are compared after :func:`kit.queries.parse.normalise` (NFKC, lower case, no punctuation or spaces).
Near-duplicates are found with rapidfuzz (``fuzz.ratio``, the normalised Indel similarity, in C and on every
core); only questions whose lengths allow the threshold are compared (a ratio r needs the shorter to be at least
r / (2 - r) of the longer), so a log of tens of thousands of distinct questions is seconds, not an all-pairs
sweep. Groups are stars, not chains: the most asked question leads, and each other question joins the first
leader it is close to, so no question is merged with one it does not resemble through a chain of small edits.
"""
from __future__ import annotations

import bisect
from collections import Counter
from dataclasses import dataclass, field

import numpy as np

from ..io import text_hash
from ..queries.parse import normalise
from .reader import LogRow

BLOCK = 512


@dataclass
class LogQuestion:
    """One merged question: the form asked most often, how often any form was asked, and what was clicked."""

    id: str
    query: str
    count: int
    where: str                                   # file:line of its first row
    variants: list[str] = field(default_factory=list)
    clicks: Counter = field(default_factory=Counter)   # passage id or text -> clicks
    first_seen: str | None = None
    last_seen: str | None = None


def _neighbours(keys: list[str], threshold: float) -> dict[int, list[int]]:
    """For each key, the other keys at least ``threshold`` similar (rapidfuzz ratio / 100)."""
    from rapidfuzz import fuzz, process

    order = sorted(range(len(keys)), key=lambda i: len(keys[i]))
    lengths = [len(keys[i]) for i in order]
    out: dict[int, list[int]] = {}
    lo_factor, hi_factor = threshold / (2 - threshold), (2 - threshold) / threshold
    for start in range(0, len(order), BLOCK):
        rows = order[start:start + BLOCK]
        a = bisect.bisect_left(lengths, lengths[start] * lo_factor)
        b = bisect.bisect_right(lengths, lengths[start + len(rows) - 1] * hi_factor)
        cols = order[a:b]
        sims = process.cdist([keys[i] for i in rows], [keys[j] for j in cols], scorer=fuzz.ratio,
                             score_cutoff=threshold * 100, dtype=np.uint8, workers=-1)
        for r, c in zip(*np.nonzero(sims)):
            if rows[r] != cols[c]:
                out.setdefault(rows[r], []).append(cols[c])
    return out


def _stars(keys: list[str], weight: list[int], threshold: float) -> list[int]:
    """The leader of each key: keys in order of weight, each unassigned one leads its unassigned neighbours."""
    leader = list(range(len(keys)))
    if threshold >= 1 or len(keys) < 2:
        return leader
    near = _neighbours(keys, threshold)
    assigned = [False] * len(keys)
    for i in sorted(range(len(keys)), key=lambda i: (-weight[i], i)):
        if assigned[i]:
            continue
        assigned[i] = True
        for j in near.get(i, []):
            if not assigned[j]:
                assigned[j], leader[j] = True, i
    return leader


def merge_questions(rows: list[LogRow], threshold: float) -> list[LogQuestion]:
    """Rows -> merged questions, most asked first. Exact duplicates (after normalising) always merge."""
    by_key: dict[str, list[LogRow]] = {}
    for r in rows:
        by_key.setdefault(normalise(r.query) or r.query, []).append(r)
    keys = list(by_key)
    weight = [sum(r.count for r in by_key[k]) for k in keys]
    leader = _stars(keys, weight, threshold)
    groups: dict[int, list[int]] = {}
    for i, lead in enumerate(leader):
        groups.setdefault(lead, []).append(i)
    out = [_question([r for i in members for r in by_key[keys[i]]], keys[lead])
           for lead, members in groups.items()]
    return sorted(out, key=lambda q: (-q.count, q.where))


def _question(rows: list[LogRow], key: str) -> LogQuestion:
    forms = Counter()
    for r in rows:
        forms[r.query] += r.count
    first = {}
    for r in rows:
        first.setdefault(r.query, r.where)
    best = max(forms, key=lambda f: (forms[f], -list(first).index(f)))
    clicks = Counter()
    for r in rows:
        if r.passage_id or r.passage_text:
            clicks[("id", r.passage_id) if r.passage_id else ("text", r.passage_text)] += r.count
    stamps = sorted(r.timestamp for r in rows if r.timestamp)
    return LogQuestion(id="lq-" + text_hash(key, 12), query=best, count=sum(forms.values()), where=first[best],
                       variants=[f for f in forms if f != best][:5], clicks=clicks,
                       first_seen=stamps[0] if stamps else None, last_seen=stamps[-1] if stamps else None)


def near_eval(questions: list[str], eval_questions: list[str], threshold: float) -> list[bool]:
    """Whether each question equals an eval question (after normalising) or comes within ``threshold``."""
    from rapidfuzz import fuzz, process

    keys = [normalise(q) for q in questions]
    ev = sorted({normalise(q) for q in eval_questions} - {""})
    hit = [k in set(ev) for k in keys]
    if not ev or threshold >= 1:
        return hit
    for start in range(0, len(keys), BLOCK):
        sims = process.cdist(keys[start:start + BLOCK], ev, scorer=fuzz.ratio, score_cutoff=threshold * 100,
                             dtype=np.uint8, workers=-1)
        for r in np.nonzero(sims.max(axis=1))[0]:
            hit[start + int(r)] = True
    return hit
