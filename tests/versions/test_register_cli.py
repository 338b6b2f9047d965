"""The first version from a `kit run` workdir, and `kit versions` / `kit promote` / `kit rollback` taking the config
or the workdir: one line and exit 2 for what a user gets wrong."""
import json
import os
import shutil

import yaml
from click.testing import CliRunner

from kit.cli import main
from kit.io import read_json

from .workdirs import copy_model, fake_run, results


def kit(*args):
    return CliRunner().invoke(main, [*map(str, args)])


def one_error_line(r, expect: str) -> None:
    assert r.exit_code == 2, r.output
    lines = [ln for ln in r.stderr.splitlines() if ln.strip()]
    assert len(lines) == 1 and lines[0].startswith("error: ") and expect in lines[0], r.stderr
    assert r.stdout == ""


def test_promote_registers_the_recommended_model_as_v0001_with_its_material_and_figures(tiny_bert, tmp_path):
    from kit.versions.register import norm_key

    config, docs = fake_run(tmp_path, tiny_bert)
    wd = tmp_path / "work"
    r = kit("promote", config)
    assert r.exit_code == 0, r.output
    assert r.stdout.strip() == f"deployed: v0001 ({wd / 'versions' / 'v0001' / 'model'})"
    assert os.readlink(wd / "models" / "current") == os.path.join("..", "versions", "v0001", "model")
    v = read_json(wd / "versions" / "v0001" / "version.json")
    assert v["source"]["kind"] == "report" and v["source"]["name"] == "fine-tuned"
    assert v["recipe"] == {"merge_weight": None} and v["config_model"] == str(tiny_bert)
    per_q = read_json(wd / "report" / "results.json")["models"]["fine-tuned"]["domain"]["per_query"]["mrr@10"]
    fig = v["eval"]["sets"]["v0001"]
    assert fig["questions"] == len(per_q) and abs(fig["value"] - sum(per_q) / len(per_q)) < 1e-6
    assert fig["lo"] < fig["value"] < fig["hi"] and v["eval_sets"] == ["v0001"]
    corpus = [json.loads(x) for x in (wd / "corpus.jsonl").read_text(encoding="utf-8").splitlines()]
    assert v["documents"]["chunks"] == len(corpus) and v["training"]["rows"] == len(
        (wd / "data" / "train_hn.jsonl").read_text(encoding="utf-8").splitlines())
    material = wd / "versions" / "v0001" / "material"
    ledger = read_json(material / "files.json")
    assert sorted(ledger) == sorted(str(p) for p in docs.iterdir())
    assert [i for f in sorted(ledger) for i in ledger[f]["ids"]] == [c["id"] for c in corpus]
    train = {norm_key(json.loads(x)["text"]) for x in (wd / "data" / "train_corpus.jsonl").read_text(
        encoding="utf-8").splitlines()}
    held = set(read_json(material / "eval" / "heldout.json")["heldout"])
    assert held and held == {norm_key(c["text"]) for c in corpus} - train
    assert (material / "eval" / "test_qrels.jsonl").is_file()
    r = kit("promote", config)                               # registering again: the same version
    assert r.exit_code == 0 and r.stdout.startswith("deployed: v0001") and not (wd / "versions" / "v0002").exists()


def test_the_deploy_stages_refitted_model_is_the_one_kept_with_its_merge_weight(tiny_bert, tmp_path):
    config, _ = fake_run(tmp_path, tiny_bert)
    wd = tmp_path / "work"
    merged = copy_model(tiny_bert, wd / "deploy" / "models" / "merged-0.5", "merge", weight_finetuned=0.5)
    (wd / "deploy" / "data").mkdir(parents=True)
    shutil.copy(wd / "data" / "train_hn.jsonl", wd / "deploy" / "data" / "train_hn.jsonl")
    (wd / "deploy" / "deploy.json").write_text(json.dumps({"deployed": {"name": "deployed", "path": str(merged)},
                                                           "weight": 0.5}), encoding="utf-8")
    results(wd / "deploy" / "report" / "results.json", {"deployed": (f"local:{merged}", [1.0, 0.0, 1.0, 1.0])},
            "deployed")
    r = kit("promote", tmp_path / "work")                    # the workdir instead of the config
    assert r.exit_code == 0, r.output
    v = read_json(wd / "versions" / "v0001" / "version.json")
    assert v["source"]["kind"] == "deploy" and v["source"]["path"] == str(merged)
    assert v["recipe"] == {"merge_weight": 0.5} and v["eval"]["sets"]["v0001"]["value"] == 0.75


def test_a_recommended_adapter_is_kept_as_the_best_model_folder_not_as_the_base(tiny_bert, tmp_path):
    """An adapter over the frozen base (or an API model) is no folder an update can train from: the version is the
    best of the kit's own model folders, said in its manifest -- never the base the adapter sits on."""
    config, _ = fake_run(tmp_path, tiny_bert)
    wd = tmp_path / "work"
    merged = copy_model(tiny_bert, wd / "models" / "merged-0.5", "merge", weight_finetuned=0.5)
    n = len(read_json(wd / "report" / "results.json")["models"]["base"]["domain"]["per_query"]["mrr@10"])
    results(wd / "report" / "results.json", {"base": (f"local:{tiny_bert}", [0.5] * n),
                                             "fine-tuned": (f"local:{wd / 'models' / 'finetuned'}", [0.6] * n),
                                             "merged-0.5": (f"local:{merged}", [0.7] * n),
                                             "adapter-base": (f"adapter:{wd / 'adapters' / 'base'}", [0.71] * n)},
            "adapter-base")
    r = kit("promote", config)
    assert r.exit_code == 0, r.output
    v = read_json(wd / "versions" / "v0001" / "version.json")
    assert v["source"]["name"] == "merged-0.5" and v["source"]["path"] == str(merged)
    assert "adapter-base" in v["source"]["note"] and "not a model folder" in v["source"]["note"]
    assert v["recipe"] == {"merge_weight": 0.5} and abs(v["eval"]["sets"]["v0001"]["value"] - 0.7) < 1e-9


def test_versions_lists_promote_switches_rollback_returns_and_mistakes_are_one_line(tiny_bert, tmp_path):
    from kit.versions.store import Store

    config, _ = fake_run(tmp_path, tiny_bert)
    wd = tmp_path / "work"
    assert kit("promote", config).exit_code == 0
    one_error_line(kit("rollback", config), "v0001 is the first version promoted here")
    s = Store(wd)
    with s.lock():
        s.add(wd / "models" / "finetuned", {"source": {"kind": "update", "update": "0001", "name": "fine-tuned"},
                                            "parent": "v0001", "documents": {"documents": 9, "chunks": 9,
                                                                            "hash": "abcdef0123"},
                                            "training": {"rows": 12}}, {})
    r = kit("versions", config)
    assert r.exit_code == 0, r.output
    lines = r.stdout.splitlines()
    assert lines[0].split() == ["version", "created", "from", "documents", "rows", "eval", "(95%", "CI)"]
    assert lines[1].startswith("*  v0001") and "report: fine-tuned" in lines[1] and "mrr@10: v0001 0." in lines[1]
    assert lines[2].startswith("   v0002") and "update 0001 (fine-tuned, from v0001)" in lines[2]
    assert "9 docs / 9 chunks (abcdef01)" in lines[2] and lines[-1].startswith("* deployed: models/current -> ")
    r = kit("promote", config, "2")
    assert r.exit_code == 0 and r.stdout.strip() == "deployed: v0002 (was v0001)"
    listed = json.loads(kit("versions", wd, "--json").stdout)
    assert [(x["version"], x["current"]) for x in listed] == [("v0001", False), ("v0002", True)]
    r = kit("rollback", config)
    assert r.exit_code == 0 and r.stdout.strip() == "deployed: v0001 (rolled back from v0002)"
    one_error_line(kit("promote", config, "v9"), "no version 'v9'; versions: v0001, v0002")
    one_error_line(kit("versions", tmp_path / "nowhere"), "no such config file or workdir")
    one_error_line(kit("versions", tmp_path / "docs"), "not a kit workdir")


def test_a_config_naming_another_model_is_refused_in_one_line(tiny_bert, tiny_xlmr, tmp_path):
    config, _ = fake_run(tmp_path, tiny_bert)
    cfg = yaml.safe_load(config.read_text(encoding="utf-8"))
    cfg["model"] = str(tiny_xlmr)
    config.write_text(yaml.safe_dump(cfg, allow_unicode=True), encoding="utf-8")
    one_error_line(kit("promote", config), "a workdir from another model or config")
    assert not (tmp_path / "work" / "versions").exists() and not (tmp_path / "work" / "models" / "current").exists()
