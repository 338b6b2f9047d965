"""`kit drift CONFIG`: exit 0 (no_retrain) / 3 (retrain) / 2 (bad input), the verdict printed last, the reports
written; on a workdir built from real statute articles, with the tiny random XLM-R as the deployed model."""
from __future__ import annotations

import json
import os
import shutil

import pytest
from click.testing import CliRunner

from kit.cli import main
from kit.drift.workdir import deployed_model, load_pipeline
from kit.io import KitError, read_json, write_json

from .conftest import sample, write_jsonl


def drift(config, *args):
    r = CliRunner().invoke(main, ["drift", str(config), "--no-progress", *args])
    report_path = config.parent / "work" / "drift" / "report.json"
    return r, (read_json(report_path) if report_path.exists() else None)


def one_error_line(r, expect: str) -> None:
    assert r.exit_code == 2, r.output
    lines = [ln for ln in r.stderr.splitlines() if ln.strip()]
    assert len(lines) == 1 and lines[0].startswith("error: ") and expect in lines[0], r.stderr
    assert "Traceback" not in r.output and r.stdout == ""


def test_unchanged_documents_no_retrain_exit_0_and_a_second_run_encodes_nothing(make_workdir):
    config, _ = make_workdir()
    r, rep = drift(config)
    assert r.exit_code == 0, r.output
    assert r.stdout.strip().splitlines()[-1] == "verdict: no_retrain"
    assert rep["verdict"] == "no_retrain" and rep["documents"]["unchanged"] == 150
    assert rep["documents"]["new_chunks"] == 0 and rep["coverage"] is None
    assert rep["deployed"]["name"] == "base" and rep["trained_on"]["training_rows"] == 1
    assert (config.parent / "work" / "drift" / "report.md").read_text(encoding="utf-8").startswith(
        "# Drift report: **no_retrain**")
    r2, rep2 = drift(config)
    assert r2.exit_code == 0 and rep2["embedding"]["encoded"] == 0 and rep2["embedding"]["cached"] > 0


def test_new_articles_of_the_same_laws_no_retrain(make_workdir, stard_rows):
    rows = sample(stard_rows, 300, 1)
    config, inputs = make_workdir(rows[:150])
    write_jsonl(inputs / "more.jsonl", rows[150:])          # a random other half of the same pool
    r, rep = drift(config)
    assert r.exit_code == 0, r.output
    assert rep["documents"]["new"] == 150 and rep["documents"]["new_chunks"] >= 150
    assert rep["coverage"]["p_value"] > rep["options"]["alpha"] and rep["distribution"]["p_value"] > 0.01
    assert r.stdout.strip().splitlines()[-1] == "verdict: no_retrain"


@pytest.mark.slow
def test_engine_flags_override_the_config_and_give_the_same_report(make_workdir, stard_rows):
    """--engine/--workers on `kit drift` (as on every command that reads a whole config: run, update) win over its
    `encode:` section: the corpora go through 2 torchrun gloo ranks, and the figures are those of the in-process run."""
    rows = sample(stard_rows, 300, 1)
    config, inputs = make_workdir(rows[:150])
    write_jsonl(inputs / "more.jsonl", rows[150:])
    with open(config, "a", encoding="utf-8") as f:
        f.write("encode:\n  engine: ray\n  workers: 3\n  shard_size: 1000\n")   # the flags must win over this
    r, rep = drift(config, "--engine", "torchrun", "--workers", "2", "--shard-size", "64")
    assert r.exit_code == 0, r.output
    assert rep["embedding"]["engine"] == "torchrun" and rep["embedding"]["workers"] == 2
    text = config.read_text(encoding="utf-8")
    config.write_text(text[:text.index("encode:")], encoding="utf-8")
    r2, local = drift(config)
    assert r2.exit_code == 0 and local["embedding"]["engine"] == "in-process"
    for key in ("coverage", "distribution"):
        assert rep[key]["p_value"] == pytest.approx(local[key]["p_value"], abs=1e-6), key
    assert rep["verdict"] == local["verdict"] == "no_retrain"


def test_another_domain_retrain_exit_3_with_reasons_and_documents(make_workdir, faq_rows):
    config, inputs = make_workdir()
    write_jsonl(inputs / "faq.jsonl", faq_rows[:150])
    titles = {x["title"] for x in faq_rows[:150]}          # (two FAQ entries share a title: one document)
    r, rep = drift(config)
    assert r.exit_code == 3, r.output
    out = r.stdout.strip().splitlines()
    assert out[-1] == "verdict: retrain" and out[0].startswith(f"documents: {len(titles)} new, 0 changed, 0 gone")
    assert rep["verdict"] == "retrain" and rep["documents"]["new"] == len(titles)
    assert {d["doc"] for d in rep["documents"]["new_documents"]} == titles
    assert all(d["chunks"] >= 1 for d in rep["documents"]["new_documents"])
    voted = [x for x in rep["reasons"][1:] if x.endswith(("new material", "the new chunks differ"))]
    assert voted and rep["reasons"][1] == voted[0] and rep["distribution"]["auc"] > 0.9
    md = (config.parent / "work" / "drift" / "report.md").read_text(encoding="utf-8")
    assert "Least covered new chunks" in md and faq_rows[0]["title"] in md


def test_a_question_log_is_compared_with_the_eval_questions(make_workdir, stard_queries, tmp_path):
    config, _ = make_workdir()
    log = tmp_path / "questions.jsonl"
    write_jsonl(log, [{"text": q} for q in stard_queries[100:160]])
    r, rep = drift(config, "--log", str(log))
    assert r.exit_code in (0, 3) and rep["questions"]["logged"] == 60 and rep["questions"]["eval"] == 40
    assert rep["questions"]["eval_questions"] == "real" and len(rep["questions"]["worst"]) == 10
    assert any(x.startswith("questions: ") for x in rep["reasons"])
    assert "Worst served" in (config.parent / "work" / "drift" / "report.md").read_text(encoding="utf-8")


def test_questions_about_the_new_documents_can_decide_and_the_setting_turns_it_off(make_workdir, faq_rows, tmp_path):
    """The wiring of `drift.questions_decide` (the decision itself: tests/drift/test_drift_verdict.py; its quality on
    real questions: benchmarks/update_sequence.py). The documents vote (another domain arrives); the log asks what
    the new FAQ entries answer, so its best passages are new chunks. With a floor the random model's scores clear
    (question_min_effect 0.99; decide_max_uncovered 1, as FAQ entries are another kind of text), the questions decide
    no_retrain, exit 0; with the setting off, the documents do."""
    log = tmp_path / "questions.jsonl"
    write_jsonl(log, [{"text": x["title"]} for x in faq_rows[:60]])
    for decide, code, verdict in ((True, 0, "no_retrain"), (False, 3, "retrain")):
        config, inputs = make_workdir(drift={"question_min_effect": 0.99, "min_new_questions": 10,
                                             "decide_max_uncovered": 1.0, "questions_decide": decide})
        write_jsonl(inputs / "faq.jsonl", faq_rows[:150])
        r, rep = drift(config, "--log", str(log))
        assert r.exit_code == code, r.output
        n = rep["questions"]["new_documents"]
        assert n["logged"] >= 20 and n["effect_upper"] < 0.99 and rep["verdict"] == verdict
        assert r.stdout.strip().splitlines()[-1] == f"verdict: {verdict}"
        assert any("coverage: " in x and x.endswith("new material") for x in rep["reasons"])   # the documents voted
        decided = [x for x in rep["reasons"] if "index the new documents" in x]
        assert (decided == [rep["reasons"][1]]) if decide else not decided
        md = (config.parent / "work" / "drift" / "report.md").read_text(encoding="utf-8")
        assert f"Questions about the new documents (best passage a new chunk): **{n['logged']}**" in md
        shutil.rmtree(config.parent / "work"), shutil.rmtree(inputs)   # the next workdir starts from the laws alone


@pytest.mark.parametrize("content, expect", [("", "holds no question"),
                                             ('{"text": "试用期多久"}\n{"text": 3}\n', "questions.jsonl:2: ")])
def test_an_empty_or_unreadable_log_exit_2(make_workdir, tmp_path, content, expect):
    config, _ = make_workdir()
    log = tmp_path / "questions.jsonl"
    log.write_text(content, encoding="utf-8")
    r, rep = drift(config, "--log", str(log))
    one_error_line(r, expect)
    assert rep is None                                       # nothing was written


def test_documents_that_are_all_gone_exit_2(make_workdir):
    config, inputs = make_workdir()
    (inputs / "articles.jsonl").unlink()
    one_error_line(drift(config)[0], "holds no document any more")
    shutil.rmtree(inputs)
    one_error_line(drift(config)[0], "no such file or folder")


def test_a_workdir_from_another_model_or_config_exit_2(make_workdir, tmp_path):
    config, _ = make_workdir()
    wd = tmp_path / "work"
    manifest = read_json(wd / "manifests" / "prep.json")
    write_json(wd / "manifests" / "prep.json", {**manifest, "model": "BAAI/bge-large-zh-v1.5"})
    one_error_line(drift(config)[0], "a workdir from another model or config")
    write_json(wd / "manifests" / "prep.json", {**manifest, "settings": {**manifest["settings"], "max_tokens": 480}})
    one_error_line(drift(config)[0], "max_tokens 480 -> 200")
    write_json(wd / "manifests" / "prep.json", manifest)
    write_json(wd / "report" / "results.json", {"models": {"base": {"spec": "local:/elsewhere/model"}},
                                                "recommendation": {"recommended": "base"}})
    one_error_line(drift(config)[0], "a workdir from another model or config")
    (wd / "corpus.jsonl").unlink()
    one_error_line(drift(config)[0], "no corpus.jsonl")


def test_the_deployed_model_is_models_current_else_the_recommended_one(make_workdir, tmp_path, tiny_xlmr):
    config, _ = make_workdir()
    wd = tmp_path / "work"
    p = load_pipeline(str(config))
    assert deployed_model(p).path == str(tiny_xlmr)                         # recommended: base
    for name, folder in (("fine-tuned", "finetuned"), ("merged-0.5", "merged-0.5")):
        (wd / "models" / folder).mkdir(parents=True)
        write_json(wd / "report" / "results.json", {"recommendation": {"recommended": name}})
        assert deployed_model(p).path == str(wd / "models" / folder)
    write_json(wd / "report" / "results.json", {"recommendation": {"recommended": "bm25"},
                                                "models": {"bm25": {"spec": "bm25"}}})
    dep = deployed_model(p)
    assert dep.path == str(tiny_xlmr) and "not a local encoder" in dep.note
    write_json(wd / "report" / "results.json", {"recommendation": {"recommended": "merged-0.7"}})
    with pytest.raises(KitError, match="missing"):
        deployed_model(p)
    # kit run's deploy stage refitted the pick on every chunk: that model is the one serving
    (wd / "deploy" / "models" / "merged-0.5").mkdir(parents=True)
    write_json(wd / "deploy" / "deploy.json", {"deployed": {"name": "deployed",
                                                            "path": str(wd / "deploy" / "models" / "merged-0.5")}})
    assert deployed_model(p).path == str(wd / "deploy" / "models" / "merged-0.5")
    (wd / "deploy" / "deploy.json").unlink()
    os.symlink(wd / "models" / "finetuned", wd / "models" / "current")      # a versions feature's pointer wins
    assert deployed_model(p).path == str((wd / "models" / "finetuned").resolve())
    (wd / "models" / "current").unlink()
    (wd / "models" / "current").write_text("merged-0.5\n", encoding="utf-8")
    assert deployed_model(p).path == str(wd / "models" / "merged-0.5")
    assert json.dumps(dep.__dict__)
