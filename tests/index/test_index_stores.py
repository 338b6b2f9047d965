"""The store interface, the same contract for each store through its official client: Milvus Lite (pymilvus +
milvus-lite), Qdrant's local mode (qdrant-client) and a faiss folder. Real vectors: cmrc2018 paragraphs embedded
with the starter encoder."""
from __future__ import annotations

import numpy as np
import pytest

from kit.embed import LocalEncoder
from kit.index.fill import store_rows
from kit.index.rows import read_rows
from kit.index.stores import Schema, open_store

STORES = ["milvus-lite:///{d}/m.db", "qdrant-local:///{d}/q", "faiss:///{d}/f"]


@pytest.fixture(scope="module")
def vectors(cmrc80, e5_v1):
    rows, _ = read_rows(cmrc80[0])
    enc = LocalEncoder(str(e5_v1), progress=False)
    return rows[:60], enc.encode_passages([r.text for r in rows[:60]])


@pytest.fixture(params=STORES, ids=["milvus-lite", "qdrant-local", "faiss"])
def store(request, tmp_path):
    s = open_store(request.param.format(d=tmp_path))
    yield s
    s.close()


def exact(q: np.ndarray, vecs: np.ndarray, ids: list[str], k: int) -> list[list[str]]:
    return [[ids[j] for j in np.argsort(-row, kind="stable")[:k]] for row in q @ vecs.T]


def test_contract(store, vectors):
    rows, vecs = vectors
    store.create("laws__v1", Schema(dim=vecs.shape[1]), {"kit_index": 1, "state": "filling"})
    info = store.info("laws__v1")
    assert info.dim == vecs.shape[1] and info.meta == {"kit_index": 1, "state": "filling"}
    store.upsert("laws__v1", store_rows(rows[:40], {"dense": vecs[:40], "sparse": None, "colbert": None}))
    store.upsert("laws__v1", store_rows(rows[30:], {"dense": vecs[30:], "sparse": None, "colbert": None}))
    assert store.count("laws__v1") == 60                   # upserts by chunk id: rows 30..39 written twice, once
    assert store.hashes("laws__v1") == {r.id: r.hash for r in rows}
    store.delete("laws__v1", [rows[0].id, rows[1].id])
    assert store.count("laws__v1") == 58 and rows[0].id not in store.hashes("laws__v1")
    ids = [r.id for r in rows[2:]]
    got = store.search("laws__v1", vecs[2:7], 5)
    assert got == exact(vecs[2:7], vecs[2:], ids, 5)      # exact inner-product search, best first
    store.set_meta("laws__v1", {"kit_index": 1, "state": "verified"})
    assert store.info("laws__v1").meta["state"] == "verified"


def test_alias_moves_between_collections(store, vectors):
    rows, vecs = vectors
    for name, part in (("laws__a", slice(0, 30)), ("laws__b", slice(30, 60))):
        store.create(name, Schema(dim=vecs.shape[1]), {"kit_index": 1})
        store.upsert(name, store_rows(rows[part], {"dense": vecs[part], "sparse": None, "colbert": None}))
    assert store.aliases() == {}
    store.point_alias("laws", "laws__a")
    assert store.aliases() == {"laws": "laws__a"} and store.search("laws", vecs[:1], 1) == [[rows[0].id]]
    store.point_alias("laws", "laws__b")
    assert store.aliases() == {"laws": "laws__b"} and store.search("laws", vecs[:1], 1)[0][0] != rows[0].id
    assert store.count("laws") == 30
    store.drop("laws__a")
    assert "laws__a" not in store.collections() and store.info("laws__a") is None
