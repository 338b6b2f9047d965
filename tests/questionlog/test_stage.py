"""The stage as a whole (offline judge, tiny model): eval questions never train, a person's corrections are taken
back and survive a re-run, the weak-spot report, and split taking the labelled questions as real ones."""
from __future__ import annotations

import json

import pytest

from kit.io import ReadReport
from kit.questionlog import LogFiles, LogOptions, run, training_questions
from kit.split import SplitOptions, split

from .conftest import law_chunks, read_jsonl, write_jsonl

LOG = [{"query": "没签书面劳动合同要赔两倍工资吗", "count": 3},
       {"query": "试用期最长可以约定多久", "clicked_id": "ldht-01"},
       {"query": "公司拖欠劳动报酬我能走吗"},
       {"query": "经济补偿按工作年限怎么算？"},
       {"query": "经济补偿按工作年限怎么算", "count": 2},
       {"query": "公司食堂的菜单在哪里看"}]
EVAL = [{"query": "经济补偿按工作年限怎么算呢", "chunk_ids": ["ldht-04"]},
        {"query": "劳动合同什么时候订立", "chunk_ids": ["ldht-00"]}]


def _files(tmp_path, corpus_file, model, eval_queries=None) -> LogFiles:
    return LogFiles(corpus=str(corpus_file), model=str(model), labels=str(tmp_path / "data" / "log_labels.jsonl"),
                    report=str(tmp_path / "data" / "log_report.json"), eval_queries=eval_queries)


@pytest.fixture
def judged(tmp_path, corpus_file, tiny_bert):
    log = write_jsonl(tmp_path / "log.jsonl", LOG)
    evalq = write_jsonl(tmp_path / "eval.jsonl", EVAL)
    files = _files(tmp_path, corpus_file, tiny_bert, str(evalq))
    opts = LogOptions(path=str(log), click_trust=1.0, topics=2)
    return files, opts, run(files, opts, progress=False)


def test_eval_questions_and_their_near_duplicates_never_train(judged):
    files, _, result = judged
    rows = {r["query"]: r for r in read_jsonl(files.labels)}
    assert len(rows) == 5 and result.stats["merged"] == 1                 # the two 经济补偿 rows merged
    ev = rows["经济补偿按工作年限怎么算"]                                      # the most asked form leads
    assert ev["count"] == 3 and ev["status"] == "eval_question" and ev["label"] == [] and ev["score"] is None
    assert result.stats["eval_questions"] == 1
    ev["label"] = ["ldht-04"]                                             # even a label put there by hand
    write_jsonl(files.labels, list(rows.values()))
    assert "经济补偿按工作年限怎么算" not in [q["query"] for q in training_questions(files.labels)]


def test_every_judged_row_keeps_its_judge_score_and_candidates(judged):
    files, opts, result = judged
    rows = {r["query"]: r for r in read_jsonl(files.labels)}
    clicked = rows["试用期最长可以约定多久"]
    assert clicked["clicked"] == ["ldht-01"] and clicked["label"][0] == "ldht-01" and clicked["status"] == "labelled"
    assert any(c["id"] == "ldht-01" and c["clicked"] for c in clicked["candidates"])
    for r in rows.values():
        if r["status"] == "eval_question":
            continue
        assert r["judge"] == "offline:agreement" and r["threshold"] == 1.0 and isinstance(r["score"], float)
        assert 0 < len(r["candidates"]) <= opts.shown + 1 and r["reason"]
        assert {"model_rank", "bm25_rank", "score"} <= set(r["candidates"][0])
        assert r["label"] == r["judged"]
    assert result.stats["by_click"] >= 1


def test_the_report_lists_weak_topics_and_unanswered_questions(judged):
    files, _, result = judged
    rep = json.loads(open(files.report, encoding="utf-8").read())
    rows = read_jsonl(files.labels)
    lost = [r["query"] for r in rows if r["status"] == "no_answer"]
    assert [m["query"] for m in rep["missing"]] == sorted(lost, key=lambda q: next(r["top1"] for r in rows
                                                                                  if r["query"] == q))
    assert rep["topic_count"] == 2 and sum(t["questions"] for t in rep["topics"]) == len(rows)
    shares = [t["unanswered_share"] or 0 for t in rep["topics"]]
    assert shares == sorted(shares, reverse=True)
    md = (files.report[:-len(".json")] + ".md")
    text = open(md, encoding="utf-8").read()
    assert "The topics the model serves worst" in text and "Questions no passage answers" in text
    for r in rows:
        assert isinstance(r["top1"], float) and isinstance(r["margin"], float)
        assert r["found"] == (r["status"] == "labelled") if r["status"] != "eval_question" else r["found"] is None


def test_a_corrected_labels_file_is_taken_back_and_survives_a_rerun(judged, tmp_path):
    files, opts, _ = judged
    rows = read_jsonl(files.labels)
    by_q = {r["query"]: r for r in rows}
    by_q["公司拖欠劳动报酬我能走吗"]["label"] = ["ldht-03", "ldht-99"]          # a person: this answers (one typo)
    by_q["试用期最长可以约定多久"]["label"] = []                                # ... and the click was wrong
    write_jsonl(files.labels, rows)
    taken = {q["query"]: q["chunk_ids"] for q in training_questions(files.labels)}
    assert taken["公司拖欠劳动报酬我能走吗"] == ["ldht-03", "ldht-99"] and "试用期最长可以约定多久" not in taken

    write_jsonl(tmp_path / "log.jsonl", LOG + [{"query": "加班费怎么计算"}])   # a new log: the stage runs again
    result = run(files, opts, progress=False)
    after = {r["query"]: r for r in read_jsonl(files.labels)}
    assert after["公司拖欠劳动报酬我能走吗"]["label"] == ["ldht-03"] and after["公司拖欠劳动报酬我能走吗"]["by"] == "human"
    assert after["试用期最长可以约定多久"]["label"] == [] and after["试用期最长可以约定多久"]["status"] == "no_answer"
    assert result.stats["human"] == 2 and "加班费怎么计算" in after
    assert any("label id(s) not in the corpus: ldht-99" in p for p in result.problems)


def test_split_trains_on_the_labelled_log_questions_as_real_ones(judged, tmp_path, corpus_file):
    files, _, _ = judged
    pairs = write_jsonl(tmp_path / "pairs.jsonl", [{"query": f"问题{c['title']}", "pos": [c["text"]],
                                                    "chunk_id": c["id"], "doc": c["doc"], "generator": "ict"}
                                                   for c in law_chunks()])
    extra = training_questions(files.labels) + [
        {"query": "劳动合同什么时候订立", "chunk_ids": ["ldht-00"], "line": 90},   # an eval question itself
        {"query": "没有这个段落", "chunk_ids": ["nope"], "line": 91}]
    opts = SplitOptions(eval_queries=str(tmp_path / "eval.jsonl"), real_repeat=2, generated_per_real=10)
    result = split(pairs, corpus_file, tmp_path / "split", opts, extra_questions=extra, extra_source=files.labels)
    rows = read_jsonl(tmp_path / "split" / "train.jsonl")
    log_rows = [r for r in rows if r.get("origin") == "log"]
    labelled = [q for q in training_questions(files.labels)]
    assert len(log_rows) == 2 * len(labelled) == result.stats["train_log_rows"]
    assert all(r["generator"] == "real" for r in log_rows)
    assert "劳动合同什么时候订立" not in {r["query"] for r in rows}
    assert result.stats["duplicate_queries"]["count"] == 1
    assert f"{files.labels}:91: chunk id(s) not in the corpus: nope" in result.problems
    eval_q = {q["text"] for q in read_jsonl(tmp_path / "split" / "eval" / "test_queries.jsonl")}
    assert not eval_q & {r["query"] for r in rows}


def test_training_questions_names_bad_rows(tmp_path):
    path = write_jsonl(tmp_path / "labels.jsonl", [{"query": "a", "label": ["x"]}, {"query": "b", "label": "x"},
                                                    {"query": "c", "label": []}])
    report = ReadReport()
    assert training_questions(path, report) == [{"query": "a", "chunk_ids": ["x"], "line": 1}]
    assert [str(e) for e in report.errors] == [f"{path}:2: needs 'query' (text) and 'label' (list of passage ids); "
                                               f"row ignored"]


def test_the_deployment_fit_can_take_the_log_questions_too(judged, tmp_path, corpus_file):
    from kit.split.stage import split_for_deployment

    files, _, _ = judged
    pairs = write_jsonl(tmp_path / "pairs.jsonl", [{"query": f"问题{c['title']}", "pos": [c["text"]],
                                                    "chunk_id": c["id"], "doc": c["doc"], "generator": "ict"}
                                                   for c in law_chunks()])
    opts = SplitOptions(eval_queries=str(tmp_path / "eval.jsonl"), real_repeat=3)
    labelled = training_questions(files.labels)
    counts = split_for_deployment(pairs, corpus_file, tmp_path / "deploy", opts, extra_questions=labelled)
    rows = read_jsonl(tmp_path / "deploy" / "train.jsonl")
    assert sum(r.get("origin") == "log" for r in rows) == 3 * len(labelled) > 0
    assert counts["train_real_questions"] == 3 * len(labelled)
