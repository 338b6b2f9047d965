"""Before an alias moves: the collection holds exactly the corpus (count parity, every id with its hash), and
searching it gives what the kit's exact search gives (the golden check: the eval questions' recall@k through the
store equals recall@k of an exact inner-product search over the same vectors, within a stated tolerance)."""
from __future__ import annotations

import random
import re

import numpy as np

from ..formats import load_eval
from ..io import KitError
from .encode import ChunkEncoder
from .rows import IndexRow
from .stores import Store

EXACT_CHUNK = 20_000    # corpus vectors scored at a time by the exact search (memory stays bounded)


def parity(store: Store, collection: str, rows: list[IndexRow]) -> dict:
    """Count parity and the rows themselves: none missing, none extra, none stale."""
    stored = store.hashes(collection)
    want = {r.id: r.hash for r in rows}
    count = store.count(collection)
    out = {"corpus": len(want), "stored": count, "missing": sorted(set(want) - set(stored))[:5],
           "extra": sorted(set(stored) - set(want))[:5],
           "stale": sorted(i for i in want if i in stored and stored[i] != want[i])[:5]}
    out["ok"] = count == len(want) and not (out["missing"] or out["extra"] or out["stale"])
    return out


def _first_sentence(text: str) -> str:
    return (re.split(r"[。！？!?\n]", text.strip(), maxsplit=1)[0] or text)[:64]


def questions(rows: list[IndexRow], eval_dir, n: int) -> tuple[list[str], list[set[str]], str]:
    """(question texts, relevant chunk ids of each, where they come from). Eval questions whose relevant chunks are
    not indexed are left out; without an eval set, a seeded sample of chunks ask for themselves."""
    ids = {r.id for r in rows}
    if eval_dir:
        ev = load_eval(eval_dir, max_queries=n, seed=0)
        pairs = [(t, {d for d in ev.qrels[q] if d in ids}) for q, t in zip(ev.query_ids, ev.query_texts)]
        pairs = [(t, rel) for t, rel in pairs if rel]
        if not pairs:
            raise KitError(f"{eval_dir}: no eval question has a relevant chunk in the corpus (an eval set of another "
                           f"corpus?); the golden check cannot run")
        return [t for t, _ in pairs], [rel for _, rel in pairs], f"{len(pairs)} eval questions ({eval_dir})"
    sample = random.Random(0).sample(rows, min(n, len(rows)))
    return ([_first_sentence(r.payload.get("text") or r.text) for r in sample], [{r.id} for r in sample],
            f"{len(sample)} chunks asking for themselves (no eval set)")


def exact_top(queries: np.ndarray, rows: list[IndexRow], encoder: ChunkEncoder, k: int,
              dense=None) -> list[list[str]]:
    """The kit's exact search: every chunk's vector (from the embedding cache, or the encoding layer's shard
    files when ``dense`` holds them) scored against every question."""
    if dense is not None:
        from ..search import exact_top_k

        return [[rows[j].id for j in row if j >= 0] for row in exact_top_k(dense, queries, k)[1]]
    best_s = np.full((len(queries), 0), -np.inf, np.float32)
    best_i = np.zeros((len(queries), 0), np.int64)
    for start in range(0, len(rows), EXACT_CHUNK):
        part = rows[start:start + EXACT_CHUNK]
        scores = queries @ encoder.dense.encode_passages([r.text for r in part]).T
        s = np.concatenate([best_s, scores], axis=1)
        i = np.concatenate([best_i, np.broadcast_to(np.arange(start, start + len(part)), scores.shape)], axis=1)
        order = np.argsort(-s, axis=1, kind="stable")[:, :k]
        best_s, best_i = np.take_along_axis(s, order, 1), np.take_along_axis(i, order, 1)
    return [[rows[j].id for j in row] for row in best_i]


def recall(ranked: list[list[str]], relevant: list[set[str]], k: int) -> float:
    return float(np.mean([len(set(r[:k]) & rel) / len(rel) for r, rel in zip(ranked, relevant)]))


def golden(store: Store, collection: str, rows: list[IndexRow], encoder: ChunkEncoder, eval_dir, k: int,
           n: int, tolerance: float, dense=None) -> dict:
    texts, relevant, source = questions(rows, eval_dir, n)
    q = encoder.queries(texts)
    exact = exact_top(q, rows, encoder, k, dense)
    got = store.search(collection, q, k)
    empty = sum(1 for r in got if not r)
    r_store, r_exact = recall(got, relevant, k), recall(exact, relevant, k)
    overlap = float(np.mean([len(set(g) & set(e)) / max(1, len(e)) for g, e in zip(got, exact)]))
    ok = abs(r_store - r_exact) <= tolerance and empty == 0
    return {"questions": source, "k": k, f"recall@{k}_store": round(r_store, 4), f"recall@{k}_exact": round(r_exact, 4),
            "tolerance": tolerance, "top_k_overlap": round(overlap, 4), "empty_results": empty, "ok": ok}
