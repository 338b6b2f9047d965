"""`kit run`: skip/resume by manifest, a changed setting re-runs its stage and the ones after it, a killed run
continues where it stopped, and the demo config runs end to end with the starter model."""
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import yaml

from conftest import LAW_PDFS, REPO, demo_config


def _config(tmp_path, cfg: dict) -> Path:
    p = tmp_path / "kit.yaml"
    p.write_text(yaml.safe_dump(cfg, allow_unicode=True), encoding="utf-8")
    return p


def _run(config, *args, env=None, timeout=1500):
    return subprocess.run([sys.executable, "-m", "kit.cli", "run", str(config), *args], capture_output=True,
                          text=True, env={**os.environ, **(env or {})}, timeout=timeout)


def test_stages_skip_and_rerun_from_a_changed_setting(shared_dir, tmp_path):
    docs = tmp_path / "docs"
    docs.mkdir()
    for name in ("中华人民共和国就业促进法_2007.pdf", "中华人民共和国劳动合同法实施条例_excerpt.pdf"):
        (docs / name).write_bytes((LAW_PDFS / name).read_bytes())
    (docs / "broken.pdf").write_text("not a pdf")  # a bad PDF in the folder does not stop the run
    cfg = {"workdir": "work", "model": "BAAI/bge-small-zh-v1.5", "prep": {"inputs": ["docs"], "max_tokens": 200},
           "queries": {"generator": ["ict"], "per_chunk": 1}, "split": {"eval_ratio": 0.5, "seed": 1}}
    config = _config(tmp_path, cfg)
    r = _run(config)
    assert r.returncode == 0, r.stderr
    assert "broken.pdf" in r.stderr and "[split] done" in r.stderr
    split_manifest = json.loads((tmp_path / "work/manifests/split.json").read_text())
    r = _run(config)
    assert r.returncode == 0 and r.stderr.count("up to date, skipped") == 3
    cfg["queries"]["per_chunk"] = 2
    r = _run(_config(tmp_path, cfg))
    assert "[prep] up to date" in r.stderr and "[queries] running" in r.stderr and "[split] running" in r.stderr
    assert json.loads((tmp_path / "work/manifests/split.json").read_text())["fingerprint"] != split_manifest["fingerprint"]
    r = _run(config, "--from", "split")  # redo one stage (and what follows) without changing a setting
    assert r.returncode == 0 and "[prep] up to date" in r.stderr and "[queries] up to date" in r.stderr
    assert "[split] running" in r.stderr
    r = _run(config, "--force", "--until", "queries")
    assert r.returncode == 0 and "[prep] running" in r.stderr and "[queries] running" in r.stderr
    assert "[split]" not in r.stderr
    cfg["queries"]["bogus"] = 1
    r = _run(_config(tmp_path, cfg))
    assert r.returncode == 2 and "stage queries" in r.stderr and "bogus" in r.stderr


def test_a_run_without_a_queries_section_fails_at_once_naming_it(tmp_path):
    """No `queries:` section and no pairs.jsonl: split could only fail, after prep ran (and, on the next try, after
    "resuming an interrupted run"). The run stops before anything runs, in one line naming the section to add."""
    from kit.config import load_config
    from kit.pipeline import Pipeline
    from kit.stages import REGISTRY

    (tmp_path / "docs").mkdir()
    (tmp_path / "docs" / "a.txt").write_text("劳动合同应当以书面形式订立。试用期不得超过六个月。", encoding="utf-8")
    cfg = {"workdir": "work", "model": "BAAI/bge-small-zh-v1.5", "prep": {"inputs": ["docs"]},
           "split": {"eval_ratio": 0.5}}
    config = _config(tmp_path, cfg)
    r = _run(config)
    assert r.returncode == 2, r.stderr
    lines = [ln for ln in r.stderr.splitlines() if ln.strip()]
    assert len(lines) == 1 and lines[0].startswith("error:"), r.stderr
    assert "`queries:`" in lines[0] and "generator: [ict, keywords]" in lines[0] and "pairs.jsonl" in lines[0]
    assert "[prep]" not in r.stderr and "resuming" not in r.stderr and not (tmp_path / "work").exists()

    r = _run(config, "--until", "prep")      # nothing in this run needs pairs.jsonl
    assert r.returncode == 0 and "[prep] done" in r.stderr, r.stderr
    (tmp_path / "work" / "pairs.jsonl").write_text("", encoding="utf-8")   # pairs made elsewhere: nothing to refuse
    Pipeline(load_config(config), config, REGISTRY).check_inputs_reachable()


@pytest.mark.slow
def test_demo_config_end_to_end_killed_and_resumed(zh_e5_path, tmp_path):
    """configs/demo.yaml with the starter model and fewer steps; killed during training, then resumed."""
    cfg = demo_config(tmp_path / "work", zh_e5_path)
    cfg["train"]["args"].update({"max_steps": 8, "save_steps": 4, "logging_steps": 2})
    cfg["adapter"]["epochs"] = 5
    cfg["merge"]["weights"] = [0.5]
    cfg["bench"].pop("general")  # the general check is exercised by the bench tests; keep CI time down
    config = _config(tmp_path, cfg)
    log = open(tmp_path / "first.log", "w")
    proc = subprocess.Popen([sys.executable, "-m", "kit.cli", "run", str(config)], stdout=log, stderr=log,
                            start_new_session=True)
    ckpt = tmp_path / "work/models/finetuned/checkpoint-4"
    deadline = time.time() + 1200
    while not ckpt.exists() and proc.poll() is None and time.time() < deadline:
        time.sleep(1)
    assert ckpt.exists(), (tmp_path / "first.log").read_text()[-3000:]
    time.sleep(1)
    os.killpg(proc.pid, signal.SIGKILL)  # torchrun and its worker die with it
    proc.wait()
    assert not (tmp_path / "work/manifests/train.json").exists()

    r = _run(config)
    assert r.returncode == 0, r.stderr[-3000:]
    for stage in ("prep", "queries", "split", "mine"):
        assert f"[{stage}] up to date, skipped" in r.stderr
    assert "resuming from" in r.stderr and "checkpoint-4" in r.stderr
    res = json.loads((tmp_path / "work/report/results.json").read_text(encoding="utf-8"))
    assert set(res["models"]) == {"base", "fine-tuned", "merged-0.5", "adapter-base", "bm25"}
    for m in res["models"].values():
        assert 0 < m["domain"]["metrics"]["mrr@10"] <= 1
    assert (tmp_path / "work/report/report.html").exists()
    # bench-only change: nothing upstream re-runs, and no embedding is recomputed
    cfg["bench"]["k"] = [1, 5, 10]
    r = _run(_config(tmp_path, cfg))
    assert r.returncode == 0 and "[train] up to date" in r.stderr and "[bench] running" in r.stderr
    res = json.loads((tmp_path / "work/report/results.json").read_text(encoding="utf-8"))
    assert all(m["domain"]["encoded"] == 0 for n, m in res["models"].items() if n != "bm25")


@pytest.mark.parametrize("name", ["demo", "bge-large-zh-v1.5", "bge-m3", "cpu-small"])
def test_shipped_configs_map_onto_stage_options(name, monkeypatch):
    """Every section of every shipped config is accepted by its stage's options dataclass."""
    from kit.config import load_config
    from kit.options import from_section
    from kit.stages import SECTIONS

    cfg = load_config(REPO / "configs" / f"{name}.yaml")
    assert cfg.get("model")
    for section, cls in SECTIONS.items():
        if section in cfg:
            from_section(cls, cfg[section], f"{name}: {section}")


def test_a_key_in_an_endpoint_url_changes_no_fingerprint_and_is_never_stored(tmp_path, monkeypatch):
    """Only the key differs between two configs: the same fingerprints, and the stored settings hold none."""
    from kit.io import read_json
    from kit.pipeline import Pipeline
    from kit.stages import REGISTRY

    def pipeline(key: str) -> Pipeline:
        cfg = {"workdir": str(tmp_path / "work"), "model": "m", "prep": {"inputs": [str(tmp_path)]},
               "queries": {"base_url": f"http://gw:{key}@127.0.0.1:9/v1?api-key={key}", "model": "x"},
               "bench": {"base_url": f"http://127.0.0.1:9/v1?token={key}",
                         "models": {"e5": {"spec": "openai:e5", "base_url": f"http://u:{key}@h/v1"}}}}
        return Pipeline(cfg, tmp_path / "kit.yaml", REGISTRY)

    a, b = pipeline("KEY-aaaaaaaa"), pipeline("KEY-bbbbbbbb")
    for stage in REGISTRY:
        assert a.fingerprint(stage, a.options[stage.name])[0] == b.fingerprint(stage, b.options[stage.name])[0]
    queries = next(s for s in REGISTRY if s.name == "queries")
    (tmp_path / "work").mkdir()
    (tmp_path / "work" / "corpus.jsonl").write_text('{"id": "c", "text": "劳动合同"}\n', encoding="utf-8")
    import dataclasses
    fake = dataclasses.replace(queries, run=lambda p, o: {"llm": {"base_url": o.base_url}},
                               outputs=lambda p, o: [])
    a._run_stage(fake, forcing=True)
    text = (tmp_path / "work" / "manifests" / "queries.json").read_text(encoding="utf-8")
    assert "KEY-aaaaaaaa" not in text
    assert read_json(tmp_path / "work" / "manifests" / "queries.json")["settings"]["base_url"] == \
        "http://***@127.0.0.1:9/v1?api-key=***"


def test_workdir_lock_names_its_holder_and_is_released_when_the_holder_dies(tmp_path):
    from kit.io import KitError
    from kit.lock import WorkdirLock

    holder = subprocess.Popen([sys.executable, "-c", "import sys, time; from kit.lock import WorkdirLock\n"
                               f"l = WorkdirLock({str(tmp_path / '.kit.lock')!r}); l.acquire(); print('held', "
                               "flush=True); time.sleep(60)"], stdout=subprocess.PIPE, text=True)
    assert holder.stdout.readline().strip() == "held"
    with pytest.raises(KitError, match=rf"another kit run is using this workdir \(pid {holder.pid} on .*started "):
        WorkdirLock(tmp_path / ".kit.lock").acquire()
    holder.kill()
    holder.wait()
    said = []
    with WorkdirLock(tmp_path / ".kit.lock", echo=said.append):
        assert json.loads((tmp_path / ".kit.lock").read_text())["pid"] == os.getpid()
    assert said and f"taking over a stale lock (pid {holder.pid}" in said[0]
    assert (tmp_path / ".kit.lock").read_text() == ""       # released: nobody holds it
