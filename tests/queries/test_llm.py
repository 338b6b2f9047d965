"""The llm generator: answer parsing and filtering, then real HTTP against a local chat-completions server
with injected 429s, 500s, timeouts and junk, the on-disk cache, and a run SIGKILLed mid-way and resumed."""
from __future__ import annotations

import os
import signal
import sqlite3
import subprocess
import time
from collections import Counter

import pytest

from kit.io import KitError
from kit.queries import QueryOptions, gen_queries
from kit.queries.llm import PROMPT_VERSION, build_messages, estimate_cost, resolve_settings
from kit.queries.parse import JunkAnswer, copies_chunk, filter_questions, parse_questions

from helpers.chat_server import ChatServer, prompt_hash
from .conftest import KIT, paragraph_chunks, read_rows, synthetic_chunks, write_corpus

CHUNK = "建立劳动关系，应当订立书面劳动合同。用人单位自用工之日起即与劳动者建立劳动关系。"


# -- parsing -------------------------------------------------------------------------------------

def test_parse_json_object_and_list():
    assert parse_questions('{"questions": ["试用期最长多久？", "为什么要签书面合同？"]}') == \
        ["试用期最长多久？", "为什么要签书面合同？"]
    assert parse_questions('["试用期最长多久？"]') == ["试用期最长多久？"]
    assert parse_questions('[{"question": "1. 试用期最长多久?"}]') == ["试用期最长多久？"]


def test_parse_fenced_json_after_preamble():
    answer = '以下是根据文本生成的问题：\n```json\n{"questions": ["公司去年营收多少？", "电池业务为什么增长？"]}\n```\n希望有帮助！'
    assert parse_questions(answer) == ["公司去年营收多少？", "电池业务为什么增长？"]


def test_parse_numbered_and_bulleted_lines_strip_preambles_and_numbering():
    answer = ("以下是三个问题：\n1. 劳动合同必须是书面的吗？\n2、没签合同一个月内要补签吗？\n"
              "（3）老板拖欠工资怎么办？\n")
    assert parse_questions(answer) == ["劳动合同必须是书面的吗？", "没签合同一个月内要补签吗？", "老板拖欠工资怎么办？"]
    answer = "Here are 2 questions:\n- 试用期可以约定几次？\n* Q2: 试用期最长能有多久?"
    assert parse_questions(answer) == ["试用期可以约定几次？", "试用期最长能有多久？"]


@pytest.mark.parametrize("junk", ["", "   \n", "抱歉，我无法理解您的请求。", '{"questions": [', '{"answer": 42}'])
def test_parse_junk_raises(junk):
    with pytest.raises(JunkAnswer):
        parse_questions(junk)


def test_filter_drops_and_counts_each_reason():
    drops, seen = Counter(), set()
    questions = [
        "没有签书面合同，公司需要补签吗？",           # kept
        "用人单位自用工之日起即与劳动者建立劳动关系吗？",  # copies a sentence of the chunk
        "Do I need a written contract?",              # wrong language
        "合同？",                                      # too short
        "没有签书面合同, 公司需要补签吗?",             # duplicate after normalisation
        "劳动关系从哪天开始算？",                       # kept
        "用人单位一般在什么时候和员工建立劳动关系？",  # over the per-chunk limit of 2
    ]
    kept = filter_questions(questions, CHUNK, seen, drops, limit=2)
    assert kept == ["没有签书面合同，公司需要补签吗？", "劳动关系从哪天开始算？"]
    assert drops == Counter(copies_chunk=1, wrong_language=1, too_short=1, duplicate=1, over_per_chunk=1)
    # The same question for another chunk is a cross-chunk duplicate.
    assert filter_questions(["劳动关系从哪天开始算？"], "另一段文字", seen, drops, limit=3) == []
    assert drops["duplicate"] == 2


def test_copies_chunk_allows_quoting_a_term():
    assert not copies_chunk("书面劳动合同一般要在多久内签？", CHUNK)
    assert copies_chunk("建立劳动关系，应当订立书面劳动合同？", CHUNK)


def test_prompt_is_chinese_versioned_and_asks_for_json():
    msgs = build_messages("第十条", CHUNK, 4)
    user = msgs[-1]["content"]
    assert "4 个不同的问题" in user and "JSON" in user and CHUNK in user and "外行" in user
    assert PROMPT_VERSION


def test_presets_and_json_mode():
    s = resolve_settings("dashscope", None, None, None)
    assert s.base_url == "https://dashscope.aliyuncs.com/compatible-mode/v1"
    assert (s.model, s.api_key_env, s.json_mode) == ("qwen-plus", "DASHSCOPE_API_KEY", True)
    assert resolve_settings("deepseek", None, None, None).base_url == "https://api.deepseek.com"
    local = resolve_settings(None, "http://127.0.0.1:9/v1", "m", None)
    assert (local.api_key_env, local.json_mode) == ("OPENAI_API_KEY", False)
    with pytest.raises(KitError, match="--model"):
        resolve_settings(None, "http://127.0.0.1:9/v1", None, None)
    with pytest.raises(KitError, match="unknown preset"):
        resolve_settings("anthropic", None, None, None)


def test_estimate_cost():
    cost, cur = estimate_cost("gpt-4o-mini-2024-07-18", 1_000_000, 1_000_000)
    assert cur == "USD" and cost == pytest.approx(0.75)
    assert estimate_cost("my-local-model", 10, 10) is None


def test_missing_key_for_a_preset_is_a_clear_error(tmp_path, monkeypatch):
    monkeypatch.delenv("DEEPSEEK_API_KEY", raising=False)
    corpus = write_corpus(tmp_path / "c.jsonl", paragraph_chunks())
    with pytest.raises(KitError, match="DEEPSEEK_API_KEY"):
        gen_queries(corpus, tmp_path / "p.jsonl", QueryOptions(generator="llm", preset="deepseek",
                                                               cache_path=str(tmp_path / "c.sqlite"),
                                                               progress=False))


# -- against the local server --------------------------------------------------------------------

def _opts(server, tmp_path, **kw) -> QueryOptions:
    base = dict(generator="llm", per_chunk=2, base_url=server.base_url, model="test-model",
                concurrency=3, timeout=0.5, max_retries=3, backoff=0.01,
                cache_path=str(tmp_path / "llm.sqlite"), progress=False)
    base.update(kw)
    return QueryOptions(**base)


def test_generation_survives_429_500_timeouts_and_junk(tmp_path):
    chunks = synthetic_chunks(6)
    corpus = write_corpus(tmp_path / "corpus.jsonl", chunks)
    schedule = ["429", "500", "slow", "junk", "empty", "429"]
    with ChatServer(latency=0.01, schedule=schedule, slow_seconds=1.6, retry_after=0.05) as srv:
        res = gen_queries(corpus, tmp_path / "pairs.jsonl", _opts(srv, tmp_path, timeout=0.8))
        served = Counter(srv.outcomes)
        total_requests = srv.received
    assert res.failures == []
    rows = read_rows(tmp_path / "pairs.jsonl")
    assert Counter(r["chunk_id"] for r in rows) == {c["id"]: 2 for c in chunks}
    assert all(set(r) == {"query", "pos", "chunk_id", "doc", "generator"} for r in rows)
    assert all(r["generator"] == "llm" and r["pos"] == [next(c["text"] for c in chunks if c["id"] == r["chunk_id"])]
               for r in rows)
    assert served["429"] == 2 and served["500"] == 1 and served["junk"] == 1 and served["empty"] == 1
    assert served["ok"] == 6
    m = res.llm
    assert m["retries"] == {"429": 2, "5xx": 1, "timeout": 1, "junk": 2}
    assert m["api_calls"] == total_requests == 6 + 6
    assert m["answered"] == 6 and m["cache_hits"] == 0
    assert m["prompt_tokens"] > 0 and m["completion_tokens"] > 0
    assert m["cost"] is None and "unknown" in res.summary()


def test_identical_chunks_cost_one_call(tmp_path):
    chunk = synthetic_chunks(1)[0]
    twins = [chunk, dict(chunk, id="twin"), *synthetic_chunks(2, seed=5, doc="other")]
    corpus = write_corpus(tmp_path / "corpus.jsonl", twins)
    with ChatServer() as srv:
        res = gen_queries(corpus, tmp_path / "pairs.jsonl", _opts(srv, tmp_path))
        assert srv.received == 3
    # The twin's questions are the same questions: kept once, counted as duplicates.
    assert res.dropped == {"duplicate": 2} and res.pairs == 6


def test_retry_after_is_honoured(tmp_path):
    corpus = write_corpus(tmp_path / "corpus.jsonl", synthetic_chunks(1))
    with ChatServer(schedule=["429"], retry_after=0.6) as srv:
        t0 = time.monotonic()
        res = gen_queries(corpus, tmp_path / "pairs.jsonl", _opts(srv, tmp_path, backoff=0.01))
        elapsed = time.monotonic() - t0
    assert res.llm["retries"] == {"429": 1} and res.pairs == 2
    assert elapsed >= 0.6  # our own backoff (0.01 s) would have retried at once


def test_persistent_junk_and_5xx_fail_only_their_chunk(tmp_path):
    corpus = write_corpus(tmp_path / "corpus.jsonl", synthetic_chunks(3))
    # concurrency 1: the first chunk meets all the junk, the second all the 500s.
    with ChatServer(schedule=["junk", "empty", "junk", "500", "500", "500"]) as srv:
        res = gen_queries(corpus, tmp_path / "pairs.jsonl",
                          _opts(srv, tmp_path, concurrency=1, junk_retries=2, max_retries=2))
    assert len(res.failures) == 2
    assert "junk answer 3 times" in res.failures[0] and res.failures[0].startswith("synthetic-0000")
    assert "5xx" in res.failures[1] and res.failures[1].startswith("synthetic-0001")
    assert {r["chunk_id"] for r in read_rows(tmp_path / "pairs.jsonl")} == {"synthetic-0002"}
    assert "2 chunks failed" in res.summary()
    # counted as work left undone: `kit run` records no manifest, the next run retries exactly these two
    assert res.incomplete == {"failed": 2, "total": 3, "what": "chunks"}


def test_rejected_key_stops_the_run_at_once(tmp_path):
    corpus = write_corpus(tmp_path / "corpus.jsonl", synthetic_chunks(20))
    with ChatServer(latency=0.02, probabilities={"401": 1.0}) as srv:
        with pytest.raises(KitError, match=r"HTTP 401.*\$OPENAI_API_KEY") as err:
            gen_queries(corpus, tmp_path / "pairs.jsonl", _opts(srv, tmp_path, concurrency=2))
        assert srv.received < 20  # the rest was cancelled, not sent and failed one by one
    assert "Incorrect API key" in str(err.value) and "sk-" not in str(err.value)  # the echoed key is masked
    assert not (tmp_path / "pairs.jsonl").exists()


def test_cache_answers_repeat_runs_without_requests(tmp_path):
    corpus = write_corpus(tmp_path / "corpus.jsonl", synthetic_chunks(5))
    with ChatServer() as srv:
        first = gen_queries(corpus, tmp_path / "a.jsonl", _opts(srv, tmp_path))
        n = len(srv.log)
        second = gen_queries(corpus, tmp_path / "b.jsonl", _opts(srv, tmp_path))
        assert len(srv.log) == n == 5
        assert second.llm["cache_hits"] == 5 and second.llm["api_calls"] == 0
        assert second.llm["prompt_tokens"] == 0 and second.llm["cached_prompt_tokens"] == first.llm["prompt_tokens"]
        assert read_rows(tmp_path / "a.jsonl") == read_rows(tmp_path / "b.jsonl")
        # per_chunk and model are part of the key: a different request is a new call.
        gen_queries(corpus, tmp_path / "c.jsonl", _opts(srv, tmp_path, per_chunk=3))
        gen_queries(corpus, tmp_path / "d.jsonl", _opts(srv, tmp_path, model="other-model"))
        assert len(srv.log) == 15


def test_killed_run_resumes_without_repeating_a_successful_call(tmp_path):
    fake_key = "sk-kitfake-4b1d9e7c2a5f8e3b"
    env = dict(os.environ, KIT_TEST_LLM_KEY=fake_key)
    chunks = synthetic_chunks(30)
    corpus = write_corpus(tmp_path / "corpus.jsonl", chunks)
    cache = tmp_path / "cache" / "llm.sqlite"
    out = tmp_path / "pairs.jsonl"
    with ChatServer(latency=0.03, hold_after=10) as srv:
        cmd = KIT + ["-v", "gen-queries", str(corpus), "-o", str(out), "--base-url", srv.base_url,
                     "--model", "test-model", "--api-key-env", "KIT_TEST_LLM_KEY", "--per-chunk", "2",
                     "--concurrency", "4", "--timeout", "5", "--cache-path", str(cache)]
        first = subprocess.Popen(cmd, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
        deadline = time.monotonic() + 60
        # Killed once 10+ answers were delivered, every other request parked unanswered in flight.
        while not (srv.success_count >= 10 and srv.held >= 1 and srv.received == len(srv.log) + srv.held):
            assert first.poll() is None, first.stdout.read().decode()
            assert time.monotonic() < deadline, "the server never reached the hold"
            time.sleep(0.02)
        time.sleep(0.5)  # answers already delivered reach the cache; held requests stay in flight
        first.send_signal(signal.SIGKILL)
        first_log = first.communicate()[0].decode()
        assert first.returncode == -signal.SIGKILL
        assert not out.exists()  # the output is written atomically, at the end only
        answered_before = set(srv.successful)
        assert 10 <= len(answered_before) < 30
        n_before = len(srv.log)
        srv.release()

        second = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=60)
        assert second.returncode == 0, second.stdout + second.stderr
        later = [h for h, outcome in srv.log[n_before:] if outcome != "held"]
        assert not answered_before & set(later), "a prompt answered before the kill was requested again"
        assert set(later) == {prompt_hash(build_messages(c["title"], c["text"], 2)) for c in chunks} - answered_before
        assert f"{len(answered_before)} from cache" in second.stdout
        assert srv.authorization == {f"Bearer {fake_key}"}  # the key was used...

    resumed = read_rows(out)
    # ... and the resumed output equals an uninterrupted run's.
    with ChatServer() as fresh:
        gen_queries(corpus, tmp_path / "clean.jsonl", QueryOptions(
            generator="llm", per_chunk=2, base_url=fresh.base_url, model="test-model",
            cache_path=str(tmp_path / "clean.sqlite"), progress=False))
    assert resumed == read_rows(tmp_path / "clean.jsonl")
    assert {r["chunk_id"] for r in resumed} == {c["id"] for c in chunks}

    # ... but never written anywhere: output, cache (and its WAL), logs.
    for path in [out, *cache.parent.iterdir()]:
        assert fake_key.encode() not in path.read_bytes(), path
    assert fake_key not in first_log + second.stdout + second.stderr
    with sqlite3.connect(cache) as db:
        assert db.execute("SELECT COUNT(*) FROM answers").fetchone()[0] == 30


def test_cli_exits_nonzero_only_when_nothing_was_generated(tmp_path):
    corpus = write_corpus(tmp_path / "corpus.jsonl", synthetic_chunks(2), extra_lines=["{not json"])
    with ChatServer(schedule=["500"] * 2) as srv:
        base = KIT + ["gen-queries", str(corpus), "--base-url", srv.base_url, "--model", "m", "--timeout", "2",
                      "--max-retries", "0", "--concurrency", "1", "--no-progress",
                      "--cache-path", str(tmp_path / "llm.sqlite")]
        # Every call fails: nothing generated -> non-zero, and no output file.
        failed = subprocess.run(base + ["-o", str(tmp_path / "none.jsonl")], capture_output=True, text=True,
                                timeout=60)
        assert failed.returncode != 0 and not (tmp_path / "none.jsonl").exists()
        assert "2 chunks failed" in failed.stdout and "corpus.jsonl:3" in failed.stdout
        ok = subprocess.run(base + ["-o", str(tmp_path / "ok.jsonl")], capture_output=True, text=True, timeout=60)
    assert ok.returncode == 0, ok.stderr
    assert "6 pairs from 2 chunks" in ok.stdout and "estimated cost: unknown" in ok.stdout


def test_key_in_the_url_is_used_but_never_stored_and_changing_it_repays_nothing(tmp_path):
    corpus = write_corpus(tmp_path / "corpus.jsonl", synthetic_chunks(4))
    with ChatServer() as srv:
        def url(key):
            return f"http://gw:{key}@127.0.0.1:{srv.port}/v1?api-key={key}&api-version=2024"

        first = gen_queries(corpus, tmp_path / "a.jsonl", _opts(srv, tmp_path, base_url=url("KEYAAAA1111")))
        second = gen_queries(corpus, tmp_path / "b.jsonl", _opts(srv, tmp_path, base_url=url("KEYBBBB2222")))
        assert srv.received == 4 and second.llm["cache_hits"] == 4      # the new key paid for nothing
        assert all("api-key=KEYAAAA1111&api-version=2024" == q for q in srv.query_params)
    assert first.llm["base_url"] == f"http://***@127.0.0.1:{srv.port}/v1?api-key=***&api-version=2024"
    for f in tmp_path.iterdir():
        assert b"KEYAAAA1111" not in f.read_bytes() and b"KEYBBBB2222" not in f.read_bytes(), f
    with sqlite3.connect(tmp_path / "llm.sqlite") as db:
        assert {r[0] for r in db.execute("SELECT base_url FROM answers")} == {first.llm["base_url"]}
