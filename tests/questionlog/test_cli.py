"""`kit logs` on the command line, and its labels into `kit split --log-labels`: the stage chain without `kit run`."""
from __future__ import annotations

import os
import subprocess
import sys

from .conftest import law_chunks, read_jsonl, write_jsonl


def _kit(*args):
    return subprocess.run([sys.executable, "-m", "kit.cli", *map(str, args)], capture_output=True, text=True,
                          env={**os.environ, "HF_HUB_OFFLINE": "1"}, timeout=600)


def test_kit_logs_labels_a_log_and_kit_split_trains_on_it(tmp_path, tiny_bert, corpus_file):
    log = write_jsonl(tmp_path / "log.jsonl", [
        {"query": "试用期最长可以约定多久 邮箱 someone@example.com", "clicked_id": "ldht-01"},
        {"query": "公司拖欠劳动报酬我能走吗", "clicked_id": "ldht-03"},
        {"query": "劳动合同什么时候订立", "clicked_id": "ldht-00"},      # the eval question: never labelled
        {"query": ""}])
    eval_q = write_jsonl(tmp_path / "eval.jsonl", [{"query": "劳动合同什么时候订立", "chunk_ids": ["ldht-00"]}])
    labels, report = tmp_path / "out" / "log_labels.jsonl", tmp_path / "out" / "log_report.json"
    r = _kit("logs", "--log", log, "--corpus", corpus_file, "--model", tiny_bert, "--labels", labels,
             "--report", report, "--eval-queries", eval_q, "--click-trust", "1.0", "--no-progress")
    assert r.returncode == 0, r.stderr[-3000:]
    assert f"{log}:4:" in r.stderr + r.stdout                       # the empty question, by file:line
    rows = {x["query"]: x for x in read_jsonl(labels)}
    assert not any("someone@example.com" in q for q in rows)         # masked as read
    assert rows["劳动合同什么时候订立"]["status"] == "eval_question" and report.exists()
    labelled = {q for q, x in rows.items() if x["label"] and x["status"] != "eval_question"}
    assert labelled, rows

    pairs = write_jsonl(tmp_path / "pairs.jsonl", [{"query": f"问题{c['title']}", "pos": [c["text"]],
                                                    "chunk_id": c["id"], "doc": c["doc"], "generator": "ict"}
                                                   for c in law_chunks()])
    r = _kit("split", pairs, "--corpus", corpus_file, "-o", tmp_path / "data", "--eval-queries", eval_q,
             "--log-labels", labels)
    assert r.returncode == 0, r.stderr[-3000:]
    train = read_jsonl(tmp_path / "data" / "train.jsonl")
    assert {x["query"] for x in train if x.get("origin") == "log"} == labelled
    assert "劳动合同什么时候订立" not in {x["query"] for x in train}


def test_kit_logs_without_a_log_says_so(tmp_path, corpus_file):
    r = _kit("logs", "--corpus", corpus_file, "--model", "nope", "--labels", tmp_path / "l.jsonl",
             "--report", tmp_path / "r.json")
    assert r.returncode != 0 and "no question log: give --log FILE" in r.stderr
