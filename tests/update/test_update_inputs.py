"""`kit update` on what a user gets wrong: each is one line and exit 2 before anything runs, and models/current stays
where it was (or is not made); unchanged documents are nothing to do (exit 0)."""
import os

import pytest
import yaml
from click.testing import CliRunner

from kit.cli import main
from versions.workdirs import fake_run


def kit(*args):
    return CliRunner().invoke(main, [*map(str, args)])


def one_error_line(r, expect: str) -> None:
    assert r.exit_code == 2, r.output
    lines = [ln for ln in r.stderr.splitlines() if ln.strip()]
    assert len(lines) == 1 and lines[0].startswith("error: ") and expect in lines[0], r.stderr
    assert r.stdout == "" and "Traceback" not in r.output


@pytest.fixture
def workdir(tiny_bert, tmp_path):
    config, docs = fake_run(tmp_path, tiny_bert, n_laws=3, per_law=6)
    cfg = yaml.safe_load(config.read_text(encoding="utf-8"))
    cfg["queries"] = {"generator": ["ict"], "per_chunk": 1}
    config.write_text(yaml.safe_dump(cfg, allow_unicode=True), encoding="utf-8")
    return config, docs, tmp_path / "work"


def edit(config, **changes):
    cfg = yaml.safe_load(config.read_text(encoding="utf-8"))
    for k, v in changes.items():
        if v is None:
            cfg.pop(k, None)
        else:
            cfg[k] = v
    config.write_text(yaml.safe_dump(cfg, allow_unicode=True), encoding="utf-8")


def nothing_moved(wd, current=None):
    link = wd / "models" / "current"
    if current is None:
        assert not link.exists() and not (wd / "versions").exists()
    else:
        assert os.readlink(link) == os.path.join("..", "versions", current, "model")
    assert not (wd / "updates" / "0001" / "corpus.jsonl").exists()


def test_unchanged_documents_are_nothing_to_update_and_the_deployed_model_becomes_v0001(workdir):
    config, _, wd = workdir
    r = kit("update", config, "--no-progress")
    assert r.exit_code == 0, r.output
    assert r.stdout.strip().splitlines()[-1] == "verdict: nothing to update; v0001 stays"
    assert r.stdout.startswith("documents: 0 new, 0 changed, 0 gone, 0 moved, 18 unchanged; 0 new chunks")
    assert os.readlink(wd / "models" / "current") == os.path.join("..", "versions", "v0001", "model")
    assert not (wd / "updates" / "0001" / "pairs.jsonl").exists() and not (wd / "promotion.json").exists()


def test_a_config_naming_another_model_or_other_chunking_is_a_workdir_from_another_config(workdir, tiny_xlmr):
    config, _, wd = workdir
    edit(config, model=str(tiny_xlmr))
    one_error_line(kit("update", config), "a workdir from another model or config")
    nothing_moved(wd)
    edit(config, model=str(wd.parent / "trained-elsewhere"))
    one_error_line(kit("update", config), "a workdir from another model or config")
    nothing_moved(wd)


def test_a_deployed_version_from_another_config_is_refused(workdir):
    from kit.update.config import load_pipeline
    from kit.versions.register import register_deployed
    from kit.versions.store import Store

    config, _, wd = workdir
    p = load_pipeline(config)
    register_deployed(p, Store(wd))
    prep = yaml.safe_load(config.read_text(encoding="utf-8"))["prep"]
    edit(config, prep={**prep, "max_tokens": 120})
    r = kit("update", config)
    one_error_line(r, "other chunking")
    nothing_moved(wd, "v0001")


@pytest.mark.parametrize("content, expect", [
    (b"", "holds no question (an empty file)"),
    (b"\xff\xfe\x00q\x00", "holds no question"),
    (b'{"id": 1}\n["a list"]\n', "holds no question"),
])
def test_an_empty_or_unreadable_questions_file_is_one_line(workdir, tmp_path, content, expect):
    config, _, wd = workdir
    log = tmp_path / "questions.jsonl"
    log.write_bytes(content)
    one_error_line(kit("update", config, "--questions", log), expect)
    nothing_moved(wd)


def test_a_missing_questions_file_or_folder_without_queries_is_one_line(workdir, tmp_path):
    config, _, wd = workdir
    one_error_line(kit("update", config, "--questions", tmp_path / "none.jsonl"), "file not found")
    (tmp_path / "qdir").mkdir()
    one_error_line(kit("update", config, "--questions", tmp_path / "qdir"), "needs queries.jsonl and qrels")
    nothing_moved(wd)


def test_a_document_folder_that_lost_every_file_is_one_line(workdir):
    config, docs, wd = workdir
    for f in docs.iterdir():
        f.unlink()
    one_error_line(kit("update", config), "every file is gone")
    nothing_moved(wd)
    docs.rmdir()
    one_error_line(kit("update", config), "no such file or folder")


def test_no_queries_section_an_unknown_start_model_or_a_bad_key_is_one_line(workdir):
    config, _, wd = workdir
    edit(config, queries=None)
    one_error_line(kit("update", config), "the config has no `queries:` section")
    nothing_moved(wd)
    edit(config, queries={"generator": ["ict"]}, update={"replay_shar": 0.2})
    one_error_line(kit("update", config), "update.replay_shar: unknown key; did you mean replay_share?")
    edit(config, update={"replay_share": 1.5})
    one_error_line(kit("update", config), "update.replay_share 1.5: must lie in [0, 1)")
    nothing_moved(wd)
    edit(config, update=None)
    one_error_line(kit("update", config, "--from", "v9"), "no version 'v9'; versions: none yet")
    one_error_line(kit("update", config, "--from", str(wd / "no-such-model")), "no-such-model")
    nothing_moved(wd)


def test_a_workdir_kit_run_never_filled_is_one_line(tmp_path, tiny_bert):
    docs = tmp_path / "docs"
    docs.mkdir()
    (docs / "a.txt").write_text("劳动合同应当以书面形式订立。", encoding="utf-8")
    config = tmp_path / "kit.yaml"
    cfg = {"workdir": "work", "model": str(tiny_bert), "prep": {"inputs": ["docs"]}, "queries": {"generator": ["ict"]}}
    config.write_text(yaml.safe_dump(cfg), encoding="utf-8")
    one_error_line(kit("update", config), "no corpus.jsonl")
