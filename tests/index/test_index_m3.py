"""bge-m3 folders: their sparse lexical weights go into the stores that hold sparse vectors (Milvus, Qdrant) and
their ColBERT vectors into the one that holds multi-vectors (Qdrant), exactly as FlagEmbedding's BGEM3FlagModel
computes them; a store or model that cannot take them is one line when they are asked for, a note when auto.
A tiny random bge-m3 (tests/helpers/training.py) on 30 real statute articles of stard_dev."""
from __future__ import annotations

import json

import numpy as np
import pytest

from kit.index import IndexFiles, IndexOptions, run
from kit.index.stores import open_store
from kit.io import KitError

from .conftest import CMRC

STARD = CMRC.parent.parent / "stard_dev" / "corpus.jsonl"


@pytest.fixture(scope="module")
def m3(tmp_path_factory):
    from helpers.training import build_m3

    return build_m3(tmp_path_factory.mktemp("m3") / "bge-m3-tiny")


@pytest.fixture(scope="module")
def statutes(tmp_path_factory):
    if not STARD.exists():
        pytest.skip("stard_dev not available")
    rows = [json.loads(x) for x in open(STARD, encoding="utf-8")][:30]
    path = tmp_path_factory.mktemp("stard") / "corpus.jsonl"
    path.write_text("".join(json.dumps({"id": r["_id"], "doc": r["title"], "title": r["title"], "text": r["text"]},
                                       ensure_ascii=False) + "\n" for r in rows), encoding="utf-8")
    return path, rows


def reference(m3, texts):
    from FlagEmbedding import BGEM3FlagModel

    model = BGEM3FlagModel(str(m3), use_fp16=False, devices="cpu")
    return model.encode(texts, batch_size=8, max_length=128, return_dense=False, return_sparse=True,
                        return_colbert_vecs=True)


def index(uri, m3, corpus, encode=None, **kw):
    # the random tiny model embeds every text almost alike (dense ties): the golden check's tolerance is opened
    return run(IndexFiles(model=str(m3), corpus=str(corpus)), IndexOptions(store=uri, name="laws", tolerance=0.9,
                                                                          batch_size=8, **kw), progress=False,
               encode=encode)


def stored_sparse(uri: str, collection: str, ids: list[str]) -> dict[str, dict[int, float]]:
    with open_store(uri) as s:
        s._load(collection)                 # Milvus Lite releases collections when its server restarts
        got = s.client.get(collection, ids=ids, output_fields=["sparse"])
    return {g["id"]: {int(k): float(v) for k, v in g["sparse"].items()} for g in got}


def assert_same_sparse(a: dict, b: dict) -> None:
    assert a.keys() == b.keys()
    for k in a:
        assert a[k].keys() == b[k].keys() and all(abs(a[k][t] - b[k][t]) < 1e-5 for t in a[k]), k


def test_milvus_holds_the_sparse_weights(tmp_path, m3, statutes):
    corpus, rows = statutes
    r = index(f"milvus-lite://{tmp_path}/i.db", m3, corpus)
    assert r.model["sparse"] and not r.model["colbert"]
    ref = reference(m3, [f"{x['title']} {x['text']}" for x in rows[:3]])["lexical_weights"]
    with open_store(f"milvus-lite://{tmp_path}/i.db") as s:
        info = s.info(r.collection)
        got = s.client.get(r.collection, ids=[x["_id"] for x in rows[:3]], output_fields=["sparse"])
        hits = s.search_sparse("laws", [{int(k): float(v) for k, v in ref[0].items()}], 3)
    assert info.sparse and all(g["sparse"] for g in got)
    by_id = {g["id"]: g["sparse"] for g in got}
    for x, lw in zip(rows[:3], ref):
        stored = {int(k): float(v) for k, v in by_id[x["_id"]].items()}
        assert stored.keys() == {int(k) for k in lw} and \
            all(abs(stored[int(k)] - float(v)) < 1e-5 for k, v in lw.items())
    assert rows[0]["_id"] in hits[0]


def test_qdrant_holds_sparse_and_colbert(tmp_path, m3, statutes):
    corpus, rows = statutes
    r = index(f"qdrant-local://{tmp_path}/q", m3, corpus, colbert="on")
    assert r.model["sparse"] and r.model["colbert"]
    ref = reference(m3, [f"{rows[0]['title']} {rows[0]['text']}"])
    with open_store(f"qdrant-local://{tmp_path}/q") as s:
        from kit.index.stores.qdrant import point_id

        p = s.client.retrieve(r.collection, [point_id(rows[0]["_id"])], with_vectors=True)[0]
    np.testing.assert_allclose(np.asarray(p.vector["colbert"]), ref["colbert_vecs"][0], atol=1e-5)
    assert dict(zip(p.vector["sparse"].indices, p.vector["sparse"].values)) == \
        pytest.approx({int(k): float(v) for k, v in ref["lexical_weights"][0].items()}, abs=1e-5)


def test_what_a_store_or_model_cannot_hold(tmp_path, m3, statutes, e5_v1):
    corpus, _ = statutes
    with pytest.raises(KitError, match="a faiss store holds no sparse vectors"):
        index(f"faiss://{tmp_path}/f", m3, corpus, sparse="on")
    with pytest.raises(KitError, match="a milvus store holds no colbert vectors"):
        index(f"milvus-lite://{tmp_path}/i.db", m3, corpus, colbert="on")
    with pytest.raises(KitError, match="has no bge-m3 heads"):
        index(f"faiss://{tmp_path}/f", e5_v1, corpus, sparse="on")
    r = index(f"faiss://{tmp_path}/f", m3, corpus)
    assert "sparse vectors left out: a faiss store holds none" in r.notes and not r.model["sparse"]


def _sparse_through_layer(tmp_path, m3, statutes, name, **engine):
    from kit.encode import EncodeOptions

    corpus, rows = statutes
    ids = [x["_id"] for x in rows]
    plain = index(f"milvus-lite://{tmp_path}/plain.db", m3, corpus, cache_path=str(tmp_path / "a.sqlite"))
    uri = f"milvus-lite://{tmp_path}/{name}.db"
    r = index(uri, m3, corpus, encode=EncodeOptions(shard_size=7, **engine), cache_path=str(tmp_path / "b.sqlite"))
    layer = r.fill["layer"]["sparse"]
    assert layer["shards"] == 5 and layer["encoded"] == 30 and r.fill["encoded"]["sparse"] == 31   # + prepare()'s probe
    assert_same_sparse(stored_sparse(uri, r.collection, ids),
                       stored_sparse(f"milvus-lite://{tmp_path}/plain.db", plain.collection, ids))
    return r


def test_the_sparse_head_goes_through_the_encoding_layer(tmp_path, m3, statutes):
    """bge-m3's sparse weights are encoded in shards by the layer (fixed-width rows, kit/encode/heads.py) and
    stored exactly as the in-process path stores them."""
    r = _sparse_through_layer(tmp_path, m3, statutes, "layer")
    assert r.fill["layer"]["sparse"]["engine"] == "local"


@pytest.mark.slow
def test_the_sparse_head_on_two_torchrun_ranks(tmp_path, m3, statutes):
    r = _sparse_through_layer(tmp_path, m3, statutes, "ranks", engine="torchrun", workers=2)
    assert r.fill["layer"]["sparse"]["workers"] == 2


@pytest.mark.slow
def test_the_sparse_head_on_a_local_ray_cluster(tmp_path, m3, statutes):
    pytest.importorskip("ray", reason="ray not installed (pip install 'kit[ray]')")
    r = _sparse_through_layer(tmp_path, m3, statutes, "ray", engine="ray", workers=2, ray_address="local")
    assert r.fill["layer"]["sparse"]["engine"] == "ray"
