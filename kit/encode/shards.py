"""Shard files: where encoded vectors go, a fixed number of texts per file, each file complete or absent.

Layout of a shard folder::

    manifest.json          format, namespace (the model's weight fingerprint + how it embeds), model, kind
                           (passage/query), total texts, shard_size, fingerprint of all the texts
    .lock                  flock held by the job writing here (a second job gets one clear line)
    shard-00003.npy        float32 vectors of texts [3*shard_size, ...) in input order (np.save: memory-mappable)
    shard-00003.ids.npy    int64 ids of those texts (their positions in the input)
    shard-00003.json       the commit record, written last: rows, start, dim, namespace, sha256 and size of both
                           files, sha256 of the shard's texts

A shard counts as done only when its record exists and both files have the recorded size and checksum. Files are
written to a temp name, fsynced and renamed, the record last: a job killed at any point leaves either a whole
shard or one that the next run redoes (files cut short, a record without its vectors, vectors for other texts:
each is named on one line and re-encoded). Reading never returns a shorter corpus: a missing or damaged shard is
an error there, not a gap.
"""
from __future__ import annotations

import contextlib
import fcntl
import hashlib
import io
import json
import os
import socket
import sys
import time
from pathlib import Path
from typing import Iterable, Iterator, Sequence

import numpy as np

from ..io import KitError, atomic_open

FORMAT = 1
_HEADER_KEYS = ("format", "namespace", "kind", "total", "shard_size", "texts")


def texts_digest(texts: Iterable[str]) -> str:
    """sha256 of texts in order (NUL-separated): says which texts a shard holds, or a whole input."""
    h = hashlib.sha256()
    for t in texts:
        h.update(t.encode("utf-8"))
        h.update(b"\0")
    return h.hexdigest()[:32]


def n_shards(total: int, shard_size: int) -> int:
    return max(0, -(-int(total) // int(shard_size)))


def _sha256_file(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 22), b""):
            h.update(block)
    return h.hexdigest()


def _atomic_bytes(path: Path, data: bytes) -> None:
    with atomic_open(path, "wb") as f:
        f.write(data)


def _npy_bytes(arr: np.ndarray) -> bytes:
    buf = io.BytesIO()
    np.save(buf, arr, allow_pickle=False)
    return buf.getvalue()


class ShardDir:
    """One folder of shard files for one (model, kind, list of texts)."""

    def __init__(self, root, header: dict):
        self.root = Path(root)
        self.header = {"format": FORMAT, **header}
        self.total = int(header["total"])
        self.shard_size = int(header["shard_size"])
        self.count = n_shards(self.total, self.shard_size)
        self._lock_fd: int | None = None

    # ------------------------------------------------------------------------------------------ paths
    def vec_path(self, i: int) -> Path:
        return self.root / f"shard-{i:05d}.npy"

    def ids_path(self, i: int) -> Path:
        return self.root / f"shard-{i:05d}.ids.npy"

    def rec_path(self, i: int) -> Path:
        return self.root / f"shard-{i:05d}.json"

    @property
    def manifest_path(self) -> Path:
        return self.root / "manifest.json"

    def bounds(self, i: int) -> tuple[int, int]:
        return i * self.shard_size, min(self.total, (i + 1) * self.shard_size)

    # ------------------------------------------------------------------------------------------ lock
    def lock(self) -> None:
        """Exclusive for this job: a second job writing the same folder stops with one line naming the holder.
        flock is released by the kernel when the holder dies, so a killed job never blocks the next."""
        self.root.mkdir(parents=True, exist_ok=True)
        path = self.root / ".lock"
        fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o644)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            os.close(fd)
            try:
                info = json.loads(path.read_text(encoding="utf-8") or "{}")
            except (OSError, ValueError):
                info = {}
            raise KitError(f"{self.root}: another job is writing these shards (pid {info.get('pid')} on "
                           f"{info.get('host')}, {info.get('command', '')[:120]}); wait for it, stop it, or give "
                           f"another shard_dir") from None
        os.ftruncate(fd, 0)
        os.pwrite(fd, json.dumps({"pid": os.getpid(), "host": socket.gethostname(), "started": time.time(),
                                  "command": " ".join(sys.argv)[:300]}).encode("utf-8"), 0)
        self._lock_fd = fd

    def unlock(self) -> None:
        if self._lock_fd is not None:
            with contextlib.suppress(OSError):
                os.ftruncate(self._lock_fd, 0)
                fcntl.flock(self._lock_fd, fcntl.LOCK_UN)
            os.close(self._lock_fd)
            self._lock_fd = None

    # ------------------------------------------------------------------------------------------ manifest
    def prepare(self) -> None:
        """Create the folder and its manifest, or check that an existing one is for the same model and texts."""
        self.root.mkdir(parents=True, exist_ok=True)
        if self.manifest_path.exists():
            try:
                old = json.loads(self.manifest_path.read_text(encoding="utf-8"))
            except (OSError, ValueError):
                old = None
            if isinstance(old, dict):
                diff = [k for k in _HEADER_KEYS if old.get(k) != self.header.get(k)]
                if diff:
                    raise KitError(f"{self.root}: holds shards of other texts or another model ({', '.join(diff)} "
                                   f"differ: {old.get(diff[0])!r} here, {self.header.get(diff[0])!r} now); remove "
                                   f"the folder or give another shard_dir")
                return
        _atomic_bytes(self.manifest_path, json.dumps(self.header, indent=1).encode("utf-8"))

    def read_manifest(self) -> dict:
        try:
            return json.loads(self.manifest_path.read_text(encoding="utf-8"))
        except (OSError, ValueError):
            raise KitError(f"{self.root}: no readable manifest.json (not a shard folder)") from None

    # ------------------------------------------------------------------------------------------ shards
    def record(self, i: int) -> dict | None:
        try:
            return json.loads(self.rec_path(i).read_text(encoding="utf-8"))
        except (OSError, ValueError):
            return None

    def problem(self, i: int, texts_sha: str | None = None, checksum: bool = True) -> str | None:
        """None when shard ``i`` is complete (for these texts, when ``texts_sha`` is given), else why not."""
        rec = self.record(i)
        start, end = self.bounds(i)
        if rec is None:
            return "missing" if not self.vec_path(i).exists() else "not finished (no record)"
        if rec.get("namespace") != self.header["namespace"] or rec.get("start") != start or rec.get("rows") != end - start:
            return "written for another model or layout"
        if texts_sha is not None and rec.get("texts_sha") != texts_sha:
            return "holds other texts"
        for path, key in ((self.vec_path(i), "vec"), (self.ids_path(i), "ids")):
            try:
                size = path.stat().st_size
            except FileNotFoundError:
                return f"{path.name} missing"
            if size != rec[f"{key}_bytes"]:
                return f"{path.name} cut short ({size} of {rec[f'{key}_bytes']} bytes)" if size < rec[f"{key}_bytes"] \
                    else f"{path.name} has {size} bytes, {rec[f'{key}_bytes']} recorded"
            if checksum and _sha256_file(path) != rec[f"{key}_sha256"]:
                return f"{path.name} checksum mismatch"
        return None

    def write(self, i: int, vectors: np.ndarray, texts_sha: str, ids: Sequence[int] | None = None,
              info: dict | None = None) -> None:
        start, end = self.bounds(i)
        vectors = np.ascontiguousarray(vectors, dtype=np.float32)
        if vectors.ndim != 2 or vectors.shape[0] != end - start:
            raise KitError(f"{self.root}: shard {i} got {vectors.shape[0]} vectors for {end - start} texts")
        ids_arr = np.arange(start, end, dtype=np.int64) if ids is None else np.asarray(ids, dtype=np.int64)
        vec_bytes, ids_bytes = _npy_bytes(vectors), _npy_bytes(ids_arr)
        with contextlib.suppress(FileNotFoundError):   # an old record must never vouch for new files
            os.unlink(self.rec_path(i))
        _atomic_bytes(self.vec_path(i), vec_bytes)
        _atomic_bytes(self.ids_path(i), ids_bytes)
        rec = {"shard": i, "start": start, "rows": end - start, "dim": int(vectors.shape[1]),
               "namespace": self.header["namespace"], "texts_sha": texts_sha,
               "vec_bytes": len(vec_bytes), "vec_sha256": hashlib.sha256(vec_bytes).hexdigest(),
               "ids_bytes": len(ids_bytes), "ids_sha256": hashlib.sha256(ids_bytes).hexdigest(),
               **(info or {})}
        _atomic_bytes(self.rec_path(i), json.dumps(rec).encode("utf-8"))

    def load(self, i: int) -> np.ndarray:
        """Shard ``i``'s vectors, read whole and checked against its record (size and sha256)."""
        rec = self.record(i)
        if rec is None:
            raise KitError(f"{self.root}: shard {i} of {self.count} is missing; the encoding did not finish "
                           f"(run the command again: only missing shards are encoded)")
        try:
            data = self.vec_path(i).read_bytes()
        except FileNotFoundError:
            raise KitError(f"{self.vec_path(i)}: missing (its record exists); run again to re-encode it") from None
        if len(data) != rec["vec_bytes"] or hashlib.sha256(data).hexdigest() != rec["vec_sha256"]:
            raise KitError(f"{self.vec_path(i)}: damaged ({len(data)} of {rec['vec_bytes']} bytes or checksum "
                           f"mismatch); run again to re-encode it")
        arr = np.load(io.BytesIO(data), allow_pickle=False)
        if arr.shape[0] != rec["rows"]:
            raise KitError(f"{self.vec_path(i)}: {arr.shape[0]} vectors, {rec['rows']} recorded")
        return arr

    def missing(self, checksum: bool = False) -> list[tuple[int, str]]:
        return [(i, why) for i in range(self.count) if (why := self.problem(i, checksum=checksum))]

    def complete(self) -> None:
        """Raise one line naming what is missing unless every shard is there (size-checked)."""
        bad = self.missing()
        if bad:
            shown = ", ".join(f"{i} ({why})" for i, why in bad[:5]) + (" ..." if len(bad) > 5 else "")
            raise KitError(f"{self.root}: {len(bad)} of {self.count} shards are not done: {shown}; run the command "
                           f"again (only those are encoded)")


class ShardedVectors:
    """The vectors of a complete shard folder, one shard in memory at a time: ``iter_shards`` for building an
    index, ``v[i]`` for single rows (memory-mapped), ``to_array`` when the whole matrix is wanted."""

    def __init__(self, shards: ShardDir, limit: int | None = None, _check: bool = True):
        self.shards = shards
        if _check:
            shards.complete()
        self.dim = int(shards.record(0)["dim"]) if shards.count else 0
        self.limit = shards.total if limit is None else min(int(limit), shards.total)
        self._mmaps: dict[int, np.ndarray] = {}

    def head(self, n: int) -> "ShardedVectors":
        """The first ``n`` vectors (e.g. the corpus, when other texts were encoded after it in the same job)."""
        view = ShardedVectors(self.shards, n, _check=False)
        view._mmaps = self._mmaps
        return view

    def __len__(self) -> int:
        return self.limit

    @property
    def shape(self) -> tuple[int, int]:
        return (self.limit, self.dim)

    def iter_shards(self) -> Iterator[tuple[int, np.ndarray]]:
        for i in range(self.shards.count):
            start = self.shards.bounds(i)[0]
            if start >= self.limit:
                return
            block = self.shards.load(i)
            yield start, block[:self.limit - start] if start + len(block) > self.limit else block

    def _mmap(self, i: int) -> np.ndarray:
        m = self._mmaps.get(i)
        if m is None:
            rec = self.shards.record(i)
            if rec is None or self.shards.vec_path(i).stat().st_size != rec["vec_bytes"]:
                raise KitError(f"{self.shards.vec_path(i)}: missing or cut short since it was written; run again")
            m = self._mmaps[i] = np.load(self.shards.vec_path(i), mmap_mode="r")
        return m

    def __getitem__(self, j) -> np.ndarray:
        if isinstance(j, (int, np.integer)):
            j = int(j)
            if j < 0:
                j += len(self)
            if not 0 <= j < len(self):
                raise IndexError(j)
            i, r = divmod(j, self.shards.shard_size)
            return np.array(self._mmap(i)[r])
        if isinstance(j, slice) and j.step in (None, 1):
            return self._rows(*j.indices(len(self))[:2])
        idx = np.arange(len(self))[j] if isinstance(j, slice) else np.asarray(j)
        return np.stack([self[int(x)] for x in idx]) if len(idx) else np.zeros((0, self.dim), np.float32)

    def _rows(self, start: int, stop: int) -> np.ndarray:
        """Rows start..stop-1 as one array, read from the memory-mapped shards they span (a block of queries for a
        search, without the whole matrix in memory)."""
        if stop <= start:
            return np.zeros((0, self.dim), np.float32)
        size = self.shards.shard_size
        parts = []
        for i in range(start // size, (stop - 1) // size + 1):
            lo = max(start, i * size) - i * size
            hi = min(stop, (i + 1) * size) - i * size
            parts.append(self._mmap(i)[lo:hi])
        return np.ascontiguousarray(np.concatenate(parts), dtype=np.float32)

    def to_array(self) -> np.ndarray:
        out = np.empty((len(self), self.dim), dtype=np.float32)
        for start, arr in self.iter_shards():
            out[start:start + len(arr)] = arr
        return out

    def close(self) -> None:
        self._mmaps.clear()
