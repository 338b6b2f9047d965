"""Inner-product search over normalised vectors with faiss, written once for mining, bench and the adapter.

Exact (``IndexFlatIP``) up to ``exact_max`` vectors, where a query batch costs well under a second per
thousand queries; past that an HNSW graph (M=32, efConstruction=200, efSearch=max(2k, 256)), which needs no
training and keeps recall@200 near exact at a fraction of the cost.
"""
from __future__ import annotations

import numpy as np

EXACT_MAX = 200_000


def build_index(vectors: np.ndarray, exact_max: int = EXACT_MAX):
    """(index, description) over ``vectors``."""
    import faiss

    dim = vectors.shape[1]
    if len(vectors) <= exact_max:
        index, kind = faiss.IndexFlatIP(dim), "flat-ip (exact)"
    else:
        index = faiss.IndexHNSWFlat(dim, 32, faiss.METRIC_INNER_PRODUCT)
        index.hnsw.efConstruction = 200
        kind = "hnsw (approximate, M=32)"
    index.add(np.ascontiguousarray(vectors, dtype=np.float32))
    return index, kind


def search(index, queries: np.ndarray, k: int, batch: int = 4096) -> tuple[np.ndarray, np.ndarray]:
    """(scores, ids) of the top ``k`` per query, best first; ids are -1 past the end of a small index."""
    import faiss

    if isinstance(index, faiss.IndexHNSWFlat):
        index.hnsw.efSearch = max(2 * k, 256)
    if len(queries) == 0:
        return np.zeros((0, k), dtype=np.float32), np.zeros((0, k), dtype=np.int64)
    scores, ids = [], []
    for i in range(0, len(queries), batch):
        s, x = index.search(np.ascontiguousarray(queries[i:i + batch], dtype=np.float32), k)
        scores.append(s)
        ids.append(x)
    return np.concatenate(scores), np.concatenate(ids)


def top_k(queries: np.ndarray, docs: np.ndarray, k: int, exact_max: int = EXACT_MAX) -> tuple[np.ndarray, np.ndarray]:
    """Top ``k`` documents (at most all of them) for each query."""
    index, _ = build_index(docs, exact_max)
    return search(index, queries, min(k, len(docs)))


def mrr_at_k(queries: np.ndarray, docs: np.ndarray, relevant: list[set[int]], k: int = 10) -> float:
    """Mean reciprocal rank of the first relevant document within the top k."""
    _, idx = top_k(queries, docs, k)
    total = 0.0
    for row, rel in zip(idx, relevant):
        for rank, j in enumerate(row, 1):
            if int(j) in rel:
                total += 1.0 / rank
                break
    return total / max(len(relevant), 1)
