"""On-disk cache of successful LLM answers, so a killed or repeated run never pays for a call twice.

SQLite (stdlib) because it commits each answer atomically the moment it arrives and survives a
SIGKILL in WAL mode; one row per (endpoint, model, prompt version, questions per chunk, chunk hash).
Only the answer, its token usage and the endpoint *without credentials* (:func:`kit.secrets.redact_url`) are
stored: never the request headers, so never the API key, and a key carried in the URL changes no cache key.
"""
from __future__ import annotations

import os
import time
from dataclasses import dataclass
from pathlib import Path

from ..cache import SQLiteCache
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


class LLMCache(SQLiteCache):
    """Thread-safe: one connection guarded by a lock (writes are tiny next to an LLM call)."""

    def __init__(self, path: str | os.PathLike | None = None):
        super().__init__(path or default_cache_path(), [
            "CREATE TABLE IF NOT EXISTS answers (key TEXT PRIMARY KEY, base_url TEXT, model TEXT,"
            " prompt_version TEXT, per_chunk INTEGER, chunk_hash TEXT, content TEXT,"
            " prompt_tokens INTEGER, completion_tokens INTEGER, created REAL)"], timeout=30)

    def get(self, key: str) -> CachedAnswer | None:
        row = self.one("SELECT content, prompt_tokens, completion_tokens FROM answers WHERE key=?", (key,))
        return CachedAnswer(row[0], row[1] or 0, row[2] or 0) if row else None

    def put(self, key: str, *, base_url: str, model: str, prompt_version: str, per_chunk: int,
            chunk_hash: str, answer: CachedAnswer) -> None:
        self.write("INSERT OR REPLACE INTO answers VALUES (?,?,?,?,?,?,?,?,?,?)",
                   [(key, base_url.rstrip("/"), model, prompt_version, per_chunk, chunk_hash,
                     answer.content, answer.prompt_tokens, answer.completion_tokens, time.time())])
