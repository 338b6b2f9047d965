"""Candidate passages for each logged question: the current model's top ``k`` (faiss over the corpus, through the
kit's embedding cache: passages are embedded as ``kit bench`` embeds them, title + text, so a corpus the bench
already saw costs nothing) and BM25's top ``k`` (bm25s over jieba tokens), fused by reciprocal rank."""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ..formats import titled

RRF_K = 60   # the usual reciprocal-rank-fusion constant (Cormack et al. 2009)


@dataclass
class Candidates:
    dense_ids: np.ndarray       # (questions, k) corpus rows, best first
    dense_scores: np.ndarray
    bm25_ids: np.ndarray
    bm25_scores: np.ndarray
    question_vectors: np.ndarray

    def dense_ranks(self, i: int) -> dict[int, int]:
        return {int(j): r for r, j in enumerate(self.dense_ids[i], 1) if j >= 0}

    def bm25_ranks(self, i: int) -> dict[int, int]:
        """BM25 ranks of the passages sharing at least one word with the question (a zero score ranks nothing)."""
        return {int(j): r for r, (j, s) in enumerate(zip(self.bm25_ids[i], self.bm25_scores[i]), 1) if s > 0}

    def fused(self, i: int, n: int, extra: list[int] = ()) -> list[int]:
        """The union of both lists, best fused rank first, at most ``n``; ``extra`` rows (clicked passages)
        are always kept."""
        score: dict[int, float] = {}
        for ranks in (self.dense_ranks(i), self.bm25_ranks(i)):
            for j, r in ranks.items():
                score[j] = score.get(j, 0.0) + 1.0 / (RRF_K + r)
        top = sorted(score, key=lambda j: (-score[j], j))[:n]
        return top + [j for j in dict.fromkeys(extra) if j not in top]

    def top1(self, i: int) -> tuple[float, float]:
        """The model's top-1 score and its lead over the top-2."""
        s = self.dense_scores[i]
        return float(s[0]), float(s[0] - s[1]) if len(s) > 1 else 0.0


def passage_texts(chunks: list[dict]) -> list[str]:
    return [titled(c.get("title"), c["text"]) for c in chunks]


def encoder(model: str, opts):
    from ..embed import LocalEncoder

    return LocalEncoder(model, precision=opts.precision, batch_size=opts.batch_size, progress=opts.progress)


def find_candidates(queries: list[str], chunks: list[dict], model: str, opts) -> Candidates:
    from ..providers.bm25 import BM25Provider
    from ..search import top_k

    k = min(opts.candidates, len(chunks))
    texts = passage_texts(chunks)
    enc = encoder(model, opts)
    docs = enc.encode_passages(texts, desc="log: embedding passages")
    qv = enc.encode_queries(queries, desc="log: embedding questions")
    dense_scores, dense_ids = top_k(qv, docs, k)
    index = BM25Provider(tokens=getattr(opts, "bm25_tokens", "words")).build(texts)
    bm_scores = np.zeros((len(queries), k), dtype=np.float32)
    bm_ids = np.zeros((len(queries), k), dtype=np.int64)
    for i, q in enumerate(queries):
        bm_scores[i], bm_ids[i] = index.query(q, k)
    return Candidates(dense_ids, dense_scores, bm_ids, bm_scores, qv)
