"""Blue-green: a collection per model version, filled and verified (count parity, golden check) before the alias
moves; rollback and prune; and every way it must refuse (an alias pointing somewhere unexpected, a name clash, a
dimension or model mismatch, a failed golden check, a store that is down, a locked Milvus Lite folder, a key in a
URI), each one line with the alias left where it was."""
from __future__ import annotations

import subprocess
import sys

import pytest
from click.testing import CliRunner

from kit.cli import main
from kit.index import IndexFiles, IndexOptions, run
from kit.index.stores import Schema, open_store
from kit.index.stores.milvus import MilvusStore
from kit.io import KitError

from .conftest import free_port

STORES = ["milvus-lite:///{d}/index.db", "qdrant-local:///{d}/q", "faiss:///{d}/f"]
QUESTIONS = ["《战国无双3》是由哪两个公司合作开发的？", "锣鼓经是什么？", "广东省的省会是哪里？"]


def index(store: str, model, corpus, eval_dir=None, **options) -> object:
    files = IndexFiles(model=str(model), corpus=str(corpus), eval=str(eval_dir) if eval_dir else None)
    return run(files, IndexOptions(store=store, name="laws", golden_queries=40, **options), progress=False)


def top(store_uri: str, model, k: int = 10) -> list[list[str]]:
    """What a search service gets through the alias for QUESTIONS, embedding them with ``model``."""
    from kit.embed import LocalEncoder

    q = LocalEncoder(str(model), progress=False).encode_queries(QUESTIONS)
    with open_store(store_uri) as s:
        return s.search("laws", q, k)


@pytest.mark.parametrize("template", STORES, ids=["milvus-lite", "qdrant-local", "faiss"])
def test_switch_rollback_prune(template, tmp_path, cmrc80, e5_v1, e5_v2):
    corpus, ev = cmrc80
    uri = template.format(d=tmp_path)
    first = index(uri, e5_v1, corpus, ev)
    assert first.switched and first.previous is None and first.fill["added"] == 80
    assert first.parity["ok"] and first.golden["ok"] and first.golden["questions"].startswith("40 eval questions")
    assert first.golden["recall@10_store"] == pytest.approx(first.golden["recall@10_exact"], abs=0.01)
    before = top(uri, e5_v1)
    second = index(uri, e5_v2, corpus, ev)
    assert second.collection != first.collection and second.previous == first.collection and second.switched
    assert second.fill["added"] == 80                      # a model change fills a new collection whole
    assert top(uri, e5_v2) != before
    back = run(IndexFiles(rollback=True), IndexOptions(store=uri, name="laws"))
    assert (back.previous, back.collection) == (second.collection, first.collection)
    assert top(uri, e5_v1) == before                       # exactly the previous top-k, order included
    with pytest.raises(KitError, match="first live collection"):
        run(IndexFiles(rollback=True), IndexOptions(store=uri, name="laws"))
    pruned = run(IndexFiles(prune=0), IndexOptions(store=uri, name="laws"))
    assert pruned.kept == [first.collection] and pruned.dropped == [second.collection]
    with open_store(uri) as s:
        assert [c for c in s.collections() if c.startswith("laws__")] == [first.collection]


def test_payload_and_sparse_free_schema_in_milvus(tmp_path, cmrc80, e5_v1):
    r = index(f"milvus-lite://{tmp_path}/i.db", e5_v1, cmrc80[0])
    with open_store(f"milvus-lite://{tmp_path}/i.db") as s:
        meta = s.info(r.collection).meta      # (loads the collection: Milvus releases them when it restarts)
        row = s.client.get(r.collection, ids=["p00011"], output_fields=["doc", "title", "page_start", "page_end", "text"])
    assert row[0]["doc"] == row[0]["title"] == "徐晓飞" and row[0]["page_start"] == row[0]["page_end"] == 2
    assert row[0]["text"].startswith("徐晓飞（）是中国足球运动员")
    assert meta["state"] == "verified" and meta["query_instruction"] == "query: " and meta["pooling"] == "mean"
    assert r.golden["questions"].startswith("40 chunks asking for themselves")


def test_a_failed_golden_check_leaves_the_alias_and_the_next_run_resumes(tmp_path, cmrc80, e5_v1, e5_v2,
                                                                          monkeypatch):
    uri = f"milvus-lite://{tmp_path}/i.db"
    first = index(uri, e5_v1, *cmrc80)
    real = MilvusStore.search
    # a store whose search is broken: it returns the worst chunks first
    monkeypatch.setattr(MilvusStore, "search", lambda self, name, v, k: [hits[::-1][:k] for hits in
                                                                         real(self, name, v, 80)])
    with pytest.raises(KitError, match="golden check failed.*the alias still points to " + first.collection):
        index(uri, e5_v2, *cmrc80)
    monkeypatch.setattr(MilvusStore, "search", real)
    with open_store(uri) as s:
        assert s.aliases() == {"laws": first.collection}
        waiting = [c for c in s.collections() if c != first.collection]
        assert [s.info(c).meta["state"] for c in waiting] == ["filling"]
    again = index(uri, e5_v2, *cmrc80)
    assert again.collection == waiting[0] and again.fill["unchanged"] == 80 and again.fill["encoded"]["dense"] == 0
    assert again.switched and again.previous == first.collection


def test_an_alias_pointing_elsewhere_stops_the_run_before_any_work(tmp_path, cmrc80, e5_v1):
    uri = f"milvus-lite://{tmp_path}/i.db"
    with open_store(uri) as s:
        s.create("other", Schema(dim=384), {})
        s.point_alias("laws", "other")
    with pytest.raises(KitError, match="points to other, not to one of its laws__VERSION collections"):
        index(uri, e5_v1, cmrc80[0])
    with open_store(uri) as s:
        assert s.collections() == ["other"] and s.aliases() == {"laws": "other"}


def test_a_collection_with_the_alias_name_is_refused(tmp_path, cmrc80, e5_v1):
    uri = f"faiss://{tmp_path}/f"
    with open_store(uri) as s:
        s.create("laws", Schema(dim=384), {})
    with pytest.raises(KitError, match="a collection has that name"):
        index(uri, e5_v1, cmrc80[0])


def test_dimension_and_model_mismatch_with_an_existing_collection(tmp_path, cmrc80, e5_v1, e5_v2, tiny_bert):
    uri = f"milvus-lite://{tmp_path}/i.db"
    index(uri, e5_v1, cmrc80[0], version="prod")
    with pytest.raises(KitError, match="holds 384-dimensional vectors, and .* makes 64: a model change needs a new"):
        index(uri, tiny_bert, cmrc80[0], version="prod")
    with pytest.raises(KitError, match="filled by another model or embedding"):
        index(uri, e5_v2, cmrc80[0], version="prod")
    with open_store(uri) as s:
        assert s.collections() == ["laws__prod"] and s.count("laws__prod") == 80


def test_store_down_is_one_line_and_exit_2(cmrc80, e5_v1):
    port = free_port()
    r = CliRunner().invoke(main, ["index", "--model", str(e5_v1), "--corpus", str(cmrc80[0]),
                                  "--store", f"milvus://127.0.0.1:{port}", "--name", "laws"])
    assert r.exit_code == 2 and "Traceback" not in r.output
    assert r.output.startswith(f"error: milvus://127.0.0.1:{port}: connecting failed") and "is the store up" in r.output
    assert len(r.output.strip().splitlines()) == 1


def test_a_key_in_the_uri_is_refused_and_never_printed(cmrc80, e5_v1):
    r = CliRunner().invoke(main, ["index", "--model", str(e5_v1), "--corpus", str(cmrc80[0]),
                                  "--store", "qdrant://admin:S3cret-Pw-77@10.0.0.9:6333"])
    assert r.exit_code == 2 and "S3cret-Pw-77" not in r.output and "QDRANT_API_KEY" in r.output


def test_a_milvus_lite_folder_open_in_another_process_is_one_line(tmp_path, cmrc80, e5_v1):
    db = tmp_path / "i.db"
    holder = subprocess.Popen([sys.executable, "-c", f"from pymilvus import MilvusClient; import time; "
                               f"MilvusClient({str(db)!r}); print('open', flush=True); time.sleep(60)"],
                              stdout=subprocess.PIPE, text=True)
    try:
        assert holder.stdout.readline().strip() == "open"
        with pytest.raises(KitError, match="another process has it open.*milvus-lite server --data-dir"):
            index(f"milvus-lite://{db}", e5_v1, cmrc80[0])
    finally:
        holder.kill()
        holder.wait()


def test_rollback_prune_and_status_are_separate_actions(tmp_path):
    with pytest.raises(KitError, match="separate actions"):
        run(IndexFiles(rollback=True, prune=1), IndexOptions(store=f"faiss://{tmp_path}/f"))
    with pytest.raises(KitError, match="no alias laws: nothing to roll back"):
        run(IndexFiles(rollback=True), IndexOptions(store=f"faiss://{tmp_path}/f", name="laws"))
