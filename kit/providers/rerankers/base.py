"""The reranker interface: score (query, passage) pairs through the on-disk cache, and reorder candidates.

Scores come in the reranker's own scale: ``score_kind`` says which. Local cross-encoders give raw logits (what
FlagEmbedding's ``FlagReranker.compute_score`` returns and what its trainer learns); rerank APIs give a relevance
in [0, 1] (a sigmoid of such a logit). :meth:`Reranker.logits` puts both on the logit scale, where the kit's
margins and knowledge-distillation targets live: a listwise-trained cross-encoder only learns logit
*differences* (its loss is a softmax over one query's passages), so "candidate within m of the positive" is
meaningful there and nowhere else.
"""
from __future__ import annotations

import time
from typing import Sequence

import numpy as np

from .cache import Pair, RerankCache

PROBABILITY_EPS = 1e-6


def new_stats() -> dict:
    return {"pairs": 0, "cached": 0, "scored": 0, "tokens": 0, "api_calls": 0, "seconds": 0.0}


def to_logits(scores, kind: str) -> np.ndarray:
    s = np.asarray(scores, dtype=np.float64)
    if kind == "logit":
        return s
    p = np.clip(s, PROBABILITY_EPS, 1 - PROBABILITY_EPS)
    return np.log(p / (1 - p))


class Reranker:
    """Base class of the rerankers (local cross-encoder, OpenAI-compatible /v1/rerank, DashScope)."""

    spec: str = ""
    model_name: str = ""
    score_kind: str = "logit"          # logit | probability
    max_input_tokens: int | None = None
    price_per_1m_tokens: float | None = 0.0

    def __init__(self, cache: RerankCache | str | bool | None = None, progress: bool = True):
        self.cache = None if cache is False else cache if isinstance(cache, RerankCache) else RerankCache(cache)
        self.progress = progress
        self.stats = new_stats()

    @property
    def namespace(self) -> str:
        raise NotImplementedError

    def _fetch(self, ns: str, todo: dict[str, list[str]], have: dict[Pair, float], bar) -> None:
        """Score the uncached passages of each query; put every score in ``have`` and in the cache as soon as
        its request or batch returns."""
        raise NotImplementedError

    def score_groups(self, groups: Sequence[tuple[str, Sequence[str]]], desc: str | None = None) -> list[np.ndarray]:
        """Scores of each (query, passages) group, in order; each pair is scored once, ever (the cache)."""
        from tqdm.auto import tqdm

        t0 = time.perf_counter()
        ns = self.namespace
        pairs = list(dict.fromkeys((q, p) for q, ps in groups for p in ps))
        have = self.cache.get_many(ns, pairs) if self.cache is not None else {}
        todo: dict[str, list[str]] = {}
        for q, p in pairs:
            if (q, p) not in have:
                todo.setdefault(q, []).append(p)
        n_todo = sum(len(v) for v in todo.values())
        if n_todo:
            show = self.progress and desc is not None
            with tqdm(total=n_todo, desc=desc or self.spec, unit="pair", leave=False, disable=not show or None) as bar:
                self._fetch(ns, todo, have, bar)
        self.stats["pairs"] += len(pairs)
        self.stats["cached"] += len(pairs) - n_todo
        self.stats["scored"] += n_todo
        self.stats["seconds"] += time.perf_counter() - t0
        return [np.asarray([have[(q, p)] for p in ps], dtype=np.float64) for q, ps in groups]

    def score(self, query: str, passages: Sequence[str]) -> np.ndarray:
        return self.score_groups([(query, list(passages))])[0]

    def logits(self, scores) -> np.ndarray:
        """Scores on the logit scale (see the module docstring)."""
        return to_logits(scores, self.score_kind)

    def rerank(self, query: str, passages: Sequence[str], top_n: int | None = None) -> list[tuple[int, float]]:
        """(index into ``passages``, score), best first; ties keep the incoming order (stable sort)."""
        s = self.score(query, passages)
        order = np.argsort(-s, kind="stable")
        return [(int(i), float(s[i])) for i in order[: top_n or len(order)]]

    def cost_usd(self, tokens: int) -> float | None:
        return None if self.price_per_1m_tokens is None else tokens * self.price_per_1m_tokens / 1e6
