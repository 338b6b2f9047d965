"""`kit run` can end with the index stage (off unless an `index:` section is configured); it and `kit index CONFIG`
take the workdir's corpus, its eval questions, and the deployed model (deploy/deploy.json), else the recommended one
(report/results.json), else the config's model."""
from __future__ import annotations

import json
import shutil

import pytest
import yaml
from click.testing import CliRunner

from kit.cli import main
from kit.index.workdir import chosen_model
from kit.io import KitError, write_json
from kit.pipeline import Pipeline
from kit.stages import REGISTRY


def workdir(tmp_path, cmrc80, base, index: dict | None) -> Pipeline:
    corpus, ev = cmrc80
    wd = tmp_path / "work"
    (wd / "data").mkdir(parents=True)
    shutil.copy(corpus, wd / "corpus.jsonl")
    shutil.copytree(ev, wd / "data" / "eval")
    cfg = {"workdir": "work", "model": str(base), "prep": {"inputs": ["docs"]}}
    if index is not None:
        cfg["index"] = index
    (tmp_path / "kit.yaml").write_text(yaml.safe_dump(cfg, allow_unicode=True), encoding="utf-8")
    return Pipeline(cfg, tmp_path / "kit.yaml", REGISTRY)


def stage(name="index"):
    return next(s for s in REGISTRY if s.name == name)


def test_the_stage_is_last_and_off_without_a_section(tmp_path, cmrc80, e5_v1):
    assert REGISTRY[-1].name == "index"
    assert not stage().enabled(workdir(tmp_path, cmrc80, e5_v1, None))


def test_the_model_choice(tmp_path, cmrc80, e5_v1, e5_v2):
    p = workdir(tmp_path, cmrc80, e5_v1, {"name": "laws"})
    assert chosen_model(p)[0] == str(e5_v1)                         # no report: the config's model
    write_json(p.wd.report / "results.json", {"recommendation": {"recommended": "merged-0.5"},
                                              "models": {"merged-0.5": {"spec": f"local:{e5_v2}"}}})
    assert chosen_model(p) == (str(e5_v2), f"{p.wd.report / 'results.json'} (recommended: merged-0.5)")
    write_json(p.wd.root / "deploy" / "deploy.json", {"deployed": {"name": "deployed", "path": str(e5_v1)}})
    assert chosen_model(p)[0] == str(e5_v1)                         # the refitted model wins
    (p.wd.root / "models").mkdir()
    (p.wd.root / "models" / "current").symlink_to(e5_v2)
    assert chosen_model(p)[0] == str(e5_v2.resolve())               # and a promoted version wins over it
    (p.wd.root / "models" / "current").unlink()
    (p.wd.root / "deploy" / "deploy.json").unlink()
    write_json(p.wd.report / "results.json", {"recommendation": {"recommended": "bm25"},
                                              "models": {"bm25": {"spec": "bm25"}}})
    with pytest.raises(KitError, match="recommended model bm25 \\(bm25\\) is not a local encoder"):
        chosen_model(p)


def test_kit_run_ends_with_the_index_stage(tmp_path, cmrc80, e5_v1, e5_v2, capsys):
    p = workdir(tmp_path, cmrc80, e5_v1, {"name": "laws", "golden_queries": 30})
    write_json(p.wd.root / "deploy" / "deploy.json", {"deployed": {"name": "deployed", "path": str(e5_v2)}})
    summary = p._run_stage(stage(), forcing=False)
    record = json.loads((p.wd.root / "index" / "index.json").read_text(encoding="utf-8"))
    assert record == summary and record["switched"] and record["model"]["model"] == str(e5_v2)
    assert record["store"] == f"milvus-lite:{p.wd.root.resolve() / 'index' / 'milvus.db'}"
    assert record["golden"]["questions"].startswith("30 eval questions") and record["golden"]["ok"]
    p._run_stage(stage(), forcing=False)
    assert "[index] up to date, skipped" in capsys.readouterr().err
    # the same workdir through `kit index CONFIG`: nothing to embed, the collection is already live
    r = CliRunner().invoke(main, ["index", str(tmp_path / "kit.yaml"), "--no-progress"])
    assert r.exit_code == 0, r.output
    assert f"alias laws -> {record['collection']} (already live" in r.stdout and "0 added" in r.stdout
