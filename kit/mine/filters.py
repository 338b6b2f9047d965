"""The window's candidates for one row, through the filters, and the seeded sample of what survives.

Filters, applied in this order to each candidate (each counts what it drops):

1. ``positive``: a chunk of a positive, a text equal to a positive, or the query itself.
2. ``adjacent``: a chunk of the same document within ``adjacent`` positions of a positive chunk.
3. margins, where pos is the row's *lowest* positive score: ``relative_margin`` (score above
   ``pos - |pos| * m``), ``absolute_margin`` (above ``pos - m``), ``scaled_margin`` (above ``pos - m * spread``,
   spread = the standard deviation of the window's candidate scores over all rows: scale-free).
4. ``max_score`` / ``min_score``: the absolute window.
5. ``overlap``: shares most of a positive's text (character 5-gram containment above
   ``overlap_threshold``). Last because it is the costly one: it is tested lazily, on the survivors of 1-4
   visited in seeded random order until the row is full -- a uniform sample of what passes every filter,
   like testing all then sampling -- so its count is "dropped among the ``overlap_tests`` tested".
6. ``reranker`` (with ``mine.reranker``): a cross-encoder scores the sampled candidates after all rows are
   sampled (:mod:`kit.mine.rerank`; a row then samples a larger pool, ``want``) and drops false negatives.
"""
from __future__ import annotations

import random
from collections import Counter
from dataclasses import dataclass, field

import numpy as np

from ..io import stable_hash
from .corpus import MiningCorpus, containment, grams
from .options import MineOptions

FILTERS = ["positive", "adjacent", "relative_margin", "absolute_margin", "scaled_margin", "max_score", "min_score",
           "overlap", "reranker"]
MARGINS = ("relative_margin", "absolute_margin", "scaled_margin")


@dataclass
class Counts:
    """What mining saw and dropped, over all rows."""

    dropped: Counter = field(default_factory=Counter)
    examined: int = 0
    overlap_tests: int = 0
    in_window: int = 0            # negatives taken from the requested ranks
    widened: int = 0              # negatives taken past them (widening)


@dataclass
class RowContext:
    """One row's positives as the filters need them."""

    positives: set[int]           # the row's positive texts (unique-text indices)
    excluded: set[int]            # positives and the query's own text
    near: set[int]                # adjacent chunks of a positive
    thresholds: dict[str, float]  # margin name -> cut-off
    pos_grams: list[frozenset]
    pos_scores: list[float]


def margin_thresholds(pos_score: float, opts: MineOptions, spread: float) -> dict[str, float]:
    out = {}
    # null turns every margin off; 0 is a margin like any other (drop what scores above the positive), the same
    # for all three (issue 20: relative_margin used to be off at 0 while the others were on)
    if opts.relative_margin is not None:
        out["relative_margin"] = pos_score - abs(pos_score) * opts.relative_margin
    if opts.absolute_margin is not None:
        out["absolute_margin"] = pos_score - opts.absolute_margin
    if opts.scaled_margin is not None:
        out["scaled_margin"] = pos_score - opts.scaled_margin * spread
    return out


def row_context(corpus: MiningCorpus, row: dict, pos_ids: list[str], qv: np.ndarray, pos_vec,
                opts: MineOptions, spread: float = 0.0) -> RowContext:
    pos_us = {corpus.u_of_id[i] for i in pos_ids} | {corpus.u_of_text[t] for t in row["pos"]
                                                     if t in corpus.u_of_text}
    excluded = set(pos_us)
    if row["query"] in corpus.u_of_text:
        excluded.add(corpus.u_of_text[row["query"]])
    near = ({corpus.u_of_id[j] for i in pos_ids for j in corpus.neighbours(i, opts.adjacent)} - excluded
            if opts.adjacent > 0 else set())
    scores = [float(qv @ pos_vec(t)) for t in row["pos"]]
    thresholds = margin_thresholds(min(scores), opts, spread)
    pos_grams = list({id(g): g for g in [corpus.grams(u) for u in pos_us]
                      + [grams(t) for t in row["pos"] if t not in corpus.u_of_text]}.values())
    return RowContext(pos_us, excluded, near, thresholds, pos_grams, scores)


class RowSampler:
    """Filters one row's candidates as they arrive (window first, widened ranks later) and samples them."""

    def __init__(self, corpus: MiningCorpus, ctx: RowContext, opts: MineOptions, counts: Counts, row: dict,
                 want: int | None = None):
        self.corpus, self.ctx, self.opts, self.counts = corpus, ctx, opts, counts
        self.want = want or opts.negatives   # more than `negatives` when a reranker will remove some
        self.seen: set[int] = set()
        self.chosen: list[tuple[int, float]] = []
        self.rng = random.Random(stable_hash([opts.seed, row["query"], row["pos"]]))

    @property
    def full(self) -> bool:
        return len(self.chosen) >= self.want

    def _reason(self, u: int, s: float) -> str | None:
        ctx, o = self.ctx, self.opts
        if u in ctx.excluded:
            return "positive"
        if u in ctx.near:
            return "adjacent"
        for name, cut in ctx.thresholds.items():
            if s > cut:
                return name
        if o.max_score is not None and s > o.max_score:
            return "max_score"
        if o.min_score is not None and s < o.min_score:
            return "min_score"
        return None

    def cheap_filters(self, cands: np.ndarray, scores: np.ndarray) -> list[tuple[int, float]]:
        kept = []
        for u, s in zip(cands.tolist(), scores.tolist()):
            if u < 0:
                break
            if u in self.seen:   # a widened search may order score ties differently: visit each text once
                continue
            self.seen.add(u)
            self.counts.examined += 1
            why = self._reason(u, s)
            if why:
                self.counts.dropped[why] += 1
            else:
                kept.append((u, s))
        return kept

    def take(self, cands: np.ndarray, scores: np.ndarray, in_window: bool = True) -> None:
        """Visit the survivors of the cheap filters in seeded random order (``sampling: random``, FlagEmbedding's
        hn_mine) or best first (``top``, sentence-transformers' ``sampling_strategy="top"``); the overlap test runs
        on each until the row is full (see the module docstring)."""
        survivors = self.cheap_filters(cands, scores)
        order = (sorted(survivors, key=lambda x: -x[1]) if self.opts.sampling == "top"
                 else self.rng.sample(survivors, len(survivors)))
        for u, s in order:
            if self.full:
                return
            self.counts.overlap_tests += 1
            if any(containment(self.corpus.grams(u), g) > self.opts.overlap_threshold for g in self.ctx.pos_grams):
                self.counts.dropped["overlap"] += 1
            else:
                self.chosen.append((u, s))
                if in_window:
                    self.counts.in_window += 1
                else:
                    self.counts.widened += 1

    def negatives(self) -> list[tuple[int, float]]:
        return sorted(self.chosen, key=lambda x: -x[1])
