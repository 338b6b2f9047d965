"""On-disk cache of successful LLM answers, so a killed or repeated run never pays for a call twice.

SQLite (stdlib) because it commits each answer atomically the moment it arrives and survives a
SIGKILL in WAL mode; one row per (endpoint, model, prompt version, questions per chunk, chunk hash).
Only the answer, its token usage and the endpoint *without credentials* (:func:`kit.secrets.redact_url`) are
stored: never the request headers, so never the API key, and a key carried in the URL changes no cache key.
"""
from __future__ import annotations

import os
import sqlite3
import threading
import time
from dataclasses import dataclass
from pathlib import Path

from ..io import cache_dir, stable_hash


def default_cache_path() -> Path:
    return cache_dir() / "llm.sqlite"


@dataclass(frozen=True)
class CachedAnswer:
    content: str
    prompt_tokens: int
    completion_tokens: int


def answer_key(base_url: str, model: str, prompt_version: str, per_chunk: int, chunk_hash: str) -> str:
    return stable_hash([base_url.rstrip("/"), model, prompt_version, int(per_chunk), chunk_hash], n=32)


class LLMCache:
    """Thread-safe: one connection guarded by a lock (writes are tiny next to an LLM call)."""

    def __init__(self, path: str | os.PathLike | None = None):
        self.path = Path(path) if path else default_cache_path()
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._lock = threading.Lock()
        self._db = sqlite3.connect(str(self.path), check_same_thread=False, timeout=30)
        self._db.execute("PRAGMA journal_mode=WAL")
        self._db.execute(
            "CREATE TABLE IF NOT EXISTS answers (key TEXT PRIMARY KEY, base_url TEXT, model TEXT,"
            " prompt_version TEXT, per_chunk INTEGER, chunk_hash TEXT, content TEXT,"
            " prompt_tokens INTEGER, completion_tokens INTEGER, created REAL)")
        self._db.commit()

    def get(self, key: str) -> CachedAnswer | None:
        with self._lock:
            row = self._db.execute(
                "SELECT content, prompt_tokens, completion_tokens FROM answers WHERE key=?", (key,)
            ).fetchone()
        return CachedAnswer(row[0], row[1] or 0, row[2] or 0) if row else None

    def put(self, key: str, *, base_url: str, model: str, prompt_version: str, per_chunk: int,
            chunk_hash: str, answer: CachedAnswer) -> None:
        with self._lock:
            self._db.execute(
                "INSERT OR REPLACE INTO answers VALUES (?,?,?,?,?,?,?,?,?,?)",
                (key, base_url.rstrip("/"), model, prompt_version, per_chunk, chunk_hash,
                 answer.content, answer.prompt_tokens, answer.completion_tokens, time.time()))
            self._db.commit()  # at once: a run killed after this line keeps the answer

    def close(self) -> None:
        with self._lock:
            self._db.close()
