"""One base for the kit's on-disk caches (embeddings, LLM answers, reranker scores): a SQLite file in WAL mode,
one connection shared by threads behind a lock, every write committed at once so a killed run keeps what it paid
for. SQLite rather than a key-value library: it ships with Python, is safe across processes, and a user can open
the file to see what is cached."""
from __future__ import annotations

import os
import sqlite3
import threading
from pathlib import Path
from typing import Iterable, Iterator, Sequence

IN_BATCH = 500   # keys per SELECT ... IN (...): under SQLite's variable limit on every build


class SQLiteCache:
    """``schema``: the CREATE TABLE statements of the cache; they run once when the file is opened."""

    def __init__(self, path: str | os.PathLike, schema: Sequence[str], timeout: float = 60):
        self.path = Path(path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._lock = threading.Lock()
        self._conn = sqlite3.connect(str(self.path), check_same_thread=False, timeout=timeout)
        self._conn.execute("PRAGMA journal_mode=WAL")
        self._conn.execute("PRAGMA synchronous=NORMAL")
        for statement in schema:
            self._conn.execute(statement)
        self._conn.commit()

    def write(self, sql: str, rows: Iterable[Sequence]) -> None:
        """Many rows in one transaction, committed at once: a run killed after this call keeps them."""
        with self._lock:
            self._conn.executemany(sql, list(rows))
            self._conn.commit()

    def one(self, sql: str, args: Sequence = ()):
        with self._lock:
            return self._conn.execute(sql, list(args)).fetchone()

    def select_in(self, sql: str, fixed: Sequence, keys: Sequence[str]) -> Iterator[tuple]:
        """Rows of ``sql`` (ending in ``IN ({})``) for ``keys``, asked ``IN_BATCH`` keys at a time after the
        ``fixed`` arguments."""
        keys = list(keys)
        for i in range(0, len(keys), IN_BATCH):
            part = keys[i:i + IN_BATCH]
            with self._lock:
                rows = self._conn.execute(sql.format(",".join("?" * len(part))), [*fixed, *part]).fetchall()
            yield from rows

    def close(self) -> None:
        with self._lock:
            self._conn.close()
