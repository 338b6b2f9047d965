"""`kit index` through the encoding layer (issue 25): with an `encode:` section or --engine/--workers/--shard-size,
the chunks' vectors come from shard files written by the layer's engines (this process, torchrun ranks, Ray actors)
and the store ends up holding the vectors the in-process path writes (max abs difference <= 1e-5 at fp32), the
golden check reads the shard files, and the kit's own shard folder is removed afterwards."""
from __future__ import annotations

import json

import faiss
import numpy as np
import pytest
import yaml

from kit.index import IndexFiles, IndexOptions, run

from .conftest import run_kit


def exported(folder) -> dict[str, np.ndarray]:
    """{chunk id: vector} of a faiss store's live collection, read back from the files a service loads."""
    alias = json.loads((folder / "aliases.json").read_text())["laws"]
    index = faiss.read_index(str(folder / alias / "index.faiss"))
    ids = json.loads((folder / alias / "ids.json").read_text())
    return {cid: index.reconstruct(i) for i, cid in enumerate(ids)}


def same_vectors(a: dict, b: dict) -> None:
    assert a.keys() == b.keys() and len(a) == 80
    assert max(float(np.abs(a[k] - b[k]).max()) for k in a) <= 1e-5


def _index(cmrc80, e5_v1, store, cache, encode=None):
    corpus, ev = cmrc80
    return run(IndexFiles(model=str(e5_v1), corpus=str(corpus), eval=str(ev)),
               IndexOptions(store=f"faiss://{store}", name="laws", batch_size=16, golden_queries=40, precision="fp32",
                            cache_path=str(cache)), progress=False, encode=encode)


def test_index_through_the_layer_stores_what_in_process_stores(tmp_path, cmrc80, e5_v1, monkeypatch):
    from kit.encode import EncodeOptions

    monkeypatch.setenv("KIT_CACHE_DIR", str(tmp_path / "kitcache"))
    ref = _index(cmrc80, e5_v1, tmp_path / "ref", tmp_path / "ref.sqlite")
    got = _index(cmrc80, e5_v1, tmp_path / "layer", tmp_path / "layer.sqlite", EncodeOptions(shard_size=30))
    assert "layer" not in ref.fill
    assert got.fill["layer"]["engine"] == "local" and got.fill["layer"]["shards"] == 3      # 80 chunks, 30 a shard
    assert got.fill["encoded"]["dense"] == 80 and got.fill["added"] == 80 and got.switched
    assert got.golden["ok"] and got.golden == ref.golden          # the exact search over the shard files agrees
    same_vectors(exported(tmp_path / "ref"), exported(tmp_path / "layer"))
    assert not any((tmp_path / "kitcache" / "shards").glob("passage-*"))     # the kit's own shard folder is gone
    again = _index(cmrc80, e5_v1, tmp_path / "layer", tmp_path / "layer.sqlite", EncodeOptions(shard_size=30))
    assert again.fill["unchanged"] == 80 and again.fill["layer"]["cached"] == 80 and not again.fill["layer"]["encoded"]


@pytest.mark.slow
def test_kit_index_with_two_torchrun_ranks_from_a_config_stores_what_in_process_stores(tmp_path, cmrc80, e5_v1):
    corpus, ev = cmrc80
    ref = _index(cmrc80, e5_v1, tmp_path / "ref", tmp_path / "ref.sqlite")
    cfg = {"workdir": "work", "model": str(e5_v1), "prep": {"inputs": ["docs"]},
           "index": {"store": f"faiss://{tmp_path / 'tr'}", "name": "laws", "precision": "fp32", "golden_queries": 40},
           "encode": {"engine": "torchrun", "workers": 2, "shard_size": 30, "shard_dir": str(tmp_path / "shards")}}
    (tmp_path / "kit.yaml").write_text(yaml.safe_dump(cfg), encoding="utf-8")
    r = run_kit(["index", tmp_path / "kit.yaml", "--corpus", corpus, "--eval", ev, "--model", e5_v1,
                 "--no-progress"], tmp_path / "cache", timeout=900)
    assert r.returncode == 0, r.stderr[-3000:]
    record = json.loads((tmp_path / "work" / "index" / "index.json").read_text())
    assert record["fill"]["layer"]["engine"] == "torchrun" and record["fill"]["layer"]["shards"] == 3
    assert record["golden"] == ref.golden
    same_vectors(exported(tmp_path / "ref"), exported(tmp_path / "tr"))
    assert list((tmp_path / "shards").glob("passage-*/shard-00002.json"))     # the folder the config gave is kept


def test_a_ray_cluster_that_is_not_there_is_one_line_and_the_alias_stays(tmp_path, cmrc80, e5_v1):
    corpus, ev = cmrc80
    r = run_kit(["index", "--model", e5_v1, "--corpus", corpus, "--store", f"faiss://{tmp_path / 'st'}",
                 "--name", "laws", "--engine", "ray", "--ray-address", "127.0.0.1:1", "--no-progress"],
                tmp_path / "cache")
    assert r.returncode != 0
    assert "ray" in r.stderr.lower() and "Traceback" not in r.stderr
    assert not (tmp_path / "st" / "aliases.json").exists() or \
        json.loads((tmp_path / "st" / "aliases.json").read_text()) == {}
