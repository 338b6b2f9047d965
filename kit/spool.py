"""Texts and records kept on disk instead of in memory, read back by number: how mining, bench and index hold a corpus
whose text must not grow the process (issue 25: memory bounded by the embeddings plus a constant).

Hand-written because nothing in the kit's dependencies is this: ``shelve``/``dbm`` key by string and cost a hash
table per item, SQLite adds a page cache and a query per look-up, and an mmap'd Arrow/Parquet file needs the
whole column written before it can be read. A spool is an anonymous temp file (gone when the process ends, even
killed) plus an int64 offset per item (8 bytes); reads use ``os.pread``, so threads may read it at once.
"""
from __future__ import annotations

import hashlib
import json
import os
import tempfile
from array import array
from collections.abc import Sequence


class Spool(Sequence):
    """Texts appended to a temp file and read back by number: ``spool[i]`` (or a slice: a list), ``len``,
    iteration in order. ``digest()`` is the sha256 of the texts joined by ``sep`` as they were appended (what
    ``text_hash(sep.join(texts))`` gives, without the joined string)."""

    def __init__(self, texts=(), prefix: str = "kit-spool-", sep: str = "\x1e"):
        self._f = tempfile.TemporaryFile(prefix=prefix)
        self._fd = self._f.fileno()
        self._offsets = array("q", [0])
        self._sep = sep.encode("utf-8")
        self._sha = hashlib.sha256()
        for t in texts:
            self.append(t)

    def append(self, text: str) -> int:
        data = text.encode("utf-8")
        end = self._offsets[-1]
        os.pwrite(self._fd, data, end)
        if len(self._offsets) > 1:
            self._sha.update(self._sep)
        self._sha.update(data)
        self._offsets.append(end + len(data))
        return len(self._offsets) - 2

    def __len__(self) -> int:
        return len(self._offsets) - 1

    def _read(self, i: int) -> str:
        a, b = self._offsets[i], self._offsets[i + 1]
        return os.pread(self._fd, b - a, a).decode("utf-8") if b > a else ""

    def __getitem__(self, i):
        if isinstance(i, slice):
            return [self._read(j) for j in range(*i.indices(len(self)))]
        i = int(i)
        if i < 0:
            i += len(self)
        if not 0 <= i < len(self):
            raise IndexError(i)
        return self._read(i)

    def __iter__(self):
        for i in range(len(self)):
            yield self._read(i)

    def __eq__(self, other):
        """Equal to any list, tuple or spool of the same texts in the same order (as a list of them would be)."""
        if isinstance(other, Spool):
            return self._offsets == other._offsets and self.digest(64) == other.digest(64)
        if isinstance(other, (list, tuple)):
            return len(self) == len(other) and all(a == b for a, b in zip(self, other))
        return NotImplemented

    __hash__ = None

    def digest(self, n: int = 32) -> str:
        return self._sha.copy().hexdigest()[:n]

    def disk_bytes(self) -> int:
        return int(self._offsets[-1])

    def close(self) -> None:
        self._f.close()

    def __getstate__(self):
        raise TypeError("a Spool is a temp file of this process; pass its texts (list(spool)) to another process")


class RecordSpool(Sequence):
    """Records of one dataclass type spooled as JSON (``to_json`` / ``from_json`` convert): ``spool[i]`` is the
    record rebuilt, so only the numbers stay in memory."""

    def __init__(self, to_json, from_json, prefix: str = "kit-records-"):
        self._texts = Spool(prefix=prefix)
        self._to, self._from = to_json, from_json

    def append(self, record) -> int:
        return self._texts.append(json.dumps(self._to(record), ensure_ascii=False))

    def __len__(self) -> int:
        return len(self._texts)

    def __getitem__(self, i):
        if isinstance(i, slice):
            return [self._from(json.loads(t)) for t in self._texts[i]]
        return self._from(json.loads(self._texts[i]))

    def __iter__(self):
        for t in self._texts:
            yield self._from(json.loads(t))

    def close(self) -> None:
        self._texts.close()
