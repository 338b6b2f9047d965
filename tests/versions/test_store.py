"""Versions and the models/current switch (kit/versions/store.py): a version appears whole or not at all, current
changes in one rename and only to an intact version, promote and rollback walk the recorded stack, and drift reads
the link the way the versions write it."""
import os
import shutil

import pytest

from kit.io import KitError, read_json
from kit.versions import store as store_mod
from kit.versions.store import Store


@pytest.fixture
def model(tiny_bert, tmp_path):
    d = tmp_path / "trained"
    shutil.copytree(tiny_bert, d)
    return d


def add(store, model, **manifest):
    with store.lock():
        return store.add(model, {"source": {"kind": "test"}, **manifest}, {})


def test_a_version_is_a_hard_linked_copy_with_its_manifest_and_numbers_count_up(model, tmp_path):
    s = Store(tmp_path / "work")
    (tmp_path / "rows.jsonl").write_text('{"query": "q", "pos": ["p"]}\n', encoding="utf-8")
    with s.lock():
        v1 = s.add(model, {"source": {"kind": "test"}}, {"pool.jsonl": tmp_path / "rows.jsonl", "absent": None},
                   records={"files.json": {"a.pdf": {"hash": "x", "ids": []}}})
    v2 = add(s, model)
    assert [v.name for v in s.versions()] == ["v0001", "v0002"] and s.current() is None
    w = next(model.glob("*.safetensors"))
    assert os.stat(v1.model / w.name).st_ino == os.stat(w).st_ino           # hard link, no copy of the weights
    m = read_json(v1.path / "version.json")
    assert m["version"] == "v0001" and m["source"] == {"kind": "test"} and len(m["weights"]) == 24
    assert v1.material("pool.jsonl").read_text(encoding="utf-8").startswith('{"query"')
    assert read_json(v1.material("files.json"))["a.pdf"]["hash"] == "x" and v1.material("absent") is None
    assert s.get("2").name == s.get("v2").name == s.get("v0002").name == v2.name
    with pytest.raises(KitError, match="no version 'v7'; versions: v0001, v0002"):
        s.get("v7")


def test_an_add_killed_half_way_leaves_no_version_and_the_next_one_takes_its_number(model, tmp_path, monkeypatch):
    s = Store(tmp_path / "work")
    add(s, model)

    def killed(*a, **k):
        raise KeyboardInterrupt

    monkeypatch.setattr(store_mod, "write_json", killed)
    with pytest.raises(KeyboardInterrupt):
        add(s, model)
    monkeypatch.undo()
    assert [v.name for v in s.versions()] == ["v0001"] and not list(s.dir.glob(".tmp-*"))
    os.makedirs(s.dir / ".tmp-v0002-999999" / "model")       # one left by a process killed with SIGKILL
    assert add(s, model).name == "v0002" and not list(s.dir.glob(".tmp-*"))


def test_promote_and_rollback_walk_the_stack_and_current_is_a_relative_symlink(model, tmp_path):
    s = Store(tmp_path / "work")
    for _ in range(3):
        add(s, model)
    assert s.promote("v1")[1] is None
    s.promote("v2")
    v, before = s.promote("v3")
    assert (v.name, before.name) == ("v0003", "v0002") and s.current().name == "v0003"
    link = s.current_link
    assert link.is_symlink() and os.readlink(link) == os.path.join("..", "versions", "v0003", "model")
    assert s.promote("v3")[1].name == "v0003"                 # already deployed: nothing recorded
    assert [x.name for x in s.rollback()] == ["v0002", "v0003"]
    assert [x.name for x in s.rollback()] == ["v0001", "v0002"]
    with pytest.raises(KitError, match="v0001 is the first version promoted here"):
        s.rollback()
    events = s.history()["events"]
    assert [(e["action"], e["version"], e["from"]) for e in events] == [
        ("promote", "v0001", None), ("promote", "v0002", "v0001"), ("promote", "v0003", "v0002"),
        ("rollback", "v0002", "v0003"), ("rollback", "v0001", "v0002")]
    s.promote("v3")                                           # promote after rollbacks: back is v0001 again
    assert s.rollback()[0].name == "v0001"


def test_a_switch_killed_before_the_rename_leaves_current_and_one_after_it_is_reconciled(model, tmp_path, monkeypatch):
    s = Store(tmp_path / "work")
    for _ in range(3):
        add(s, model)
    s.promote("v1")
    s.promote("v2")

    def killed(*a, **k):
        raise KeyboardInterrupt

    monkeypatch.setattr(store_mod.os, "replace", killed)
    with pytest.raises(KeyboardInterrupt):
        s.promote("v3")
    monkeypatch.undo()
    assert s.current().name == "v0002" and (s.current_link.parent / "current").is_symlink()
    assert s.rollback()[0].name == "v0001"                     # the pending v0003 never happened
    # killed after the rename, before the history was written: the stack follows what current says
    real = store_mod.write_json
    calls = []

    def second_write_dies(path, obj, **k):
        calls.append(path)
        if len(calls) == 2:
            raise KeyboardInterrupt
        return real(path, obj, **k)

    monkeypatch.setattr(store_mod, "write_json", second_write_dies)
    with pytest.raises(KeyboardInterrupt):
        s.promote("v3")
    monkeypatch.undo()
    assert s.current().name == "v0003" and s.history()["pending"]["to"] == "v0003"
    assert s.rollback()[0].name == "v0001"                     # the stack as the pending switch left it


def test_a_version_whose_weights_changed_or_a_folder_in_place_of_the_link_is_not_switched_to(model, tmp_path):
    s = Store(tmp_path / "work")
    v1 = add(s, model)
    s.current_link.mkdir(parents=True)
    with pytest.raises(KitError, match="is a folder, not a link"):
        s.promote("v1")
    s.current_link.rmdir()
    w = next(v1.model.glob("*.safetensors"))
    data = w.read_bytes()
    w.unlink()                                               # (a hard link: write a new file, not the shared one)
    w.write_bytes(data[:-4] + b"\0\0\0\0")
    with pytest.raises(KitError, match="weights of v0001 changed since it was stored"):
        s.promote("v1")
    assert not s.current_link.exists()


def test_drift_reads_the_link_the_versions_write(model, tmp_path):
    from kit.drift.workdir import deployed_model
    from kit.pipeline import Pipeline
    from kit.stages import REGISTRY

    s = Store(tmp_path / "work")
    add(s, model)
    v2 = add(s, model)
    s.promote("v2")
    p = Pipeline({"workdir": str(tmp_path / "work"), "model": str(model)}, tmp_path / "kit.yaml", list(REGISTRY))
    d = deployed_model(p)
    assert os.path.realpath(d.path) == os.path.realpath(v2.model) and "symlink" in d.source
