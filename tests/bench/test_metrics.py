"""Metrics against hand-computed numbers and pytrec_eval on a small case."""
import numpy as np
import pytrec_eval
import pytest

from kit.bench.metrics import evaluate, rejection_threshold, run_from_ranking


def test_hand_checkable_case():
    # q1: relevant d2 at rank 2 (of d1,d2,d3); q2: relevant d5 and d4, ranked d4 (1st), d6, d5 (3rd)
    qrels = {"q1": {"d2": 1}, "q2": {"d4": 1, "d5": 1}}
    doc_ids = ["d1", "d2", "d3", "d4", "d5", "d6"]
    idx = np.array([[0, 1, 2], [3, 5, 4]])
    m = evaluate(run_from_ranking(["q1", "q2"], doc_ids, idx), qrels, [1, 3])
    assert m["hit@1"] == pytest.approx(0.5)          # only q2 has a hit at rank 1
    assert m["mrr@1"] == pytest.approx(0.5)          # (0 + 1) / 2
    assert m["mrr@3"] == pytest.approx((1 / 2 + 1) / 2)
    assert m["recall@1"] == pytest.approx((0 + 1 / 2) / 2)
    assert m["recall@3"] == pytest.approx(1.0)
    # nDCG@3: q1 = (1/log2(3)) / 1; q2 = (1 + 1/log2(4)) / (1 + 1/log2(3))
    q1 = 1 / np.log2(3)
    q2 = (1 + 1 / np.log2(4)) / (1 + 1 / np.log2(3))
    assert m["ndcg@3"] == pytest.approx((q1 + q2) / 2, abs=1e-4)
    # AP@3: q1 = 1/2; q2 = (1/1 + 2/3) / 2
    assert m["map@3"] == pytest.approx((0.5 + (1 + 2 / 3) / 2) / 2, abs=1e-4)


def test_matches_pytrec_eval_on_random_rankings():
    rng = np.random.default_rng(0)
    doc_ids = [f"d{i}" for i in range(30)]
    qids = [f"q{i}" for i in range(20)]
    qrels = {q: {doc_ids[j]: 1 for j in rng.choice(30, size=rng.integers(1, 4), replace=False)} for q in qids}
    idx = np.stack([rng.permutation(30)[:10] for _ in qids])
    run = run_from_ranking(qids, doc_ids, idx)
    ours = evaluate(run, qrels, [10])
    ref = pytrec_eval.RelevanceEvaluator(qrels, {"recip_rank", "ndcg_cut.10", "recall.10"}).evaluate(run)
    # with 10 retrieved docs, MRR@10 equals trec_eval's recip_rank
    assert ours["mrr@10"] == pytest.approx(np.mean([ref[q]["recip_rank"] for q in qids]), abs=1e-6)
    assert ours["ndcg@10"] == pytest.approx(np.mean([ref[q]["ndcg_cut_10"] for q in qids]), abs=1e-6)
    assert ours["recall@10"] == pytest.approx(np.mean([ref[q]["recall_10"] for q in qids]), abs=1e-6)


def test_trec_eval_recip_rank_has_no_cutoff_so_mrr_at_k_is_ours():
    """Why MRR@k is computed by hand: trec_eval's recip_rank ignores a cut-off. Gold at rank 3 of 3."""
    qrels = {"q": {"c": 1}}
    run = {"q": {"a": 3.0, "b": 2.0, "c": 1.0}}
    ref = pytrec_eval.RelevanceEvaluator(qrels, {"recip_rank.1"}).evaluate(run)
    assert ref["q"]["recip_rank"] == pytest.approx(1 / 3)  # not 0, which MRR@1 is
    m = evaluate(run, qrels, [1, 2, 3])
    assert (m["mrr@1"], m["mrr@2"], m["mrr@3"]) == (0.0, 0.0, pytest.approx(1 / 3, abs=1e-6))
    assert (m["hit@1"], m["hit@2"], m["hit@3"]) == (0.0, 0.0, 1.0)


def test_mrr_at_k_equals_recip_rank_of_the_run_cut_at_k_with_ties():
    """MRR@k == trec_eval's recip_rank on the run truncated to its top k, ties broken trec_eval's way
    (doc id descending); scores drawn from 3 values so ties are everywhere."""
    rng = np.random.default_rng(1)
    docs = [f"d{i:02d}" for i in range(25)]
    qrels = {f"q{i}": {docs[j]: 1 for j in rng.choice(25, size=rng.integers(1, 4), replace=False)} for i in range(40)}
    run = {q: {d: float(rng.integers(0, 3)) for d in docs} for q in qrels}
    ours = evaluate(run, qrels, [1, 3, 5])
    for k in (1, 3, 5):
        top = {q: dict(sorted(r.items(), key=lambda x: (-x[1], [-ord(c) for c in x[0]]))[:k]) for q, r in run.items()}
        ref = pytrec_eval.RelevanceEvaluator(qrels, {"recip_rank", "success.1"}).evaluate(top)
        assert ours[f"mrr@{k}"] == pytest.approx(np.mean([ref[q]["recip_rank"] for q in qrels]), abs=1e-6)
        assert ours[f"hit@{k}"] == pytest.approx(np.mean([ref[q]["recip_rank"] > 0 for q in qrels]), abs=1e-6)


def test_rejection_threshold_separates():
    pos = np.array([0.8, 0.85, 0.9, 0.7])
    neg = np.array([0.5, 0.6, 0.65, 0.72])
    t = rejection_threshold(pos, neg)
    assert 0.65 < t["threshold"] <= 0.8 and t["tpr"] - t["fpr"] >= 0.74
