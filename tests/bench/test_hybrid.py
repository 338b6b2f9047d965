"""Hybrid rows of `kit bench` (kit/bench/hybrid.py): the fusions against hand-computed rankings, the cross-fitted
weight never tuned on the questions it scores, and the rows end to end on real questions."""
import json

import numpy as np
import pytest

from kit.bench.hybrid import WEIGHT_GRID, cross_fitted, folds_of, rrf_ranking, summarise, weighted_rankings
from kit.bench.stage import BenchOptions, bench
from kit.formats import load_eval
from kit.providers import make_provider


def _rk(*rows):
    """(scores, indices) from rows of (doc, score) pairs."""
    return (np.array([[s for _, s in r] for r in rows], dtype=np.float32),
            np.array([[d for d, _ in r] for r in rows], dtype=np.int64))


def test_rrf_follows_the_formula():
    dense = _rk([(1, .9), (2, .8), (3, .7)])
    lexical = _rk([(3, 9.0), (4, 5.0), (1, 1.0)])
    got = rrf_ranking(dense, lexical, k=60, depth=4)[0].tolist()
    fused = {1: 1 / 61 + 1 / 63, 2: 1 / 62, 3: 1 / 63 + 1 / 61, 4: 1 / 62}
    # 1 and 3 tie (1/61 + 1/63); the tie keeps the dense order, as do 2 and 4
    assert got == [1, 3, 2, 4]
    assert sorted(fused, key=lambda d: -fused[d])[:2] == [1, 3]


def test_weighted_fusion_ends_are_the_two_models_and_the_middle_mixes():
    dense = _rk([(1, .90), (2, .85), (3, .10)])
    lexical = _rk([(3, 12.0), (2, 11.0), (5, 0.0)])
    by_w = weighted_rankings(dense, lexical, (1.0, 0.0, 0.5), depth=4)
    assert by_w[0, 0, :3].tolist() == [1, 2, 3]            # dense alone
    assert by_w[1, 0, :2].tolist() == [3, 2]                # lexical alone (min-max: 3 -> 1, 2 -> 11/12)
    # 0.5: doc 2 is high in both lists (0.5 * 0.9375 + 0.5 * 0.9167) and beats either list's own top
    assert by_w[2, 0, 0] == 2


def test_folds_are_seeded_and_balanced():
    f = folds_of(101, 2, seed=3)
    assert abs(int((f == 0).sum()) - int((f == 1).sum())) <= 1
    assert (folds_of(101, 2, seed=3) == f).all() and not (folds_of(101, 2, seed=4) == f).all()


def test_each_fold_is_scored_with_the_weight_chosen_on_the_others():
    n = len(WEIGHT_GRID)
    fold = np.array([0] * 10 + [1] * 10)
    rr = np.zeros((n, 20))
    rr[4, :10] = 1.0      # fold 0's questions are served best at WEIGHT_GRID[4] (0.2)
    rr[16, 10:] = 1.0     # fold 1's at WEIGHT_GRID[16] (0.8)
    rr[16, :3] = 1.0      # and 0.8 serves three of fold 0's too: on all questions 0.8 wins
    chosen, per_fold, deploy = cross_fitted(rr, fold)
    # fold 0 is scored with fold 1's choice and the other way round: never the weight tuned on itself
    assert per_fold == [0.8, 0.2]
    assert (chosen[:10] == 16).all() and (chosen[10:] == 4).all()
    assert deploy == 0.8


def _rows(per_q_single, per_q_hybrid):
    results = {"options": {"k": [10]}, "models": {"a": {"domain": {"metrics": {"mrr@10": float(np.mean(per_q_single))},
                                                                    "per_query": {"mrr@10": per_q_single}}}}}
    rows = {"a + bm25 (rrf)": {"kind": "hybrid", "fusion": "rrf", "rrf_k": 60,
                               "latency": {"dense_p50_ms": 10.0, "lexical_p50_ms": 1.0},
                               "lexical_index_bytes_per_1m_chunks": 4e8,
                               "domain": {"metrics": {"mrr@10": float(np.mean(per_q_hybrid))},
                                          "per_query": {"mrr@10": per_q_hybrid}}}}
    return results, rows


def test_a_hybrid_is_named_only_when_significantly_better_than_the_best_single_model():
    rng = np.random.default_rng(0)
    single = rng.uniform(0, 0.6, 300).tolist()
    better = [min(1.0, x + 0.2) for x in single]
    s = summarise(*_rows(single, better))
    assert s["recommended"] == "a + bm25 (rrf)" and "Hybrid search pays off" in s["text"][0]
    assert "two indexes" in s["text"][0] and "two queries" in s["text"][0]
    noise = [x + rng.normal(0, 0.05) for x in single]
    s = summarise(*_rows(single, noise))
    assert s["recommended"] is None and "search with a alone" in s["text"][0]


def _reference_rrf(dense_idx, lex_idx, k=60):
    score = {}
    for ranking in (dense_idx, lex_idx):
        for r, d in enumerate(ranking, 1):
            score[int(d)] = score.get(int(d), 0.0) + 1.0 / (k + r)
    return sorted(score, key=lambda d: -score[d])


def test_hybrid_rows_end_to_end(small_eval, zh_e5_path, tmp_path):
    out = tmp_path / "report"
    opts = BenchOptions(latency_samples=3, progress=False, general=str(small_eval), fusion_depth=20)
    res = bench(small_eval, {"base": f"local:{zh_e5_path}", "bm25": "bm25"}, out, opts)
    hy = res["hybrid"]
    assert set(hy) == {"base + bm25 (rrf)", "base + bm25 (weighted)"}
    es = load_eval(small_eval)
    for row in hy.values():
        assert row["kind"] == "hybrid" and len(row["domain"]["per_query"]["mrr@10"]) == len(es.query_ids)
        assert "general" in row
        # two indexes and two queries
        assert row["index_bytes_per_1m_chunks"] == res["models"]["base"]["index_bytes_per_1m_chunks"] \
            + res["models"]["bm25"]["index_bytes_per_1m_chunks"]
        assert row["latency"]["p50_ms"] == pytest.approx(res["models"]["base"]["latency"]["p50_ms"]
                                                         + res["models"]["bm25"]["latency"]["p50_ms"], abs=0.02)
    w = hy["base + bm25 (weighted)"]
    assert w["weight"] in WEIGHT_GRID and len(w["fold_weights"]) == 2
    # RRF recomputed from the two models' own rankings, independently of the kit's fusion code
    dense = make_provider(f"local:{zh_e5_path}", progress=False)
    q, d = dense.encode_queries(es.query_texts), dense.encode_corpus(es.doc_texts)
    d_idx = np.argsort(-(q @ d.T), axis=1, kind="stable")[:, :20]
    _, l_idx = make_provider("bm25").search(es.query_texts, es.doc_texts, 20)
    rr = []
    for qi, qid in enumerate(es.query_ids):
        top = _reference_rrf(d_idx[qi], l_idx[qi])[:10]
        hit = [r for r, doc in enumerate(top, 1) if es.doc_ids[doc] in es.qrels[qid]]
        rr.append(1.0 / hit[0] if hit else 0.0)
    assert np.mean(rr) == pytest.approx(hy["base + bm25 (rrf)"]["domain"]["metrics"]["mrr@10"], abs=1e-3)
    saved = json.loads((out / "results.json").read_text(encoding="utf-8"))
    assert set(saved["hybrid"]) == set(hy) and "hybrid_summary" in saved
    md = (out / "report.md").read_text(encoding="utf-8")
    assert "混合检索" in md and "| base + bm25 (weighted) |" in md
    assert "混合检索" in (out / "report.html").read_text(encoding="utf-8")
    # no hybrid when asked for none, or without a lexical model
    assert not bench(small_eval, {"base": f"local:{zh_e5_path}", "bm25": "bm25"}, tmp_path / "r2",
                     BenchOptions(latency_samples=0, progress=False, hybrid=[]))["hybrid"]
    assert not bench(small_eval, {"base": f"local:{zh_e5_path}"}, tmp_path / "r3",
                     BenchOptions(latency_samples=0, progress=False))["hybrid"]
