"""On-disk cache of reranker scores: one float per (reranker namespace, query, passage).

SQLite for the same reasons as the embedding cache (:mod:`kit.embed`): standard library, one transaction per
finished request or batch (a killed run keeps every score it paid for), readable by two stages at once. The key
is a hash of the query and the passage together, because a cross-encoder's score belongs to the pair.
"""
from __future__ import annotations

import hashlib
import os
import sqlite3
import threading
from pathlib import Path
from typing import Iterable, Sequence

from ...io import cache_dir

Pair = tuple[str, str]


def default_rerank_cache_path() -> Path:
    return cache_dir() / "rerank.sqlite"


def pair_key(query: str, passage: str) -> str:
    # \x1f (unit separator) never occurs in text, so ("ab", "c") and ("a", "bc") cannot collide.
    return hashlib.sha256(f"{query}\x1f{passage}".encode("utf-8")).hexdigest()[:32]


class RerankCache:
    """Scores keyed by (namespace, hash(query, passage)). Thread-safe; each ``put_many`` is one transaction."""

    def __init__(self, path: str | os.PathLike | None = None):
        self.path = Path(path) if path else default_rerank_cache_path()
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._lock = threading.Lock()
        self._conn = sqlite3.connect(str(self.path), check_same_thread=False, timeout=60)
        self._conn.execute("PRAGMA journal_mode=WAL")
        self._conn.execute("PRAGMA synchronous=NORMAL")
        self._conn.execute("CREATE TABLE IF NOT EXISTS scores (ns TEXT NOT NULL, key TEXT NOT NULL, "
                           "score REAL NOT NULL, PRIMARY KEY (ns, key)) WITHOUT ROWID")
        self._conn.commit()

    def get_many(self, ns: str, pairs: Iterable[Pair]) -> dict[Pair, float]:
        keys = {pair_key(q, p): (q, p) for q, p in pairs}
        items, out = list(keys), {}
        with self._lock:
            for i in range(0, len(items), 500):
                part = items[i:i + 500]
                q = f"SELECT key, score FROM scores WHERE ns=? AND key IN ({','.join('?' * len(part))})"
                for k, s in self._conn.execute(q, [ns, *part]):
                    out[keys[k]] = float(s)
        return out

    def put_many(self, ns: str, pairs: Sequence[Pair], scores: Sequence[float]) -> None:
        rows = [(ns, pair_key(q, p), float(s)) for (q, p), s in zip(pairs, scores)]
        with self._lock:
            self._conn.executemany("INSERT OR REPLACE INTO scores (ns, key, score) VALUES (?,?,?)", rows)
            self._conn.commit()   # at once: a run killed after this line keeps these scores

    def count(self, ns: str | None = None) -> int:
        with self._lock:
            if ns is None:
                return self._conn.execute("SELECT COUNT(*) FROM scores").fetchone()[0]
            return self._conn.execute("SELECT COUNT(*) FROM scores WHERE ns=?", (ns,)).fetchone()[0]

    def close(self) -> None:
        with self._lock:
            self._conn.close()
