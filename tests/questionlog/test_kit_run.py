"""`kit run` with a `logs:` section, end to end up to split, with a tiny model: the stage runs before split, its
labels join training, an edited labels file re-runs split alone, and a re-run of the stage keeps the edit."""
from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest
import yaml

from .conftest import ARTICLES, read_jsonl, write_jsonl


def _run(config, *args):
    return subprocess.run([sys.executable, "-m", "kit.cli", "run", str(config), *args], capture_output=True, text=True,
                          env={**os.environ, "HF_HUB_OFFLINE": "1"}, timeout=900)


@pytest.mark.slow
def test_kit_run_labels_the_log_and_trains_on_it(tmp_path, tiny_bert):
    write_jsonl(tmp_path / "docs" / "law.jsonl", [{"_id": f"a{i}", "title": t, "text": x}
                                                  for i, (t, x) in enumerate(ARTICLES)])
    write_jsonl(tmp_path / "log.jsonl", [
        {"query": "没签书面劳动合同要赔两倍工资吗，我电话13812345678", "clicked_id": "a5"},
        {"query": "试用期最长可以约定多久", "clicked_id": "a1", "count": 4},
        {"query": "公司拖欠劳动报酬我能走吗", "clicked_id": "a3"},
        {"query": "劳动合同什么时候订立？", "clicked_id": "a0"},            # an eval question, asked in the log
        {"query": "x" * 10_000}])
    write_jsonl(tmp_path / "eval.jsonl", [{"query": "劳动合同什么时候订立", "source_ids": ["a0"]},
                                          {"query": "经济补偿怎么算", "source_ids": ["a4"]}])
    cfg = {"workdir": "work", "model": str(tiny_bert), "prep": {"inputs": ["docs"]},
           "queries": {"generator": ["ict"], "per_chunk": 2}, "logs": {"path": "log.jsonl", "click_trust": 1.0},
           "split": {"eval_queries": "eval.jsonl", "real_repeat": 2}}
    config = tmp_path / "kit.yaml"
    config.write_text(yaml.safe_dump(cfg, allow_unicode=True), encoding="utf-8")
    labels, train = tmp_path / "work/data/log_labels.jsonl", tmp_path / "work/data/train.jsonl"

    r = _run(config, "--until", "split")
    assert r.returncode == 0, r.stderr[-3000:]
    assert r.stderr.index("[logs] running") < r.stderr.index("[split] running")
    assert f"log.jsonl:5: question of 10,000 characters" in r.stderr and "masked: phone 1" in r.stderr
    rows = {x["query"]: x for x in read_jsonl(labels)}
    assert rows["劳动合同什么时候订立？"]["status"] == "eval_question"
    assert "13812345678" not in labels.read_text(encoding="utf-8")
    log_rows = [x for x in read_jsonl(train) if x.get("origin") == "log"]
    assert {x["query"] for x in log_rows} == {q for q, x in rows.items() if x["label"]}
    assert len(log_rows) == 2 * sum(bool(x["label"]) for x in rows.values()) >= 6
    assert "劳动合同什么时候订立？" not in {x["query"] for x in read_jsonl(train)}

    r = _run(config, "--until", "split")
    assert "[logs] up to date" in r.stderr and "[split] up to date" in r.stderr

    edited = [dict(x, label=[]) if x["query"] == "试用期最长可以约定多久" else x for x in read_jsonl(labels)]
    write_jsonl(labels, edited)                          # a person rejects one label
    r = _run(config, "--until", "split")
    assert r.returncode == 0, r.stderr[-3000:]
    assert "[logs] up to date" in r.stderr and "[split] running" in r.stderr
    assert "试用期最长可以约定多久" not in {x["query"] for x in read_jsonl(train)}

    r = _run(config, "--until", "split", "--from", "logs")   # the stage itself again: the person's label stays
    assert r.returncode == 0 and "[logs] running" in r.stderr, r.stderr[-3000:]
    again = {x["query"]: x for x in read_jsonl(labels)}
    assert again["试用期最长可以约定多久"]["label"] == [] and again["试用期最长可以约定多久"]["by"] == "human"
    manifest = json.loads((tmp_path / "work/manifests/logs.json").read_text(encoding="utf-8"))
    assert manifest["summary"]["human"] == 1 and manifest["summary"]["eval_questions"] == 1

    # the model to deploy (kit/deploy/, refitted on every chunk) learns from the labelled log questions too
    cfg.update({"mine": {"range": "2-6", "negatives": 2},
                "train": {"nproc": 1, "args": {"max_steps": 2, "per_device_train_batch_size": 4, "train_group_size": 3,
                                               "query_max_len": 32, "passage_max_len": 64, "save_steps": 100,
                                               "dataloader_num_workers": 0}},
                "merge": {"weights": [0.5]}, "bench": {"k": [1, 10], "latency_samples": 0},
                "deploy": {"fit_all": "on", "candidate": "merged-0.5"}})
    config.write_text(yaml.safe_dump(cfg, allow_unicode=True), encoding="utf-8")
    r = _run(config)
    assert r.returncode == 0, r.stderr[-3000:]
    assert "[logs] up to date" in r.stderr and "labelled log questions" in r.stderr
    labelled = {q for q, x in again.items() if x["label"] and x["status"] != "eval_question"}
    deployed_rows = read_jsonl(tmp_path / "work/deploy/data/train.jsonl")
    assert {x["query"] for x in deployed_rows if x.get("origin") == "log"} == labelled
    assert "劳动合同什么时候订立？" not in {x["query"] for x in deployed_rows}
