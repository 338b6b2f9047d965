"""Options defined once: the YAML validation, the CLI flags and the README table all come from the stages'
dataclasses, and drift between them fails here."""
from __future__ import annotations

import dataclasses
from pathlib import Path

import pytest
import yaml
from click.testing import CliRunner

from conftest import REPO
from kit.cli import main
from kit.io import KitError
from kit.options import OptionError, coerce, from_section, yaml_fields
from kit.stages import REGISTRY, SECTIONS


def _pipeline(tmp_path, cfg: dict):
    from kit.config import load_config
    from kit.pipeline import Pipeline

    p = tmp_path / "kit.yaml"
    p.write_text(yaml.safe_dump(cfg, allow_unicode=True), encoding="utf-8")
    return Pipeline(load_config(p), p, REGISTRY)


def test_readme_config_table_is_the_code():
    from kit.docgen import block, table

    assert block((REPO / "README.md").read_text(encoding="utf-8")) == table()


def test_every_yaml_key_is_in_the_readme_table():
    from kit.docgen import table

    text = table()
    for section, cls in SECTIONS.items():
        for f in yaml_fields(cls):
            assert f"| `{section}` | `{f.name}` |" in text


def test_every_cli_flag_is_a_field_and_every_field_a_flag():
    for name, cmd in main.commands.items():
        sources = getattr(cmd, "kit_sources", None)
        assert sources, f"kit {name}: flags not generated from dataclasses"
        fields = {f.name: f for cls in sources for f in dataclasses.fields(cls)}
        params = {p.name for p in cmd.params if p.name != "help"}
        assert params - set(fields) == set(), f"kit {name}: flags without a field: {params - set(fields)}"
        visible = {n for n, f in fields.items() if f.metadata.get("cli", True)}
        assert visible - params == set(), f"kit {name}: fields without a flag: {visible - params}"


def test_unknown_keys_are_named_first_with_a_suggestion(tmp_path):
    with pytest.raises(OptionError) as e:
        _pipeline(tmp_path, {"model": "m", "prep": {"inptus": ["docs"], "max_tokens": "lots"}})
    assert e.value.problems[0].endswith("prep.inptus: unknown key; did you mean inputs?")
    assert len(e.value.problems) == 1     # the wrong type is reported once the key names are right


def test_misspelled_sections_are_errors_not_skipped_stages(tmp_path):
    with pytest.raises(OptionError) as e:
        _pipeline(tmp_path, {"model": "m", "mien": {"range": "2-10"}, "trian": {}})
    text = "\n".join(e.value.problems)
    assert "mien: unknown section; did you mean mine?" in text and "trian: unknown section; did you mean train?" in text


@pytest.mark.parametrize("section,key,value,expect", [
    ("prep", "max_tokens", "lots", "prep.max_tokens: expected an integer, got 'lots'"),
    ("merge", "weights", ["half"], "merge.weights[0]: expected a number, got 'half'"),
    ("merge", "weights", [1.5], "merge.weights [1.5]: every weight must lie between 0 and 1 (weight of the fine-tuned model)"),
    ("mine", "range", "9-3", "mine.range '9-3': ranks are 1-based and FIRST <= LAST"),
    ("mine", "precision", "bf61", "mine.precision: 'bf61' is not one of auto, fp32, bf16, fp16; did you mean bf16?"),
    ("train", "args", "lr=1", "train.args: expected a mapping, got 'lr=1'"),
    ("split", "eval_ratio", 1.5, "split.eval_ratio 1.5: must lie in [0, 1)"),
])
def test_wrong_values_name_their_key(tmp_path, section, key, value, expect):
    with pytest.raises(OptionError) as e:
        _pipeline(tmp_path, {"model": "m", section: {key: value}})
    assert any(p.endswith(expect) for p in e.value.problems), e.value.problems


def test_environment_strings_become_numbers_and_paths_resolve_against_the_config(tmp_path, monkeypatch):
    monkeypatch.setenv("STEPS", "240")
    monkeypatch.chdir(tmp_path.parent)
    cfg_dir = tmp_path / "cfg"
    cfg_dir.mkdir()
    (cfg_dir / "kit.yaml").write_text(
        "model: m\nworkdir: run\nprep: {inputs: [docs], max_tokens: '${STEPS}'}\n"
        "mine: {cache_path: cache/emb.sqlite}\nqueries: {cache_path: llm.sqlite, generator: ict}\n"
        "split: {eval_queries: real.jsonl}\ntrain: {deepspeed: ds.json, args: {max_steps: '${STEPS}'}}\n",
        encoding="utf-8")
    from kit.config import load_config
    from kit.pipeline import Pipeline

    p = Pipeline(load_config(cfg_dir / "kit.yaml"), cfg_dir / "kit.yaml", REGISTRY)
    o = p.options
    assert o["prep"].max_tokens == 240 and o["prep"].inputs == [str(cfg_dir / "docs")]
    assert o["mine"].cache_path == str(cfg_dir / "cache/emb.sqlite")
    assert o["queries"].cache_path == str(cfg_dir / "llm.sqlite")
    assert o["split"].eval_queries == str(cfg_dir / "real.jsonl")
    assert o["train"].deepspeed == str(cfg_dir / "ds.json")
    assert p.wd.root == cfg_dir / "run"


def test_every_path_field_is_resolved(tmp_path):
    """Any field marked as a path -- including ones added later -- is resolved relative to the config."""
    for section, cls in SECTIONS.items():
        for f in yaml_fields(cls):
            if f.metadata.get("path"):
                hint = __import__("typing").get_type_hints(cls)[f.name]
                value = ["x"] if "list" in str(hint) else "x"
                o = from_section(cls, {f.name: value}, section, resolve_path=lambda v: Path("/base") / v)
                got = getattr(o, f.name)
                assert got == (["/base/x"] if isinstance(value, list) else "/base/x"), (section, f.name)


def test_cli_flags_override_the_config_section(tmp_path):
    cfg = tmp_path / "c.yaml"
    cfg.write_text("model: m\nmine: {range: '2-50', negatives: 7}\n", encoding="utf-8")
    r = CliRunner().invoke(main, ["mine", "t.jsonl", "--corpus", "c.jsonl", "-o", "o.jsonl", "--config", str(cfg),
                                  "--negatives", "x"])
    assert r.exit_code == 2 and "--negatives: expected an integer, got 'x'" in r.output


def test_coerce_keeps_types_and_rejects_garbage():
    assert coerce("240", int, "k") == 240 and coerce("0.5", float, "k") == 0.5
    assert coerce("true", bool, "k") is True and coerce(2, str | int, "k") == 2 and coerce("auto", str | int, "k") == "auto"
    assert coerce("0.3,0.7", list[float], "k") == [0.3, 0.7] and coerce(0.5, list[float], "k") == [0.5]
    with pytest.raises(KitError):
        coerce(True, int, "k")
    with pytest.raises(KitError):
        coerce([1], str, "k")


def test_kit_run_and_a_commands_config_read_paths_and_the_model_alike(tmp_path, monkeypatch):
    """One resolver (kit.config.path_resolver): a path relative to the config, one that exists only relative to the
    current directory (KIT_MODEL=../x), and the top-level model read the same by `kit run` and by `kit mine --config`."""
    from kit.cli._common import _config_section
    from kit.mine import MineOptions
    from kit.pipeline import Pipeline
    from kit.stages import REGISTRY

    (tmp_path / "cfg").mkdir()
    (tmp_path / "here" / "local-model").mkdir(parents=True)
    (tmp_path / "here" / "local-model" / "config.json").write_text("{}")
    monkeypatch.chdir(tmp_path / "here")
    cfg_path = tmp_path / "cfg" / "kit.yaml"
    cfg_path.write_text("model: local-model\nmine: {model: local-model, cache_path: cache/e.sqlite}\n")
    p = Pipeline({"model": "local-model", "mine": {"model": "local-model", "cache_path": "cache/e.sqlite"}},
                 cfg_path, REGISTRY)
    opts, model = _config_section(str(cfg_path), "mine", MineOptions)
    assert model == p.model == str(tmp_path / "here" / "local-model")          # found from the current directory
    assert opts.cache_path == p.options["mine"].cache_path == str(tmp_path / "cfg" / "cache" / "e.sqlite")


def test_options_are_checked_once_and_again_when_changed():
    """validated() at the boundary; a stage entry point validating again costs nothing unless a value changed."""
    from kit.mine import MineOptions
    from kit.options import validated

    o = validated(MineOptions(range="2-40"), "mine")
    calls = []
    import kit.options as ko
    real = ko._check
    ko._check = lambda *a: calls.append(a) or real(*a)
    try:
        validated(o, "mine")
        assert calls == []                       # same values: not checked twice
        o.range = "40-2"
        with pytest.raises(OptionError, match="mine.range"):
            validated(o, "mine")                 # changed since: checked again
    finally:
        ko._check = real
