"""IR metrics from pytrec_eval (the reference implementation of trec_eval): nDCG@k (ndcg_cut), recall@k,
MAP@k (map_cut) and hit@k (trec_eval's success@k). MRR@k is computed here because trec_eval has no cut-off
form of it: its recip_rank looks at the whole ranking and ignores a ".k" parameter (tests/bench/test_metrics.py
checks that), so MRR@10 would silently become MRR@depth.
"""
from __future__ import annotations

from typing import Iterable

import numpy as np


def run_from_ranking(query_ids: list[str], doc_ids: list[str], indices: np.ndarray) -> dict[str, dict[str, float]]:
    """A pytrec_eval run from ranked indices. Scores are rank-derived so ties cannot reorder our ranking
    (pytrec_eval sorts by score, then by doc id)."""
    run: dict[str, dict[str, float]] = {}
    k = indices.shape[1] if indices.ndim == 2 else 0
    for qi, qid in enumerate(query_ids):
        ranked = {}
        for r, di in enumerate(indices[qi]):
            if di < 0:
                continue
            ranked.setdefault(doc_ids[int(di)], float(k - r))
        run[qid] = ranked
    return run


def evaluate(run: dict[str, dict[str, float]], qrels: dict[str, dict[str, int]], ks: Iterable[int]) -> dict[str, float]:
    """Mean hit@k, MRR@k, recall@k, nDCG@k, MAP@k over the queries in ``qrels`` (a query missing from the
    run scores 0)."""
    import pytrec_eval

    ks = sorted(set(int(k) for k in ks))
    qrels = {q: {d: int(r) for d, r in rel.items()} for q, rel in qrels.items() if rel}
    full_run = {q: run.get(q, {}) or {"__none__": 0.0} for q in qrels}
    cuts = ",".join(map(str, ks))
    evaluator = pytrec_eval.RelevanceEvaluator(
        qrels, {f"ndcg_cut.{cuts}", f"recall.{cuts}", f"map_cut.{cuts}", f"success.{cuts}"})
    per_query = evaluator.evaluate(full_run)
    out: dict[str, float] = {}
    n = len(qrels)
    for k in ks:
        out[f"ndcg@{k}"] = sum(per_query[q][f"ndcg_cut_{k}"] for q in qrels) / n if n else 0.0
        out[f"recall@{k}"] = sum(per_query[q][f"recall_{k}"] for q in qrels) / n if n else 0.0
        out[f"map@{k}"] = sum(per_query[q][f"map_cut_{k}"] for q in qrels) / n if n else 0.0
        out[f"hit@{k}"] = sum(per_query[q][f"success_{k}"] for q in qrels) / n if n else 0.0
    # trec_eval's order: score descending, then doc id descending on ties (our scores are rank-derived, so
    # there are none from run_from_ranking).
    ranked = {q: [d for d, _ in sorted(full_run[q].items(), key=lambda x: (-x[1], _desc(x[0])))] for q in qrels}
    for k in ks:
        rr = 0.0
        for q, rel in qrels.items():
            first = next((i for i, d in enumerate(ranked[q][:k]) if rel.get(d, 0) > 0), None)
            if first is not None:
                rr += 1.0 / (first + 1)
        out[f"mrr@{k}"] = rr / n if n else 0.0
    return {k: round(v, 6) for k, v in sorted(out.items())}


class _desc(str):
    """Sort key that orders strings descending (trec_eval breaks score ties by doc id, descending)."""

    def __lt__(self, other):
        return str.__gt__(self, other)


def rejection_threshold(pos: np.ndarray, neg: np.ndarray) -> dict:
    """The score that best separates gold passages from the top-ranked wrong ones (max Youden's J =
    TPR - FPR over every observed score). Below it a hit is more likely irrelevant than relevant."""
    pos, neg = np.asarray(pos, dtype=np.float64), np.asarray(neg, dtype=np.float64)
    if not len(pos) or not len(neg):
        return {"threshold": None, "tpr": None, "fpr": None, "method": "youden_j"}
    cands = np.unique(np.concatenate([pos, neg]))
    ps, ns = np.sort(pos), np.sort(neg)
    tpr = 1 - np.searchsorted(ps, cands, side="left") / len(ps)
    fpr = 1 - np.searchsorted(ns, cands, side="left") / len(ns)
    j = tpr - fpr
    i = int(np.argmax(j))
    return {"threshold": round(float(cands[i]), 4), "tpr": round(float(tpr[i]), 4), "fpr": round(float(fpr[i]), 4),
            "method": "youden_j"}


def per_query(run: dict[str, dict[str, float]], qrels: dict[str, dict[str, int]], query_ids: list[str],
              k: int = 10) -> dict[str, list[float]]:
    """Reciprocal rank@k and recall@k of each query (in ``query_ids`` order): what the paired bootstrap
    resamples."""
    rr, rec = [], []
    for q in query_ids:
        rel = {d for d, r in qrels[q].items() if r > 0}
        ranked = [d for d, _ in sorted(run.get(q, {}).items(), key=lambda x: -x[1])][:k]
        first = next((i for i, d in enumerate(ranked) if d in rel), None)
        rr.append(0.0 if first is None else 1.0 / (first + 1))
        rec.append(len(rel & set(ranked)) / len(rel) if rel else 0.0)
    return {f"mrr@{k}": [round(x, 6) for x in rr], f"recall@{k}": [round(x, 6) for x in rec]}


def paired_bootstrap(base: list[float], other: list[float], n: int = 2000, seed: int = 0,
                     level: float = 0.95) -> dict:
    """The difference and the ratio of two models' means over the same questions, each with a percentile
    interval from ``n`` paired resamples of the questions (the same resampled questions for both models, so
    question difficulty cancels out). Written with numpy because the resampling is three lines and scipy's
    ``bootstrap`` does not resample a ratio of paired means directly."""
    a, b = np.asarray(base, dtype=np.float64), np.asarray(other, dtype=np.float64)
    if len(a) != len(b) or len(a) == 0:
        raise ValueError("paired bootstrap needs the same non-empty set of questions for both models")
    idx = np.random.default_rng(seed).integers(0, len(a), size=(n, len(a)))
    ma, mb = a[idx].mean(axis=1), b[idx].mean(axis=1)
    lo_q, hi_q = 100 * (1 - level) / 2, 100 * (1 + level) / 2
    diff = mb - ma
    with np.errstate(divide="ignore", invalid="ignore"):
        ratio = np.where(ma > 0, mb / ma, np.nan)
    out = {"n_questions": int(len(a)), "resamples": n, "level": level,
           "base": round(float(a.mean()), 6), "other": round(float(b.mean()), 6),
           "diff": round(float(b.mean() - a.mean()), 6),
           "diff_lo": round(float(np.percentile(diff, lo_q)), 6), "diff_hi": round(float(np.percentile(diff, hi_q)), 6)}
    if a.mean() > 0:
        out.update({"ratio": round(float(b.mean() / a.mean()), 4),
                    "ratio_lo": round(float(np.nanpercentile(ratio, lo_q)), 4),
                    "ratio_hi": round(float(np.nanpercentile(ratio, hi_q)), 4)})
    out["significant"] = bool(out["diff_lo"] > 0 or out["diff_hi"] < 0)
    return out


def mean_interval(values: list[float], n: int = 2000, seed: int = 0, level: float = 0.95) -> tuple[float, float]:
    """Percentile bootstrap interval of one model's mean (for the results table)."""
    v = np.asarray(values, dtype=np.float64)
    if not len(v):
        return (0.0, 0.0)
    means = v[np.random.default_rng(seed).integers(0, len(v), size=(n, len(v)))].mean(axis=1)
    return (round(float(np.percentile(means, 100 * (1 - level) / 2)), 6),
            round(float(np.percentile(means, 100 * (1 + level) / 2)), 6))
