"""Shard files: complete or redone, never a shorter corpus; one job per folder."""
from __future__ import annotations

import numpy as np
import pytest

from kit.encode.shards import ShardDir, ShardedVectors, texts_digest
from kit.io import KitError

HEADER = {"namespace": "local:abc", "model": "m", "kind": "passage", "total": 10, "shard_size": 4, "texts": "t"}


def _filled(root) -> tuple[ShardDir, np.ndarray]:
    d = ShardDir(root, HEADER)
    d.prepare()
    vecs = np.random.default_rng(0).standard_normal((10, 3)).astype(np.float32)
    for i in range(d.count):
        a, b = d.bounds(i)
        d.write(i, vecs[a:b], texts_digest(str(x) for x in range(a, b)))
    return d, vecs


def test_written_shards_read_back_whole_and_by_row(tmp_path):
    d, vecs = _filled(tmp_path / "s")
    assert d.count == 3 and d.bounds(2) == (8, 10) and d.missing(checksum=True) == []
    v = ShardedVectors(d)
    assert v.shape == (10, 3) and np.array_equal(v.to_array(), vecs)
    assert np.array_equal(v[9], vecs[9]) and np.array_equal(v[[1, 5]], vecs[[1, 5]])
    head = v.head(6)
    assert len(head) == 6 and np.array_equal(np.concatenate([b for _, b in head.iter_shards()]), vecs[:6])
    assert np.array_equal(np.load(d.ids_path(1)), np.arange(4, 8))
    for sl in (slice(3, 9), slice(0, 10), slice(5, 5), slice(8, 100), slice(None, None, 2)):   # across shards
        assert np.array_equal(v[sl], vecs[sl])
    assert np.array_equal(head[4:20], vecs[4:6])                  # a head stops at its own end


def test_a_shard_cut_short_or_changed_is_named_and_never_read(tmp_path):
    d, _ = _filled(tmp_path / "s")
    data = d.vec_path(1).read_bytes()
    d.vec_path(1).write_bytes(data[:-7])
    assert "cut short" in d.problem(1)
    with pytest.raises(KitError, match="shards are not done: 1 .*cut short"):
        ShardedVectors(d)
    d.vec_path(1).write_bytes(data[:-4] + b"\0\0\0\0")   # same size, other bytes
    assert d.problem(1, checksum=False) is None and d.problem(1) == "shard-00001.npy checksum mismatch"
    with pytest.raises(KitError, match="damaged"):
        d.load(1)
    assert d.problem(0, texts_sha="other") == "holds other texts"
    d.rec_path(2).unlink()
    assert d.problem(2) == "not finished (no record)"


def test_two_jobs_cannot_write_the_same_folder(tmp_path):
    a, b = ShardDir(tmp_path / "s", HEADER), ShardDir(tmp_path / "s", HEADER)
    a.lock()
    try:
        with pytest.raises(KitError, match="another job is writing these shards"):
            b.lock()
    finally:
        a.unlock()
    b.lock()          # free again once the first job is gone
    b.unlock()


def test_a_folder_of_other_texts_or_model_is_refused(tmp_path):
    _filled(tmp_path / "s")
    with pytest.raises(KitError, match="namespace differ"):
        ShardDir(tmp_path / "s", {**HEADER, "namespace": "local:other"}).prepare()
    ShardDir(tmp_path / "s", HEADER).prepare()          # the same job: accepted (resume)
