"""`kit run`'s deploy stage (kit/deploy/stage.py) on real questions: after the held-out split has chosen the recipe,
the model to deploy trains on every chunk (the gold passages of the eval questions included, the questions never),
is merged with the same weight and measured beside the held-out figure, each row labelled."""
import json
import os
import random
import subprocess
import sys

import pytest
import yaml

from conftest import DATA

STARD = DATA / "retrieval" / "stard_dev"


def _jsonl(path):
    return [json.loads(x) for x in path.read_text(encoding="utf-8").splitlines() if x.strip()]


def _write(path, rows):
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("".join(json.dumps(r, ensure_ascii=False) + "\n" for r in rows), encoding="utf-8")


def _inputs(tmp_path, n_questions=30, distractors=120, seed=3):
    """A stard_dev slice: real questions, their gold articles and seeded distractors; qrels keyed by article id."""
    qrels = {}
    for line in (STARD / "qrels.tsv").read_text(encoding="utf-8").splitlines()[1:]:
        q, d, rel = line.split("\t")[:3]
        if int(rel) > 0:
            qrels.setdefault(q, []).append(d)
    queries = [q for q in _jsonl(STARD / "queries.jsonl") if q["_id"] in qrels]
    queries = random.Random(seed).sample(queries, n_questions)
    gold = {d for q in queries for d in qrels[q["_id"]]}
    corpus = _jsonl(STARD / "corpus.jsonl")
    others = random.Random(seed).sample([c for c in corpus if c["_id"] not in gold], distractors)
    rows = [{"_id": c["_id"], "title": c.get("title", ""), "text": c["text"]}
            for c in corpus if c["_id"] in gold] + [{"_id": c["_id"], "title": c.get("title", ""), "text": c["text"]}
                                                     for c in others]
    _write(tmp_path / "articles.jsonl", rows)
    _write(tmp_path / "questions" / "queries.jsonl", queries)
    (tmp_path / "questions" / "qrels.tsv").write_text(
        "query-id\tcorpus-id\tscore\n" + "".join(f"{q['_id']}\t{d}\t1\n" for q in queries for d in qrels[q["_id"]]),
        encoding="utf-8")
    return tmp_path / "articles.jsonl", tmp_path / "questions", queries, gold


def _config(tmp_path, model, articles, questions, **deploy):
    cfg = {"workdir": "work", "model": str(model),
           "prep": {"inputs": [str(articles)], "max_tokens": 120, "overlap": 0},
           "queries": {"generator": ["ict", "keywords"], "per_chunk": 1, "seed": 1},
           "split": {"eval_queries": str(questions), "seed": 1},
           "mine": {"range": "2-20", "negatives": 2},
           "train": {"nproc": 1, "args": {"max_steps": 2, "per_device_train_batch_size": 4, "train_group_size": 3,
                                          "query_max_len": 32, "passage_max_len": 64, "learning_rate": 1e-5,
                                          "logging_steps": 1, "save_steps": 100, "dataloader_num_workers": 0}},
           "merge": {"weights": [0.5]},
           "bench": {"k": [1, 10], "latency_samples": 0},
           "deploy": deploy}
    path = tmp_path / "kit.yaml"
    path.write_text(yaml.safe_dump(cfg, allow_unicode=True), encoding="utf-8")
    return path


def _run(config):
    return subprocess.run([sys.executable, "-m", "kit.cli", "run", str(config)], capture_output=True, text=True,
                          env={**os.environ, "HF_HUB_OFFLINE": "1"}, timeout=1500)


@pytest.mark.slow
def test_the_deployed_model_trains_on_every_chunk_never_on_the_eval_questions(tiny_xlmr, tmp_path):
    from kit.formats import norm_text

    articles, questions, asked, gold = _inputs(tmp_path)
    config = _config(tmp_path, tiny_xlmr, articles, questions, candidate="merged-0.5")
    r = _run(config)
    assert r.returncode == 0, r.stderr[-3000:]
    assert "deployed model (trained on every chunk)" in r.stdout
    work = tmp_path / "work"
    chunks = _jsonl(work / "corpus.jsonl")
    gold_chunks = {c["id"] for c in chunks if c.get("source_id") in gold or c["id"] in gold}
    assert gold_chunks, "the eval questions' gold articles are chunks of the corpus"
    held_rows, deploy_rows = _jsonl(work / "data" / "train_hn.jsonl"), _jsonl(work / "deploy" / "data" / "train_hn.jsonl")
    # held out: no gold chunk trains; deployed: every chunk may, and the gold chunks' generated questions do
    assert not any(set(r_.get("pos_ids") or []) & gold_chunks for r_ in held_rows)
    assert any(set(r_.get("pos_ids") or []) & gold_chunks for r_ in deploy_rows)
    assert len(_jsonl(work / "deploy" / "data" / "train_corpus.jsonl")) == len(chunks)
    assert len(_jsonl(work / "data" / "train_corpus.jsonl")) < len(chunks)
    # the real questions never train either model
    texts = {norm_text(q["text"]) for q in asked}
    assert not any(norm_text(r_["query"]) in texts for r_ in held_rows + deploy_rows)
    decision = json.loads((work / "deploy" / "deploy.json").read_text(encoding="utf-8"))
    assert decision["candidate"] == "merged-0.5" and decision["weight"] == 0.5
    assert decision["questions"] == "real" and decision["eval_questions_in_training"] == 0
    assert (work / "deploy" / "models" / "merged-0.5" / "kit_model.json").exists()
    figures = decision["figures"]
    assert {"base", "merged-0.5 (held out)", "deployed", "bm25"} <= set(figures)
    assert figures["deployed"]["vs_base"]["ratio_lo"] <= figures["deployed"]["vs_base"]["ratio"]
    assert "every chunk" in figures["deployed"]["measures"] and "never trained on" in figures["merged-0.5 (held out)"]["measures"]
    report = (work / "deploy" / "report" / "report.md").read_text(encoding="utf-8")
    assert "deployed: the model to deploy" in report and "(held out): the recipe on passages it never trained on" in report
    # resumed: nothing to redo
    r = _run(config)
    assert r.returncode == 0 and "[deploy] up to date" in r.stderr
    # off: nothing trained, the decision says why
    r = _run(_config(tmp_path, tiny_xlmr, articles, questions, fit_all="off"))
    assert r.returncode == 0, r.stderr[-2000:]
    assert json.loads((work / "deploy" / "deploy.json").read_text(encoding="utf-8")) == {"skipped": "deploy.fit_all is off"}
    assert not (work / "deploy" / "models").exists()
