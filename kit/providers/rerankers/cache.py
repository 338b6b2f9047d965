"""On-disk cache of reranker scores: one float per (reranker namespace, query, passage).

SQLite for the same reasons as the embedding cache (:mod:`kit.embed`): standard library, one transaction per
finished request or batch (a killed run keeps every score it paid for), readable by two stages at once. The key
is a hash of the query and the passage together, because a cross-encoder's score belongs to the pair.
"""
from __future__ import annotations

import hashlib
import os
from pathlib import Path
from typing import Iterable, Sequence

from ...cache import SQLiteCache
from ...io import cache_dir

Pair = tuple[str, str]


def default_rerank_cache_path() -> Path:
    return cache_dir() / "rerank.sqlite"


def pair_key(query: str, passage: str) -> str:
    # \x1f (unit separator) never occurs in text, so ("ab", "c") and ("a", "bc") cannot collide.
    return hashlib.sha256(f"{query}\x1f{passage}".encode("utf-8")).hexdigest()[:32]


class RerankCache(SQLiteCache):
    """Scores keyed by (namespace, hash(query, passage)). Thread-safe; each ``put_many`` is one transaction."""

    def __init__(self, path: str | os.PathLike | None = None):
        super().__init__(path or default_rerank_cache_path(), [
            "CREATE TABLE IF NOT EXISTS scores (ns TEXT NOT NULL, key TEXT NOT NULL, "
            "score REAL NOT NULL, PRIMARY KEY (ns, key)) WITHOUT ROWID"])

    def get_many(self, ns: str, pairs: Iterable[Pair]) -> dict[Pair, float]:
        keys = {pair_key(q, p): (q, p) for q, p in pairs}
        return {keys[k]: float(s) for k, s in
                self.select_in("SELECT key, score FROM scores WHERE ns=? AND key IN ({})", [ns], list(keys))}

    def put_many(self, ns: str, pairs: Sequence[Pair], scores: Sequence[float]) -> None:
        self.write("INSERT OR REPLACE INTO scores (ns, key, score) VALUES (?,?,?)",
                   [(ns, pair_key(q, p), float(s)) for (q, p), s in zip(pairs, scores)])

    def count(self, ns: str | None = None) -> int:
        if ns is None:
            return self.one("SELECT COUNT(*) FROM scores")[0]
        return self.one("SELECT COUNT(*) FROM scores WHERE ns=?", (ns,))[0]
