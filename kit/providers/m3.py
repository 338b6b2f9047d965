"""bge-m3 folders ranked the three ways the model was trained for: dense, sparse (lexical weights) and ColBERT.

A dense provider (``local:``) sees only bge-m3's CLS vector. This module asks FlagEmbedding's own
``BGEM3FlagModel`` for all three outputs of a bge-m3 folder (one with ``sparse_linear.pt`` and
``colbert_linear.pt``, see :mod:`kit.registry`) and ranks a corpus with each, and with BGE-M3's published
combinations, so a benchmark can tell what the sparse and ColBERT heads add on the user's own questions.

The scores are ``BGEM3FlagModel``'s formulas, computed on whole matrices instead of pair by pair:
``compute_lexical_matching_score`` and ``colbert_score`` are Python loops over one pair at a time, which for
every query against every passage (a 1,000 x 10,000 bench is ten million pairs) takes hours. The test suite checks
the vectorised scores against ``compute_score`` and ``colbert_score`` on single pairs.
"""
from __future__ import annotations

import contextlib
from functools import partial
from pathlib import Path

import numpy as np

from ..io import KitError
from ..modelfolder import HEAD_FILES

KEYS = ("dense", "sparse", "dense+sparse", "dense+sparse+colbert")
COLBERT_CANDIDATES = 100      # ColBERT reranks at least the dense and the sparse top 100 of each query
CORPUS_CHUNK = 4096           # passages per encode call: FlagEmbedding test-runs one batch per call, so not fewer
COLBERT_KEEP_BYTES = 1 << 30  # ColBERT vectors kept from the first pass up to this size; past it, re-encoded


def is_m3_folder(path) -> bool:
    """A local model folder with both of bge-m3's heads. Both: ``BGEM3FlagModel`` loads the heads only when both
    files exist, and otherwise initialises both at random without an error (its log says "new initialize"),
    which would rank with noise."""
    p = Path(path)
    return p.is_dir() and (p / "config.json").exists() and all((p / h).exists() for h in HEAD_FILES)


def m3_rankings(folder: str, queries: list[str], corpus: list[str], depth: int, *,
                weights: tuple[float, float, float] = (0.4, 0.2, 0.4), batch_size: int = 16, max_length: int = 512,
                progress: bool = False) -> dict[str, tuple[np.ndarray, np.ndarray]]:
    """Rank ``corpus`` for each query with a bge-m3 folder: {key: (scores float32, indices int64)}, both of shape
    (len(queries), min(depth, len(corpus))), best first, for the keys ``dense``, ``sparse``, ``dense+sparse`` and
    ``dense+sparse+colbert``.

    Dense and sparse score every passage. The combinations are ``BGEM3FlagModel.compute_score``'s: the weighted
    sum of the scores divided by the sum of the weights used (``weights`` = dense, sparse, ColBERT; the default is
    BGE-M3's published 0.4 / 0.2 / 0.4, which sums to 1, so dense+sparse+colbert is the plain weighted sum);
    ``dense+sparse`` uses the first two weights and ranks every passage. ColBERT compares every query token with
    every passage token, too costly for every passage on a CPU: it reranks only the union of each query's dense
    top and sparse top max(depth, 100), so ``dense+sparse+colbert`` ranks those candidates (at least
    min(depth, len(corpus)) of them). Loaded offline from the local folder, in fp32 unless CUDA is there."""
    if not is_m3_folder(folder):
        missing = [h for h in ("config.json", *HEAD_FILES) if not (Path(folder) / h).exists()]
        raise KitError(f"{folder}: not a bge-m3 folder (missing {', '.join(missing)})")
    if depth < 1:
        raise KitError(f"depth must be >= 1, got {depth}")
    w = tuple(float(x) for x in weights)
    if len(w) != 3 or min(w) < 0 or w[0] + w[1] <= 0:
        raise KitError(f"weights must be three non-negative numbers (dense, sparse, ColBERT) with dense + sparse > 0, "
                       f"got {weights}")
    k = min(depth, len(corpus))
    if not queries or not corpus:
        return {key: (np.zeros((len(queries), k), np.float32), np.zeros((len(queries), k), np.int64)) for key in KEYS}
    model = _load(folder, batch_size, max_length)
    with flag_progress_bars(progress):
        q = model.encode_queries(list(queries), batch_size=batch_size, max_length=max_length, return_dense=True,
                                 return_sparse=True, return_colbert_vecs=True)
        p = _encode_corpus(model, list(corpus), batch_size, max_length, progress)
        q_sparse = _lexical_matrix(q["lexical_weights"], p["sparse"].shape[1])
        q_dense = np.asarray(q["dense_vecs"], np.float32)
        out = _rank_all(q_dense, q_sparse, p, max(k, min(COLBERT_CANDIDATES, len(corpus))), w[:2])
        cands = [np.union1d(out["dense"][1][i], out["sparse"][1][i]) for i in range(len(queries))]
        vectors = p["colbert"] or _reencoded(model, list(corpus), cands, batch_size, max_length)
        colbert = _colbert_scores(q["colbert_vecs"], cands, vectors)
    out = {key: (s[:, :k].copy(), i[:, :k].copy()) for key, (s, i) in out.items()}
    out["dense+sparse+colbert"] = _combined_top(q_dense, q_sparse, p, cands, colbert, w, k)
    return out


def load_m3(folder, batch_size: int, max_length: int, query_max_length: int = 512, device: str | None = None,
            precision: str = "auto"):
    """FlagEmbedding's ``BGEM3FlagModel`` on one device (default: cuda:0 when CUDA is there, else the CPU), fp16 on
    CUDA unless ``precision`` is fp32: the one place the kit loads it (bench's m3 rows, the sparse head of the
    encoding layer, kit index)."""
    import torch
    from FlagEmbedding import BGEM3FlagModel

    device = device or ("cuda:0" if torch.cuda.is_available() else "cpu")
    cuda = device.startswith("cuda")
    # one device: with several GPUs FlagEmbedding would start a process pool per encode call
    return BGEM3FlagModel(str(folder), use_fp16=cuda and precision != "fp32", devices=device, batch_size=batch_size,
                          query_max_length=query_max_length, passage_max_length=max_length)


def _load(folder: str, batch_size: int, max_length: int):
    return load_m3(folder, batch_size, max_length, query_max_length=max_length)


@contextlib.contextmanager
def flag_progress_bars(progress: bool):
    """FlagEmbedding draws its own progress bars on every encode call of more than one batch; with
    ``progress=False`` it gets a tqdm that draws nothing (tqdm reads TQDM_DISABLE only when imported)."""
    if progress:
        yield
        return
    import tqdm
    from FlagEmbedding.inference.embedder.encoder_only import m3 as flag_m3

    saved = flag_m3.tqdm, flag_m3.trange
    flag_m3.tqdm, flag_m3.trange = partial(tqdm.tqdm, disable=True), partial(tqdm.trange, disable=True)
    try:
        yield
    finally:
        flag_m3.tqdm, flag_m3.trange = saved


def _encode_corpus(model, corpus: list[str], batch_size: int, max_length: int, progress: bool) -> dict:
    """Every passage's dense vector and lexical weights (as a sparse matrix), a chunk of passages per encode call;
    their ColBERT vectors too while they fit in COLBERT_KEEP_BYTES (``colbert``: None past it)."""
    from scipy.sparse import vstack
    from tqdm import tqdm

    dense, sparse, kept, kept_bytes = [], [], [], 0
    vocab = _vocab_size(model)
    starts = range(0, len(corpus), CORPUS_CHUNK)
    for start in tqdm(starts, desc="bge-m3 corpus", unit="chunk", disable=not progress or len(starts) < 2):
        p = model.encode_corpus(corpus[start:start + CORPUS_CHUNK], batch_size=batch_size, max_length=max_length,
                                return_dense=True, return_sparse=True, return_colbert_vecs=kept is not None)
        dense.append(np.asarray(p["dense_vecs"], np.float32))
        sparse.append(_lexical_matrix(p["lexical_weights"], vocab))
        if kept is not None:
            kept_bytes += sum(v.nbytes for v in p["colbert_vecs"])
            if kept_bytes <= COLBERT_KEEP_BYTES:
                kept.extend(p["colbert_vecs"])
            else:
                kept = None
    return {"dense": np.concatenate(dense), "sparse": vstack(sparse).tocsr(),
            "colbert": [(np.arange(len(corpus)), kept)] if kept is not None else None}


def _rank_all(q_dense: np.ndarray, q_sparse, p: dict, n: int, w: tuple[float, float]) -> dict:
    """Top ``n`` of every query by dense, sparse and dense+sparse over the whole corpus, a chunk of passages at a
    time (a queries x corpus matrix of scores would not fit for large sets)."""
    tops = {key: _Top(len(q_dense), n) for key in ("dense", "sparse", "dense+sparse")}
    for start in range(0, len(p["dense"]), CORPUS_CHUNK):
        ids = np.arange(start, min(start + CORPUS_CHUNK, len(p["dense"])), dtype=np.int64)
        dense, sparse = _scores(q_dense, q_sparse, p, ids)
        tops["dense"].add(dense, ids)
        tops["sparse"].add(sparse, ids)
        tops["dense+sparse"].add((w[0] * dense + w[1] * sparse) / (w[0] + w[1]), ids)
    return {key: t.result() for key, t in tops.items()}


def _scores(q_dense: np.ndarray, q_sparse, p: dict, ids: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(dense, sparse) scores of the queries with the passages ``ids``: inner products of the (normalised) dense
    vectors, and of the lexical weights."""
    dense = q_dense @ p["dense"][ids].T
    sparse = (q_sparse @ p["sparse"][ids].T).toarray().astype(np.float32)
    return dense, sparse


def _vocab_size(model) -> int:
    """Width of the lexical-weight matrices: every token id the model can see (ids past the embedding table
    would have failed in the encoder)."""
    return max(len(model.tokenizer), int(model.model.vocab_size))


def _lexical_matrix(weights: list[dict], vocab: int):
    """Lexical weights ({token id: weight}, as ``BGEM3FlagModel.encode`` returns them) as a sparse row matrix:
    one matrix product gives ``compute_lexical_matching_score`` (sum over shared tokens of the products)."""
    from scipy.sparse import csr_matrix

    rows, cols, vals = [], [], []
    for r, lw in enumerate(weights):
        for token, weight in lw.items():
            rows.append(r)
            cols.append(int(token))
            vals.append(float(weight))
    return csr_matrix((np.asarray(vals, np.float64), (rows, cols)), shape=(len(weights), vocab))


class _Top:
    """The running top ``n`` (scores, corpus indices) of each query over the chunks seen so far, best first."""

    def __init__(self, queries: int, n: int):
        self.n = n
        self.scores = np.zeros((queries, 0), np.float32)
        self.ids = np.zeros((queries, 0), np.int64)

    def add(self, scores: np.ndarray, ids: np.ndarray) -> None:
        s = np.concatenate([self.scores, scores.astype(np.float32)], axis=1)
        i = np.concatenate([self.ids, np.broadcast_to(ids, scores.shape)], axis=1)
        # stable sort on -score: ties keep corpus order, so the ranking does not depend on the chunking
        order = np.argsort(-s, axis=1, kind="stable")[:, :self.n]
        self.scores, self.ids = np.take_along_axis(s, order, 1), np.take_along_axis(i, order, 1)

    def result(self) -> tuple[np.ndarray, np.ndarray]:
        return self.scores, self.ids


def _reencoded(model, corpus: list[str], cands: list[np.ndarray], batch_size: int, max_length: int):
    """(passage indices, ColBERT vectors) chunk by chunk for the union of the candidates, when the first pass
    could not keep them: memory stays at one chunk's vectors, for a second forward pass over the candidates."""
    union = np.unique(np.concatenate(cands)) if cands else np.zeros(0, np.int64)
    for start in range(0, len(union), CORPUS_CHUNK):
        idx = union[start:start + CORPUS_CHUNK]
        p = model.encode_corpus([corpus[j] for j in idx], batch_size=batch_size, max_length=max_length,
                                return_dense=False, return_sparse=False, return_colbert_vecs=True)
        yield idx, p["colbert_vecs"]


def _colbert_scores(q_vecs: list[np.ndarray], cands: list[np.ndarray], vectors) -> list[np.ndarray]:
    """ColBERT score of each query with each of its candidates (aligned with ``cands``), from ``vectors``: chunks
    of (sorted passage indices, their ColBERT vectors)."""
    out = [np.full(len(c), np.nan, np.float32) for c in cands]
    for idx, vecs in vectors:
        idx = np.asarray(idx)
        for i, c in enumerate(cands):
            mask = np.isin(c, idx)
            if mask.any():
                rows = np.searchsorted(idx, c[mask])
                out[i][mask] = maxsim(q_vecs[i], [vecs[r] for r in rows])
    return out


def maxsim(q: np.ndarray, passages: list[np.ndarray]) -> np.ndarray:
    """``BGEM3FlagModel.colbert_score`` of one query's vectors with each passage's: for every query token the best
    dot product over the passage's tokens, averaged over the query tokens. All passages in one product (tokens
    concatenated, the maximum taken per passage segment), without the padding a batch would need."""
    import torch

    qt = torch.from_numpy(np.asarray(q, np.float32))
    lens = torch.tensor([len(p) for p in passages])
    sims = qt @ torch.from_numpy(np.concatenate(passages).astype(np.float32)).T
    seg = torch.repeat_interleave(torch.arange(len(passages)), lens).expand(len(qt), -1)
    best = torch.full((len(qt), len(passages)), -torch.inf).scatter_reduce(1, seg, sims, "amax")
    return (best.sum(0) / len(qt)).numpy()


def _combined_top(q_dense: np.ndarray, q_sparse, p: dict, cands: list[np.ndarray], colbert: list[np.ndarray],
                  w: tuple[float, float, float], k: int) -> tuple[np.ndarray, np.ndarray]:
    """dense+sparse+colbert over each query's candidates, top ``k``, weighted as ``compute_score`` weighs it."""
    scores = np.zeros((len(cands), k), np.float32)
    ids = np.zeros((len(cands), k), np.int64)
    for i, c in enumerate(cands):
        d, s = _scores(q_dense[i:i + 1], q_sparse[i], p, c)
        combined = (w[0] * d[0] + w[1] * s[0] + w[2] * colbert[i]) / sum(w)
        order = np.argsort(-combined, kind="stable")[:k]
        scores[i], ids[i] = combined[order], c[order]
    return scores, ids
