"""Retrieve-and-rerank in `kit bench`: each model's top N reordered by each reranker on the same questions, rows
next to the models', metrics recomputed independently, added latency and cost, and a recommendation that names a
reranker only where the paired-bootstrap interval of its gain excludes zero."""
from __future__ import annotations

import json
import math

import numpy as np
import pytest

from kit.bench.stage import BenchOptions, bench
from kit.formats import load_eval
from helpers.rerank_server import RerankServer, lexical_score

SECRET = "sk-kit-bench-rerank-SECRET-55aa"


def _mrr_at_10(es, order_by_query: list[list[int]]) -> float:
    rr = []
    for qid, order in zip(es.query_ids, order_by_query):
        first = next((i for i, d in enumerate(order[:10]) if es.doc_ids[d] in es.qrels[qid]), None)
        rr.append(0.0 if first is None else 1 / (first + 1))
    return float(np.mean(rr))


def test_bench_reranks_each_model_and_recommends_only_significant_gains(small_eval, tiny_bert, tmp_path,
                                                                        monkeypatch):
    monkeypatch.setenv("DASHSCOPE_API_KEY", SECRET)
    with RerankServer(require_key=None) as srv:
        opts = BenchOptions(latency_samples=0, progress=False, rerank_top=20, general=str(small_eval),
                            rerankers={"lex": {"spec": "openai:BAAI/bge-reranker-base", "base_url": srv.base_url},
                                       "ali": {"spec": "dashscope:gte-rerank-v2", "base_url": srv.dashscope_url}})
        res = bench(small_eval, {"tiny": f"local:{tiny_bert}", "bm25": "bm25"}, tmp_path / "report", opts)
    rows = res["reranked"]
    assert set(rows) == {"tiny + lex", "tiny + ali", "bm25 + lex", "bm25 + ali"}
    es = load_eval(small_eval)
    # Independent recomputation: the tiny model's top 20 by its own vectors, reordered by the lexical score.
    from kit.providers import make_provider
    idx = make_provider(f"local:{tiny_bert}", progress=False).search(es.query_texts, es.doc_texts, 20)[1]
    order = [sorted(row.tolist(), key=lambda d, q=q: -lexical_score(q, es.doc_texts[d])) for q, row in
             zip(es.query_texts, idx)]
    assert rows["tiny + lex"]["domain"]["metrics"]["mrr@10"] == pytest.approx(_mrr_at_10(es, order), abs=1e-6)
    assert len(rows["tiny + lex"]["domain"]["per_query"]["mrr@10"]) == len(es.query_ids)
    assert rows["tiny + lex"]["domain"]["metrics"] == rows["tiny + ali"]["domain"]["metrics"]   # same scorer
    assert "general" in rows["bm25 + lex"] and rows["bm25 + lex"]["rerank_top"] == 20

    summary = res["rerank_summary"]
    g = summary["gains"]["tiny + lex"]
    assert g["base"] == pytest.approx(res["models"]["tiny"]["domain"]["metrics"]["mrr@10"], abs=1e-6)
    assert g["diff_lo"] > 0                     # a lexical reranker lifts a random encoder beyond the noise
    assert summary["recommended"] in {n for n, x in summary["gains"].items() if x["diff_lo"] > 0}
    rec = " ".join(res["recommendation"]["text"])
    assert "Reranking pays off: " in rec and "95% CI" in rec and ("no per-token fee" in rec or "per 1,000 questions" in rec)
    # The cost: a self-hosted reranker has no fee, DashScope's is priced by tokens.
    assert rows["tiny + lex"]["rerank_cost"]["usd_per_1k_queries"] == 0.0
    cost = rows["bm25 + ali"]["rerank_cost"]
    assert cost["price_per_1m_tokens_usd"] == 0.115 and cost["tokens_this_run"] > 0
    assert cost["usd_this_run"] == pytest.approx(cost["tokens_this_run"] * 0.115 / 1e6, abs=1e-6)
    assert cost["usd_per_1k_queries"] == pytest.approx(cost["tokens_per_query"] * 1000 * 0.115 / 1e6, rel=1e-3)
    # The report shows the rows beside the models' and the rerank table; no key anywhere.
    md = (tmp_path / "report" / "report.md").read_text(encoding="utf-8")
    assert "| tiny + lex |" in md and "## 重排 Retrieve and rerank" in md
    html = (tmp_path / "report" / "report.html").read_text(encoding="utf-8")
    assert "tiny + lex" in html and "重排" in html
    saved = (tmp_path / "report" / "results.json").read_text(encoding="utf-8")
    assert SECRET not in saved and SECRET not in md and json.loads(saved)["reranked"].keys() == rows.keys()


def test_a_reranker_without_a_significant_gain_is_not_recommended(small_eval, tmp_path):
    """BM25 already ranks these generated questions (they share the passage's words) near-perfectly, so the
    same lexical signal as a reranker cannot add a significant gain: the report says to go without."""
    with RerankServer() as srv:
        opts = BenchOptions(latency_samples=0, progress=False, rerank_top=10,
                            rerankers={"lex": {"spec": "openai:BAAI/bge-reranker-base", "base_url": srv.base_url}})
        res = bench(small_eval, {"bm25": "bm25"}, tmp_path / "r", opts)
    g = res["rerank_summary"]["gains"]["bm25 + lex"]
    assert not g["diff_lo"] > 0 and res["rerank_summary"]["recommended"] is None
    assert any(t.startswith("No reranker improves significantly") for t in res["recommendation"]["text"])
    assert math.isfinite(g["diff"])


@pytest.mark.slow
def test_added_latency_per_question(small_eval, tiny_bert, tmp_path):
    with RerankServer() as srv:
        opts = BenchOptions(latency_samples=3, progress=False, rerank_top=20,
                            rerankers={"lex": {"spec": "openai:BAAI/bge-reranker-base", "base_url": srv.base_url}})
        res = bench(small_eval, {"tiny": f"local:{tiny_bert}"}, tmp_path / "r", opts)
        calls = len(srv.log)
    lat = res["reranked"]["tiny + lex"]["latency"]
    assert lat["rerank_p50_ms"] > 0 and lat["rerank_p95_ms"] >= lat["rerank_p50_ms"]
    assert lat["p50_ms"] == pytest.approx(res["models"]["tiny"]["latency"]["p50_ms"] + lat["rerank_p50_ms"], abs=0.02)
    assert calls >= len(res["reranked"]["tiny + lex"]["domain"]["per_query"]["mrr@10"]) + 3   # timed calls, uncached
    assert "ms per question" in " ".join(res["recommendation"]["text"]) or lat["rerank_p50_ms"] > 0


def test_only_the_top_n_is_reordered(small_eval, tmp_path):
    """rerank_top below the metrics' k: the first N are reordered, the rest stay in the model's order, so the set
    of the top 3 (recall@3) and of the top 10 (recall@10) cannot change, only the order within the top 3."""
    with RerankServer() as srv:
        opts = BenchOptions(latency_samples=0, progress=False, rerank_top=3,
                            rerankers={"lex": {"spec": "openai:BAAI/bge-reranker-base", "base_url": srv.base_url}})
        res = bench(small_eval, {"bm25": "bm25"}, tmp_path / "r", opts)
        sizes = {r["documents"] for r in srv.log}
    m, r = res["models"]["bm25"]["domain"]["metrics"], res["reranked"]["bm25 + lex"]["domain"]["metrics"]
    assert sizes == {3} and res["reranked"]["bm25 + lex"]["rerank_top"] == 3
    assert r["recall@3"] == m["recall@3"] and r["recall@10"] == m["recall@10"]
