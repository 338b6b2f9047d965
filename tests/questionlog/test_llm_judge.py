"""The LLM judge over real HTTP: a local chat-completions server (tests/helpers/chat_server.py) answering good JSON,
malformed JSON, refusals, empty answers, 429 and 500; answers cached so nothing is paid for twice."""
from __future__ import annotations

import json
import sqlite3

import pytest

from kit.questionlog import LogFiles, LogOptions, run
from kit.questionlog.llm_judge import JunkVerdict, parse_verdict, render

from .conftest import read_jsonl, write_jsonl
from .judge_server import JudgeServer, overlap_verdict, parse_prompt

QUESTIONS = ["没签书面劳动合同要赔两倍工资吗", "试用期最长可以约定多久", "公司拖欠劳动报酬我能走吗", "经济补偿按工作年限怎么算"]


# -- reading the judge's answer ----------------------------------------------------------------------------

def test_parse_good_and_fenced_answers():
    v = parse_verdict('{"answers": [2, "3"], "confidence": 0.8, "reason": "第二段规定了期限"}', 3)
    assert (v.answers, v.confidence, v.reason) == ([2, 3], 0.8, "第二段规定了期限")
    v = parse_verdict('好的：\n```json\n{"answers": [], "reason": "都不相关"}\n```', 3)
    assert v.answers == [] and v.confidence == 1.0 and v.reason == "都不相关"
    assert parse_verdict('{"answers": [1, 9], "confidence": "high"}', 3).answers == [1]   # 9 names nothing


@pytest.mark.parametrize("answer,why", [
    ("抱歉，我无法回答这个问题。", "no JSON object"),
    ('{"answers": [1, 2', "no JSON object"),
    ('{"answers": [1, }', "broken JSON"),
    ('{"verdict": "yes"}', "without an 'answers' list"),
    ('{"answers": [7, 8]}', "names no candidate 1..3"),
    ("", "empty answer"),
    (None, "empty answer"),
])
def test_nonsense_is_junk_with_its_reason(answer, why):
    with pytest.raises(JunkVerdict, match=why):
        parse_verdict(answer, 3)


# -- through the stage, over HTTP --------------------------------------------------------------------------

def _run(tmp_path, corpus_file, encoder, server, questions=QUESTIONS, **kw):
    log = write_jsonl(tmp_path / "log.jsonl", [{"query": q} for q in questions])
    files = LogFiles(corpus=str(corpus_file), model=str(encoder), labels=str(tmp_path / "data" / "log_labels.jsonl"),
                     report=str(tmp_path / "data" / "log_report.json"))
    settings = {"model": "test-judge", "cache_path": str(tmp_path / "llm.sqlite"), "backoff": 0.01, "timeout": 10,
                "concurrency": 2, "shown": 4, **kw}
    opts = LogOptions(path=str(log), judge="llm", base_url=server.base_url, **settings)
    return run(files, opts, progress=False)


def test_good_answers_become_labels_with_the_judges_reason(tmp_path, corpus_file, tiny_bert):
    with JudgeServer() as srv:
        result = _run(tmp_path, corpus_file, tiny_bert, srv, model="gpt-4o-mini")
    rows = {r["query"]: r for r in read_jsonl(result.labels_path)}
    assert result.failures == [] and result.incomplete == {}
    for q in QUESTIONS:                                 # what the server said for each prompt it was sent
        prompt = next(p for p in srv.prompts if q in p)
        expect = json.loads(overlap_verdict(prompt))["answers"]
        shown = [c["id"] for c in rows[q]["candidates"]]
        assert rows[q]["label"] == [shown[a - 1] for a in expect]
        assert rows[q]["reason"] == "共享问题中的关键词" and rows[q]["judge"] == "llm:gpt-4o-mini"
        assert len(parse_prompt(prompt)[1]) == len(shown) == 4
    assert result.stats["labelled"] >= 2 and result.llm["api_calls"] == len(QUESTIONS)
    assert result.llm["prompt_tokens"] > 0 and result.llm["cost"] > 0 and result.llm["currency"]


def test_refusals_empty_and_429_500_are_retried_and_counted(tmp_path, corpus_file, tiny_bert):
    schedule = ["junk", "empty", "429", "500"]          # a refusal in prose, an empty answer, rate limit, error
    with JudgeServer(schedule=list(schedule), retry_after=0.01) as srv:
        result = _run(tmp_path, corpus_file, tiny_bert, srv, concurrency=1)
    assert result.failures == [] and result.stats["failed"] == 0
    assert result.llm["retries"] == {"junk": 2, "429": 1, "5xx": 1}
    assert result.llm["api_calls"] == len(QUESTIONS) + len(schedule)
    assert result.stats["labelled"] + result.stats["no_answer"] == len(QUESTIONS)


def test_a_judge_answering_nonsense_fails_that_question_alone_and_a_rerun_pays_only_for_it(tmp_path, corpus_file,
                                                                                        tiny_bert):
    bad = QUESTIONS[1]

    def verdict(user: str) -> str:
        return '{"answers": ["seven"' if bad in user else overlap_verdict(user)

    with JudgeServer(verdict=verdict) as srv:           # one endpoint throughout: it is part of the cache key
        first = _run(tmp_path, corpus_file, tiny_bert, srv, junk_retries=1)
        asked, rows = srv.received, {r["query"]: r for r in read_jsonl(first.labels_path)}
        srv.verdict = overlap_verdict                    # the next run: the endpoint answers properly now
        second = _run(tmp_path, corpus_file, tiny_bert, srv)
        asked_again, prompts_again = srv.received - asked, srv.prompts[asked:]
        third = _run(tmp_path, corpus_file, tiny_bert, srv)
        asked_third = srv.received - asked - asked_again
    assert first.incomplete == {"failed": 1, "total": len(QUESTIONS), "what": "log questions (LLM judge)"}
    assert len(first.failures) == 1 and "no usable verdict in 2 answers" in first.failures[0]
    assert "no JSON object" in first.failures[0] or "broken JSON" in first.failures[0]
    assert rows[bad]["status"] == "failed" and rows[bad]["label"] == []
    assert all(rows[q]["status"] != "failed" for q in QUESTIONS if q != bad)
    assert first.llm["api_calls"] == asked == len(QUESTIONS) + 1   # the bad one asked twice

    assert asked_again == 1 and bad in prompts_again[0]          # only the failed question is asked again
    assert second.llm["cache_hits"] == len(QUESTIONS) - 1 and second.incomplete == {}
    assert {r["query"]: r["status"] for r in read_jsonl(second.labels_path)}[bad] != "failed"
    assert asked_third == 0 and third.llm["api_calls"] == 0 and third.llm["prompt_tokens"] == 0
    assert third.llm["cache_hits"] == len(QUESTIONS) and third.llm["cached_prompt_tokens"] > 0


def test_a_bad_key_stops_at_once_without_retrying(tmp_path, corpus_file, tiny_bert):
    from kit.io import KitError

    with JudgeServer(schedule=["401"] * 10) as srv:
        with pytest.raises(KitError, match="HTTP 401"):
            _run(tmp_path, corpus_file, tiny_bert, srv, concurrency=1)
    assert srv.received <= 2 and not (tmp_path / "data" / "log_labels.jsonl").exists()


def test_no_personal_data_reaches_the_endpoint_the_files_or_the_caches(tmp_path, corpus_file, tiny_bert,
                                                                       monkeypatch):
    from kit.embed import EmbeddingCache, LocalEncoder

    monkeypatch.setenv("KIT_CACHE_DIR", str(tmp_path / "cache"))
    raw = "我电话13812345678，身份证110101199003071234，邮箱li.si@example.com，没签书面劳动合同要赔两倍工资吗"
    with JudgeServer() as srv:
        result = _run(tmp_path, corpus_file, tiny_bert, srv, questions=[raw, QUESTIONS[1]])
    secrets = ["13812345678", "110101199003071234", "li.si@example.com", "example.com"]
    assert srv.prompts and not [s for s in secrets for p in srv.prompts if s in p]
    stored = [p for p in tmp_path.rglob("*") if p.is_file() and p.name != "log.jsonl"]
    assert any(p.name == "embeddings.sqlite" for p in stored) and any(p.name == "llm.sqlite" for p in stored)
    for p in stored:
        data = p.read_bytes()
        assert not [s for s in secrets if s.encode() in data], p
    masked = result.stats["masked"]
    assert masked == {"phone": 1, "id_number": 1, "email": 1}
    spec = LocalEncoder(str(tiny_bert), cache=False).spec
    cache = EmbeddingCache(tmp_path / "cache" / "embeddings.sqlite")
    q_masked = read_jsonl(result.labels_path)[0]["query"]
    assert "[电话]" in q_masked
    with sqlite3.connect(cache.path) as db:
        keys = {k for (k,) in db.execute("SELECT key FROM emb")}
    assert EmbeddingCache.key(spec.query_text(q_masked)) in keys
    assert EmbeddingCache.key(spec.query_text(raw)) not in keys
