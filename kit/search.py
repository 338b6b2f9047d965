"""Inner-product search over normalised vectors with faiss, written once for mining, bench and the adapter.

Search that fits the size: exact (``IndexFlatIP``) up to ``exact_max`` vectors, where a query batch costs well under
a second per thousand queries; past that an approximate index (``search.ann``): an HNSW graph (M=32,
efConstruction=200, efSearch=max(2k, 256); no training) by default, or IVF lists (nlist ~ 4 sqrt(n), trained on a
seeded sample) with flat, SQ8 or PQ codes when memory matters more than recall. GPU faiss is used for the flat and
IVF indexes when it is installed and sees a GPU. The vectors may be an array or shard files
(:class:`kit.encode.ShardedVectors`): they are added one shard at a time, so the index is the only full copy.

An approximate index is never trusted blindly: :func:`measure_recall` searches a seeded sample of the queries
exactly (streaming over the vectors) and reports the share of the exact top-k the index finds, and for mining the
share of the exact window of ranks (e.g. 2-200) that the index's same window recovers; :func:`recall_advice`
suggests the efSearch / nprobe that would reach the target on that sample.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar

import numpy as np

from .options import option

EXACT_MAX = 200_000
ANN_KINDS = ("hnsw", "hnsw-sq8", "ivf", "ivf-sq8", "ivf-pq")
RECALL_TARGET = 0.95
GPU_K_MAX = 2048          # faiss GPU indexes return at most this many neighbours


@dataclass
class SearchOptions:
    """The ``search:`` section (flags of the commands that search a corpus)."""

    SECTION: ClassVar[str] = "search"

    ann: str = option("hnsw", choices=ANN_KINDS, help="Index past exact_max: hnsw (graph, no training), hnsw-sq8 "
                      "(graph over 8-bit codes: 1/4 of the memory), ivf (inverted lists, exact codes), ivf-sq8, ivf-pq "
                      "(smallest, lowest recall). Its recall is measured and reported.")
    ef_search: int | None = option(None, help="HNSW efSearch (default max(2k, 256)); higher: better recall, slower.")
    nlist: int | None = option(None, help="IVF lists (default 4 x sqrt(vectors)).")
    nprobe: int | None = option(None, help="IVF lists searched per query (default nlist/8, at least 16).")
    recall_sample: int = option(200, help="Queries sampled (seeded) to measure an approximate index's recall against "
                                "exact search; 0 turns the measurement off.")
    gpu: bool = option(True, help="Use GPU faiss for flat and IVF indexes when it is installed and sees a GPU.")


def _blocks(vectors):
    """(start, block) pairs of an array or of shard files, one block in memory at a time."""
    if hasattr(vectors, "iter_shards"):
        yield from vectors.iter_shards()
    else:
        yield 0, np.ascontiguousarray(vectors, dtype=np.float32)


def _sample_rows(vectors, n: int, seed: int = 0) -> np.ndarray:
    total = len(vectors)
    pick = np.sort(np.random.default_rng(seed).choice(total, size=min(n, total), replace=False))
    out = []
    for start, block in _blocks(vectors):
        sel = pick[(pick >= start) & (pick < start + len(block))] - start
        out.append(block[sel])
    return np.ascontiguousarray(np.concatenate(out), dtype=np.float32)


def _factory(kind: str, dim: int, n: int, nlist: int | None) -> tuple[str, int | None]:
    if kind.startswith("hnsw"):
        return ("HNSW32" if kind == "hnsw" else "HNSW32_SQ8"), None
    nlist = int(nlist or max(16, min(65536, 4 * int(np.sqrt(n)))))
    codes = {"ivf": "Flat", "ivf-sq8": "SQ8"}.get(kind)
    if codes is None:   # ivf-pq: 4 dims per 8-bit code
        m = next(m for m in (dim // 4, dim // 8, dim // 2, dim) if m and dim % m == 0)
        codes = f"PQ{m}"
    return f"IVF{nlist},{codes}", nlist


def _to_gpu(index, use: bool):
    import faiss

    if not use or not hasattr(faiss, "index_cpu_to_all_gpus") or faiss.get_num_gpus() < 1:
        return index
    return faiss.index_cpu_to_all_gpus(index)


class Index:
    """A faiss index with how it searches: ``kind`` (a description), ``params`` (efSearch / nprobe), and the CPU
    copy that answers when a GPU index cannot (k above 2048)."""

    def __init__(self, index, kind: str, params: dict | None = None, cpu=None, exact: bool = False):
        self.index, self.kind, self.params, self.cpu, self.exact = index, kind, dict(params or {}), cpu, exact

    @property
    def ntotal(self) -> int:
        return int(self.index.ntotal)

    def search(self, queries: np.ndarray, k: int, batch: int = 4096, params: dict | None = None):
        import faiss

        index = self.index if (self.cpu is None or k <= GPU_K_MAX) else self.cpu
        p = {**self.params, **(params or {})}
        space = faiss.GpuParameterSpace() if index is not self.cpu and self.cpu is not None else faiss.ParameterSpace()
        if self.kind.startswith("hnsw"):
            ef = p.get("efSearch")
            space.set_index_parameter(index, "efSearch", max(int(ef), k) if ef else max(2 * k, 256))
        if "nprobe" in p:            # (nlist is informative: the lists the index was trained with)
            space.set_index_parameter(index, "nprobe", int(p["nprobe"]))
        if len(queries) == 0:
            return np.zeros((0, k), dtype=np.float32), np.zeros((0, k), dtype=np.int64)
        scores, ids = [], []
        for i in range(0, len(queries), batch):
            s, x = index.search(np.ascontiguousarray(queries[i:i + batch], dtype=np.float32), k)
            scores.append(s)
            ids.append(x)
        return np.concatenate(scores), np.concatenate(ids)


def build_index(vectors, exact_max: int = EXACT_MAX, options: SearchOptions | None = None, seed: int = 0):
    """(index, description) over ``vectors`` (an array, or shard files added one shard at a time)."""
    import faiss

    o = options or SearchOptions()
    n, dim = len(vectors), int(vectors.shape[1])
    if n <= exact_max:
        cpu = faiss.IndexFlatIP(dim)
        for _, block in _blocks(vectors):
            cpu.add(block)
        gpu = _to_gpu(cpu, o.gpu)
        return Index(gpu, "flat-ip (exact)" + (" on GPU" if gpu is not cpu else ""),
                     cpu=cpu if gpu is not cpu else None, exact=True), "flat-ip (exact)"
    spec, nlist = _factory(o.ann, dim, n, o.nlist)
    cpu = faiss.index_factory(dim, spec, faiss.METRIC_INNER_PRODUCT)
    params: dict = {}
    if o.ann.startswith("hnsw"):
        cpu.hnsw.efConstruction = 200
        if o.ef_search:
            params["efSearch"] = o.ef_search
        kind = f"hnsw (approximate, M=32{', SQ8' if o.ann == 'hnsw-sq8' else ''})"
    else:
        params["nprobe"] = int(o.nprobe or max(16, nlist // 8))
        params["nlist"] = nlist
        kind = f"{o.ann} (approximate, nlist={nlist}, nprobe={params['nprobe']})"
    if not cpu.is_trained:
        cpu.train(_sample_rows(vectors, max(40 * (nlist or 256), 20_000), seed))
    for _, block in _blocks(vectors):
        cpu.add(block)
    index = _to_gpu(cpu, o.gpu) if not o.ann.startswith("hnsw") else cpu
    return Index(index, kind + (" on GPU" if index is not cpu else ""), params,
                 cpu=cpu if index is not cpu else None), kind


def search(index, queries: np.ndarray, k: int, batch: int = 4096) -> tuple[np.ndarray, np.ndarray]:
    """(scores, ids) of the top ``k`` per query, best first; ids are -1 past the end of a small index."""
    if not isinstance(index, Index):
        index = Index(index, "hnsw" if hasattr(index, "hnsw") else "faiss")
    return index.search(queries, k, batch)


def exact_top_k(vectors, queries: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
    """Exact top ``k`` by streaming over the vectors (one block in memory): the reference for recall."""
    q = np.ascontiguousarray(queries, dtype=np.float32)
    best_s = np.full((len(q), 0), -np.inf, dtype=np.float32)
    best_i = np.zeros((len(q), 0), dtype=np.int64)
    for start, block in _blocks(vectors):
        s = q @ block.T
        ids = np.broadcast_to(np.arange(start, start + len(block), dtype=np.int64), s.shape)
        s, ids = np.concatenate([best_s, s], 1), np.concatenate([best_i, ids], 1)
        keep = min(k, s.shape[1])
        part = np.argpartition(-s, keep - 1, axis=1)[:, :keep]
        best_s, best_i = np.take_along_axis(s, part, 1), np.take_along_axis(ids, part, 1)
    order = np.argsort(-best_s, axis=1, kind="stable")
    return np.take_along_axis(best_s, order, 1), np.take_along_axis(best_i, order, 1)


TIE = 1e-5   # scores this close count as ties: which of two tied texts an index returns is not a miss


def _true_scores(vectors, queries: np.ndarray, ids: np.ndarray) -> np.ndarray:
    """Exact scores of the returned ids (-inf for -1), read from the vectors (an array or shard files)."""
    flat = ids.ravel()
    valid = np.unique(flat[flat >= 0])
    rows = vectors[valid] if len(valid) else np.zeros((0, queries.shape[1]), np.float32)
    pos = np.searchsorted(valid, np.where(flat >= 0, flat, valid[0] if len(valid) else 0))
    got = np.asarray(rows, dtype=np.float32)[pos].reshape(ids.shape + (queries.shape[1],))
    out = np.einsum("qkd,qd->qk", got, queries.astype(np.float32))
    return np.where(ids >= 0, out, -np.inf)


def _found(true: np.ndarray, exact: np.ndarray, a: int, b: int) -> tuple[int, int]:
    """Of each query's exact ranks a..b-1 (0-based), how many the index's same ranks recover: an item counts when
    its exact score reaches the exact window's lowest score (ties at the boundary are not misses)."""
    found = total = 0
    for t, e in zip(true, exact):
        want = int(np.isfinite(e[a:b]).sum())
        if want:
            found += min(want, int((t[a:b] >= e[b - 1 if np.isfinite(e[b - 1]) else a + want - 1] - TIE).sum()))
            total += want
    return found, total


def measure_recall(index: Index, vectors, queries: np.ndarray, k: int, window: tuple[int, int] | None = None,
                   sample: int = 200, seed: int = 0, params: dict | None = None, reference=None) -> tuple[dict, tuple]:
    """Recall of ``index`` against exact search on a seeded sample of ``queries``: ``recall_at_k`` (share of the
    exact top k found in the index's top k) and, with ``window=(first, last)``, ``window_recall``: share of the
    exact ranks first..last found among the index's ranks first..last (what mining samples from); tied scores
    count as found. Returns (the numbers, the exact results on the sample: pass them back as ``reference`` to try
    other settings cheaply)."""
    k = min(k, len(vectors))
    pick = np.sort(np.random.default_rng(seed).choice(len(queries), size=min(sample, len(queries)), replace=False))
    qs = np.asarray(queries[pick], dtype=np.float32)     # (queries may be shard files: only the sample is read)
    reference = reference if reference is not None else exact_top_k(vectors, qs, k)
    exact = reference[0]
    _, an_i = index.search(qs, k, params=params)
    true = _true_scores(vectors, qs, an_i)
    found, total = _found(true, exact, 0, k)
    out = {"queries": int(len(pick)), "k": int(k), "recall_at_k": round(found / max(1, total), 4), "seed": seed}
    if window is not None:
        a, b = window[0] - 1, min(window[1], k)
        wf, wt = _found(true, exact, a, b)
        out["window"] = f"{window[0]}-{b}"
        out["window_recall"] = round(wf / max(1, wt), 4)
    return out, reference


def recall_advice(index: Index, vectors, queries, k: int, window, measured: dict, reference, sample: int,
                  seed: int = 0, target: float = RECALL_TARGET) -> dict:
    """When recall is below ``target``: the search setting that reaches it on the same sample (doubling efSearch or
    nprobe up to 4 times), or the advice to search exactly."""
    key = "window_recall" if "window_recall" in measured else "recall_at_k"
    if measured[key] >= target or index.exact:
        return {"ok": True}
    name = "efSearch" if index.kind.startswith("hnsw") else "nprobe"
    flag = {"efSearch": "ef_search", "nprobe": "nprobe"}[name]
    value = int(index.params.get(name) or (max(2 * k, 256) if name == "efSearch" else 16))
    for _ in range(4):
        if name == "nprobe" and value >= index.params.get("nlist", value + 1):
            break                      # every list is searched already: more cannot help
        value = min(2 * value, index.params.get("nlist", 2 * value)) if name == "nprobe" else 2 * value
        r, _ = measure_recall(index, vectors, queries, k, window, sample, seed, params={name: value},
                              reference=reference)
        if r[key] >= target:
            return {"ok": False, "suggest": {flag: value}, "reaches": r[key],
                    "message": f"{key.replace('_', ' ')} {measured[key]:.3f} < {target} on {measured['queries']} "
                               f"sampled queries; search.{flag}: {value} reaches {r[key]:.3f} on the same sample "
                               f"(or raise exact_max above {len(vectors)} for exact search)"}
    return {"ok": False, "suggest": {"exact_max": len(vectors)},
            "message": f"{key.replace('_', ' ')} {measured[key]:.3f} < {target} on {measured['queries']} sampled "
                       f"queries, and {name} {value} still misses it; raise exact_max above {len(vectors)} (exact "
                       f"search) or use search.ann: hnsw"}


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
