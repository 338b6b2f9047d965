"""Rerankers as providers: the HTTP protocols against a real local server (tests/helpers/rerank_server.py) with injected
429/500/timeouts, the cache, batching within the catalogue's limits, key handling, cost; the local cross-encoder
against FlagEmbedding's FlagReranker and sentence-transformers' CrossEncoder on the same pairs."""
from __future__ import annotations

import math

import numpy as np
import pytest

from kit.io import KitError
from kit.options import OptionError
from kit.providers.rerankers import RerankCache, make_reranker, parse_reranker_entry, rerank_limits
from helpers.rerank_server import RerankServer, lexical_score

SECRET = "sk-kit-rerank-SECRET-91c2"
QUERY = "试用期最长可以约定多久？"
DOCS = ["劳动合同期限三个月以上不满一年的，试用期不得超过一个月。", "用人单位应当按时足额支付劳动报酬。",
        "同一用人单位与同一劳动者只能约定一次试用期。", "社会保险费由用人单位和劳动者共同缴纳。"]


@pytest.fixture
def cache(tmp_path):
    return RerankCache(tmp_path / "rerank.sqlite")


def test_openai_compatible_scores_cache_and_batches(cache):
    with RerankServer() as srv:
        rr = make_reranker("openai:BAAI/bge-reranker-base", {"base_url": srv.base_url, "batch_size": 3},
                           cache=cache, progress=False)
        got = rr.score(QUERY, DOCS)
        assert np.allclose(got, [lexical_score(QUERY, d) for d in DOCS])
        assert sorted(r["documents"] for r in srv.log) == [1, 3]        # documents per request as asked
        assert {r["top_n"] for r in srv.log} == {3, 1}                 # every document's score asked for
        assert rr.stats["tokens"] == sum(len(QUERY) * n + sum(len(d) for d in part)
                                        for n, part in ((3, DOCS[:3]), (1, DOCS[3:])))   # the server's usage
        assert rr.cost_usd(rr.stats["tokens"]) == 0.0                  # self-hosted: catalogue price 0
        # A new reranker on the same cache sends nothing: each pair is paid once.
        again = make_reranker("openai:BAAI/bge-reranker-base", {"base_url": srv.base_url}, cache=cache)
        assert np.allclose(again.score(QUERY, DOCS), got) and len(srv.log) == 2
        assert again.stats["cached"] == 4 and again.stats["scored"] == 0
        order = again.rerank(QUERY, DOCS, top_n=2)
        assert [i for i, _ in order] == list(np.argsort(-got, kind="stable")[:2])
    assert rr.score_kind == "probability"
    assert np.allclose(rr.logits([0.5, 0.880797]), [0.0, 2.0], atol=1e-4)


def test_dashscope_native_protocol_key_limits_and_price(cache, monkeypatch):
    monkeypatch.setenv("DASHSCOPE_API_KEY", SECRET)
    docs = [f"第{i}条 用人单位应当依法缴纳社会保险费。" for i in range(501)]
    with RerankServer(require_key=SECRET) as srv:
        rr = make_reranker("dashscope:gte-rerank-v2", {"base_url": srv.dashscope_url}, cache=cache, progress=False)
        scores = rr.score("社会保险费怎么缴纳？", docs)
        assert len(scores) == 501 and all(r["path"].endswith("/text-rerank/text-rerank") for r in srv.log)
        assert sorted(r["documents"] for r in srv.log) == [1, 500]      # DashScope's 500-document limit
        assert all(r["auth"] for r in srv.log)
    limits = rerank_limits("gte-rerank-v2")
    assert limits["price"] == 0.115 and rr.cost_usd(1_000_000) == pytest.approx(0.115)
    # The 30,000-token request budget (query tokens x documents + document tokens) splits long documents.
    long_docs = ["劳" * 3990] * 10
    parts = rr.requests("问" * 20, long_docs)
    assert [len(p) for p in parts] == [7, 3]
    assert all(sum(20 + 3990 for _ in p) <= 30000 for p in parts)


def test_dashscope_needs_its_key_from_the_environment(cache, monkeypatch):
    monkeypatch.delenv("DASHSCOPE_API_KEY", raising=False)
    with RerankServer() as srv:
        rr = make_reranker("dashscope:gte-rerank-v2", {"base_url": srv.dashscope_url}, cache=cache)
        with pytest.raises(KitError, match="DASHSCOPE_API_KEY"):
            rr.score(QUERY, DOCS)
        assert srv.log == []                                            # nothing sent without a key
    with pytest.raises(KitError, match="unknown"):
        make_reranker("dashscope:text-embedding-v3")


@pytest.mark.parametrize("failure", ["429", "500", "slow"])
def test_transient_failures_are_retried(cache, failure):
    with RerankServer(schedule=[failure, failure], slow_seconds=1.5) as srv:
        rr = make_reranker("openai:m", {"base_url": srv.base_url, "timeout": 0.5, "max_retries": 4},
                           cache=cache, progress=False)
        got = rr.score(QUERY, DOCS)
        assert np.allclose(got, [lexical_score(QUERY, d) for d in DOCS])
        assert [r["outcome"] for r in srv.log] == [failure, failure, "ok"]
        assert rr.stats["api_calls"] == 3


def test_persistent_failure_is_one_redacted_line_and_finished_requests_stay_cached(cache, monkeypatch):
    monkeypatch.setenv("OPENAI_API_KEY", SECRET)
    queries = [f"问题{i}：试用期多久？" for i in range(6)]
    with RerankServer(schedule=["ok", "ok", "500", "500"]) as srv:
        url = srv.base_url + "?api-key=" + SECRET
        rr = make_reranker("openai:m", {"base_url": url, "max_retries": 2, "concurrency": 1}, cache=cache,
                           progress=False)
        with pytest.raises(KitError) as e:
            rr.score_groups([(q, DOCS) for q in queries])
        msg = str(e.value)
        assert "500" in msg and SECRET not in msg and "api-key=***" in msg and "re-run to resume" in msg
        assert cache.count(rr.namespace) == 2 * len(DOCS)               # the two answered requests were kept
        sent = len(srv.log)
        rr2 = make_reranker("openai:m", {"base_url": srv.base_url + "?api-key=other-key"}, cache=cache)
        assert rr2.namespace == rr.namespace                            # the key is not part of the cache key
        rr2.score_groups([(q, DOCS) for q in queries])
        assert len(srv.log) - sent == 4                                 # only the four missing queries
        assert all(r["auth"] for r in srv.log)


def test_concurrent_requests_all_arrive_and_are_cached(cache):
    queries = [f"第{i}个问题：工资怎么支付？" for i in range(24)]
    with RerankServer() as srv:
        rr = make_reranker("openai:m", {"base_url": srv.base_url, "concurrency": 6}, cache=cache, progress=False)
        out = rr.score_groups([(q, DOCS) for q in queries])
        assert len(srv.log) == 24 and all(len(s) == 4 for s in out)
        assert cache.count(rr.namespace) == 24 * 4


def test_specs_and_settings_are_validated():
    assert parse_reranker_entry("rr", "local:BAAI/bge-reranker-base", "bench.rerankers") == \
        ("local:BAAI/bge-reranker-base", {})
    spec, s = parse_reranker_entry("v", {"spec": "openai:x", "base_url": "http://h/v1", "concurrency": 2}, "w")
    assert spec == "openai:x" and s == {"base_url": "http://h/v1", "concurrency": 2}
    with pytest.raises(OptionError, match=r"w.v.concurency: unknown key; did you mean concurrency\?"):
        parse_reranker_entry("v", {"spec": "openai:x", "concurency": 2}, "w")
    with pytest.raises(OptionError, match="unknown reranker spec"):
        parse_reranker_entry("v", "bge-reranker", "w")
    with pytest.raises(KitError, match="base_url"):
        make_reranker("openai:x")


def test_local_reranker_matches_flagreranker_and_crossencoder(tiny_cross_encoder, tmp_path):
    from FlagEmbedding import FlagReranker
    from sentence_transformers import CrossEncoder

    pairs = [(QUERY, d) for d in DOCS] + [("工资", "用人单位应当按时足额支付工资。")]
    cache = RerankCache(tmp_path / "r.sqlite")
    rr = make_reranker(f"local:{tiny_cross_encoder}", {"precision": "fp32"}, cache=cache, progress=False)
    ours = np.concatenate(rr.score_groups([(q, [p]) for q, p in pairs]))
    flag = np.asarray(FlagReranker(str(tiny_cross_encoder), use_fp16=False, devices="cpu").compute_score(pairs))
    ce = CrossEncoder(str(tiny_cross_encoder), device="cpu").predict(pairs)
    assert np.allclose(ours, flag, atol=1e-4)
    assert np.allclose(1 / (1 + np.exp(-ours)), ce, atol=1e-4)        # CrossEncoder applies a sigmoid
    # Cached: a new reranker answers without loading the weights.
    again = make_reranker(f"local:{tiny_cross_encoder}", {"precision": "fp32"}, cache=cache)
    assert np.allclose(np.concatenate(again.score_groups([(q, [p]) for q, p in pairs])), ours)
    assert again._model is None and again.stats["cached"] == len(pairs)
    assert math.isclose(rr.cost_usd(10**6), 0.0)


def test_a_server_that_wants_a_key_is_told_which_variable_to_set(cache, monkeypatch):
    monkeypatch.delenv("OPENAI_API_KEY", raising=False)
    with RerankServer(require_key=SECRET) as srv:
        rr = make_reranker("openai:m", {"base_url": srv.base_url}, cache=cache, progress=False)
        with pytest.raises(KitError, match="set OPENAI_API_KEY"):
            rr.score(QUERY, DOCS)
        assert [r["outcome"] for r in srv.log] == ["401"]          # not retried: a 401 will not go away
        monkeypatch.setenv("OPENAI_API_KEY", SECRET)
        ok = make_reranker("openai:m", {"base_url": srv.base_url}, cache=cache, progress=False)
        assert len(ok.score(QUERY, DOCS)) == 4 and srv.log[-1]["auth"]
