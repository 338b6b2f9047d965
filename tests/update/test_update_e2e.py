"""`kit update` end to end on a real `kit run` workdir (tiny random BERT, offline ict questions, 2 training steps):
only new and changed documents are prepped and asked about, gone documents leave the corpus and the rows, training
starts from the deployed version, the gate's verdict is written, and models/current moves only on a promotion; a
kill or a failure anywhere leaves it on the deployed model and the next run resumes."""
import json
import os
import signal
import subprocess
import sys
import time
from dataclasses import replace

import pytest
from click.testing import CliRunner

from kit.cli import main
from kit.io import read_json

from .conftest import change, jsonl

GATE_PASSES = "kit.update.stages.decide"


def kit(*args):
    return CliRunner().invoke(main, [*map(str, args)])


def current(wd) -> str:
    return os.readlink(wd / "models" / "current").split(os.sep)[-2]


def force_promote(monkeypatch):
    """The gate as it is, but its decision forced to promote (a 2-step tiny model cannot earn it)."""
    from kit.versions import gate

    def passing(*a, **k):
        return {**gate.decide(*a, **k), "decision": gate.PROMOTE}

    monkeypatch.setattr(GATE_PASSES, passing)


@pytest.mark.slow
def test_an_update_preps_only_what_changed_keeps_on_a_refusal_and_promotes_and_rolls_back(kit_run, monkeypatch):
    config, docs, later = kit_run
    wd = config.parent / "work"
    assert kit("promote", config).exit_code == 0           # v0001 while the files are those prep read
    what = change(docs, later)
    r = kit("update", config, "--no-progress", "--min-gain", "0.5")
    assert r.exit_code == 3, r.output
    out = r.stdout.strip().splitlines()
    assert out[0].startswith("documents: 12 new, 1 changed, 6 gone, 0 moved, 29 unchanged")
    assert out[-1] == "verdict: kept v0001" and "the lower end is not above +0.5000" in out[1]
    u = wd / "updates" / "0001"
    docs_json = read_json(u / "documents.json")
    assert docs_json["files"] == {"files": 7, "reused": 4, "from_cache": 0, "prepped": 3}
    fresh = {c["id"] for c in jsonl(u / "new_corpus.jsonl")}
    assert {p["chunk_id"] for p in jsonl(u / "pairs.jsonl")} <= fresh
    assert {c["doc"] for c in jsonl(u / "new_corpus.jsonl")} == {d["doc"] for d in docs_json["new_documents"]} | {
        what["changed_title"]}
    corpus = jsonl(u / "corpus.jsonl")
    gone_texts = {c["text"] for c in jsonl(wd / "corpus.jsonl") if c["doc"] in what["gone_titles"]}
    assert gone_texts and not {c["doc"] for c in corpus} & what["gone_titles"]
    rows = jsonl(u / "data" / "train_hn.jsonl")
    assert rows and not any(r["doc"] in what["gone_titles"] | {what["changed_title"]} and r["doc"] not in
                            {c["doc"] for c in corpus if c["id"] in fresh} for r in rows)
    assert not any(t in gone_texts for r in rows for t in r["neg"])
    train_corpus = {c["text"] for c in jsonl(u / "data" / "train_corpus.jsonl")}
    assert all(t in train_corpus for r in rows for t in r["neg"])          # mined over the current corpus
    split = read_json(u / "data" / "update_split.json")
    assert split["replayed_rows"] == round(split["new_rows"] * 0.3 / 0.7) > 0
    made = read_json(u / "models" / "finetuned" / "kit_manifest.json")
    assert os.path.realpath(made["base_model"]) == os.path.realpath(wd / "versions" / "v0001" / "model")
    assert made["trainer_args"]["max_steps"] == "1"    # update.step_share 0.5 of the config's 2 steps
    verdict = read_json(wd / "promotion.json")
    assert verdict["decision"] == "keep" and verdict["promoted"] is None and verdict["current"] == "v0001"
    assert verdict["deployed"]["version"] == "v0001" and verdict["candidate"]["kind"] == "merged-0.5"
    assert set(verdict["figures"]) == {"new", "frozen"} and verdict["frozen_sets"] == ["v0001"]
    assert verdict["figures"]["new"]["n_questions"] == split["new_eval_questions"]
    assert current(wd) == "v0001" and not (wd / "versions" / "v0002").exists()

    force_promote(monkeypatch)                    # another gate setting: only the gate runs again
    r = kit("update", config, "--no-progress", "--promote", "never")
    assert r.exit_code == 0, r.output
    assert "[train] up to date" in r.stderr and "[gate] running" in r.stderr
    assert r.stdout.strip().splitlines()[-1].startswith("verdict: kept v0001; candidate stored as v0002")
    assert current(wd) == "v0001" and read_json(wd / "promotion.json")["promoted"] is None
    import yaml   # the search behind it: with an `index:` section, only a promotion re-indexes (kit/index/)
    store = f"faiss://{config.parent / 'store'}"
    cfg = yaml.safe_load(config.read_text(encoding="utf-8"))
    config.write_text(yaml.safe_dump({**cfg, "index": {"name": "laws", "store": store}}, allow_unicode=True))
    r = kit("update", config, "--no-progress")    # promote: auto, nothing to redo: the stored candidate is deployed
    assert r.exit_code == 0, r.output
    assert "[gate] up to date" in r.stderr and not (wd / "versions" / "v0003").exists()
    assert r.stdout.strip().splitlines()[-1] == "verdict: promoted v0002" and current(wd) == "v0002"
    assert "index: alias laws" in r.stdout, r.stdout
    assert str(wd / "versions" / "v0002" / "model") in json.dumps(read_json(wd / "index" / "index.json"))
    v2 = read_json(wd / "versions" / "v0002" / "version.json")
    assert v2["parent"] == "v0001" and v2["source"]["kind"] == "update" and v2["eval_sets"] == ["v0001", "v0002"]
    assert v2["training"]["rows"] == len(rows) and v2["recipe"] == {"merge_weight": 0.5}
    assert set(v2["eval"]["sets"]) == {"v0001", "v0002"} and v2["documents"]["chunks"] == len(corpus)
    assert (wd / "versions" / "v0002" / "material" / "eval" / "heldout.json").is_file()
    verdict = read_json(wd / "promotion.json")
    assert verdict["decision"] == "promote" and verdict["promoted"] == "v0002" and verdict["current"] == "v0002"
    listed = kit("versions", config).stdout.splitlines()
    assert listed[2].startswith("*  v0002") and "update 0001 (merged-0.5, from v0001)" in listed[2]
    assert kit("rollback", config).stdout.strip() == "deployed: v0001 (rolled back from v0002)"
    assert current(wd) == "v0001"


@pytest.mark.slow
def test_a_failed_or_killed_update_leaves_current_and_the_rerun_resumes(kit_run, monkeypatch):
    from kit.update import UpdateFiles, run
    from kit.update.config import load_pipeline
    from kit.versions.store import Store

    config, docs, later = kit_run
    wd = config.parent / "work"
    change(docs, later)        # before v0001 is registered: which old file changed cannot be told, all are prepped
    r = kit("update", config, "--no-progress", "--train-args", "no_such_trainer_argument=1")
    assert r.exit_code == 2 and "training failed" in r.stderr, r.output
    assert "every file is prepped once" in r.stderr
    assert read_json(wd / "updates" / "0001" / "documents.json")["files"]["prepped"] == 7
    assert current(wd) == "v0001" and not (wd / "versions" / "v0002").exists()

    args = ["--train-args", "max_steps=6", "--train-args", "save_steps=2"]
    log = open(config.parent / "killed.log", "w")
    proc = subprocess.Popen([sys.executable, "-m", "kit.cli", "update", str(config), "--no-progress", *args],
                            stdout=log, stderr=log, start_new_session=True)
    ckpt = wd / "updates" / "0001" / "models" / "finetuned" / "checkpoint-2"
    deadline = time.time() + 600
    while not ckpt.exists() and proc.poll() is None and time.time() < deadline:
        time.sleep(0.5)
    assert ckpt.exists(), (config.parent / "killed.log").read_text()[-3000:]
    os.killpg(proc.pid, signal.SIGKILL)
    proc.wait()
    assert current(wd) == "v0001" and not (wd / "updates" / "0001" / "manifests" / "train.json").exists()

    r = kit("update", config, "--no-progress", *args, "--min-gain", "0.5")
    assert r.exit_code == 3, r.output
    for step in ("documents", "queries", "split", "mine"):
        assert f"[{step}] up to date" in r.stderr
    assert "resuming from" in r.stderr and "checkpoint-" in r.stderr and current(wd) == "v0001"

    # killed between keeping the candidate as a version and switching to it
    force_promote(monkeypatch)

    def killed(*a, **k):
        raise KeyboardInterrupt

    monkeypatch.setattr(Store, "promote_held", killed)
    options = load_pipeline(config).options["update"]
    options = replace(options, train_args={"max_steps": "6", "save_steps": "2"}, progress=False)
    with pytest.raises(KeyboardInterrupt):
        run(UpdateFiles(config=str(config)), options)
    assert current(wd) == "v0001" and (wd / "versions" / "v0002").is_dir()
    assert read_json(wd / "updates" / "0001" / "update.json")["status"] == "switching"
    monkeypatch.undo()
    force_promote(monkeypatch)
    res = run(UpdateFiles(config=str(config)), options)
    assert (res.status, res.version) == ("promoted", "v0002") and current(wd) == "v0002"
    assert not (wd / "versions" / "v0003").exists()
    # killed after the switch, before it was said: the next run says it
    st = read_json(wd / "updates" / "0001" / "update.json")
    (wd / "updates" / "0001" / "update.json").write_text(json.dumps({**st, "status": "switching"}))
    (wd / "promotion.json").unlink()
    res = run(UpdateFiles(config=str(config)), options)
    assert (res.status, res.version) == ("promoted", "v0002")
    assert read_json(wd / "promotion.json")["promoted"] == "v0002"
