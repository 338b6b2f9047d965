"""A faiss folder (``faiss://FOLDER``): the embedded store for a service that loads a faiss index itself.

FOLDER/aliases.json maps each alias to a collection (replaced atomically: a reader sees the old or the new
mapping); FOLDER/<collection>/rows.sqlite holds the rows (id, hash, payload, vector: the source of truth, one
transaction per batch, so a killed run keeps every finished batch) and the kit's record; ``index.faiss`` (an
``IndexFlatIP``) with ``ids.json`` (row i of the index is chunk ids[i]) and ``payloads.jsonl`` are exported from it
whenever the record changes (after each run). Dense vectors only: no sparse or ColBERT vectors."""
from __future__ import annotations

import json
import sqlite3
from pathlib import Path

import numpy as np

from ...io import KitError, atomic_open, read_json, write_json
from .base import META_KEY, CollectionInfo, Row, Schema, Store, decode_meta, encode_meta

ALIASES = "aliases.json"


class FaissStore(Store):
    kind = "faiss"

    def __init__(self, uri):
        super().__init__(uri)
        self.root = Path(uri.path)
        try:
            self.root.mkdir(parents=True, exist_ok=True)
        except OSError as e:
            raise KitError(f"{uri}: cannot create the folder ({e.strerror})") from None
        self._conns: dict[str, sqlite3.Connection] = {}

    def _db(self, name: str) -> sqlite3.Connection:
        if name not in self._conns:
            path = self.root / name / "rows.sqlite"
            if not path.exists():
                raise KitError(f"{self.uri}: no collection {name}")
            conn = sqlite3.connect(str(path), timeout=60)
            conn.execute("PRAGMA journal_mode=WAL")
            self._conns[name] = conn
        return self._conns[name]

    def _resolve(self, name: str) -> str:
        return self.aliases().get(name, name)

    def collections(self) -> list[str]:
        return sorted(p.name for p in self.root.iterdir() if (p / "rows.sqlite").exists())

    def info(self, name: str) -> CollectionInfo | None:
        if name not in self.collections():
            return None
        row = self._db(name).execute("SELECT value FROM meta WHERE key=?", (META_KEY,)).fetchone()
        dim = self._db(name).execute("SELECT value FROM meta WHERE key='dim'").fetchone()
        return CollectionInfo(name, int(dim[0]) if dim else None, False, False, decode_meta(row[0] if row else None))

    def create(self, name: str, schema: Schema, meta: dict) -> None:
        folder = self.root / name
        folder.mkdir(parents=True, exist_ok=True)
        conn = sqlite3.connect(str(folder / "rows.sqlite.tmp"))
        conn.execute("CREATE TABLE rows (id TEXT PRIMARY KEY, hash TEXT, payload TEXT, vec BLOB)")
        conn.execute("CREATE TABLE meta (key TEXT PRIMARY KEY, value TEXT)")
        conn.executemany("INSERT INTO meta VALUES (?, ?)", [("dim", str(schema.dim)), (META_KEY, encode_meta(meta))])
        conn.commit()
        conn.close()
        (folder / "rows.sqlite.tmp").rename(folder / "rows.sqlite")   # a collection exists whole or not at all

    def drop(self, name: str) -> None:
        import shutil

        conn = self._conns.pop(name, None)
        if conn is not None:
            conn.close()
        shutil.rmtree(self.root / name, ignore_errors=True)

    def set_meta(self, name: str, meta: dict) -> None:
        with self._db(name) as conn:
            conn.execute("INSERT OR REPLACE INTO meta VALUES (?, ?)", (META_KEY, encode_meta(meta)))
        self._export(name)

    def upsert(self, name: str, rows: list[Row]) -> None:
        data = [(r.id, r.hash, json.dumps(r.payload, ensure_ascii=False), np.asarray(r.dense, np.float32).tobytes())
                for r in rows]
        with self._db(name) as conn:
            conn.executemany("INSERT OR REPLACE INTO rows VALUES (?, ?, ?, ?)", data)

    def delete(self, name: str, ids: list[str]) -> None:
        with self._db(name) as conn:
            conn.executemany("DELETE FROM rows WHERE id=?", [(i,) for i in ids])

    def hashes(self, name: str) -> dict[str, str]:
        return dict(self._db(name).execute("SELECT id, hash FROM rows"))

    def count(self, name: str) -> int:
        return int(self._db(self._resolve(name)).execute("SELECT COUNT(*) FROM rows").fetchone()[0])

    def _matrix(self, name: str) -> tuple[list[str], np.ndarray]:
        """(ids, vectors) in id order, the vectors filled row by row into one array (its only copy)."""
        db, dim = self._db(name), self.info(name).dim
        vecs = np.empty((self.count(name), dim), np.float32)
        ids = []
        for n, (i, v) in enumerate(db.execute("SELECT id, vec FROM rows ORDER BY id")):
            ids.append(i)
            vecs[n] = np.frombuffer(v, np.float32)
        return ids, vecs

    def search(self, name: str, vectors: np.ndarray, k: int) -> list[list[str]]:
        from ...search import build_index, search

        ids, vecs = self._matrix(self._resolve(name))
        if not ids:
            return [[] for _ in vectors]
        index, _ = build_index(vecs)
        _, idx = search(index, np.asarray(vectors, np.float32), min(k, len(ids)))
        return [[ids[j] for j in row if j >= 0] for row in idx]

    def search_sparse(self, name: str, weights: list[dict], k: int) -> list[list[str]]:
        raise KitError(f"{self.uri}: a faiss folder holds no sparse vectors")

    def aliases(self) -> dict[str, str]:
        path = self.root / ALIASES
        return read_json(path) if path.exists() else {}

    def point_alias(self, alias: str, collection: str) -> None:
        write_json(self.root / ALIASES, {**self.aliases(), alias: collection})   # temp file + rename: atomic

    def _export(self, name: str) -> None:
        """index.faiss + ids.json + payloads.jsonl for a service that loads the collection with faiss alone."""
        import faiss

        ids, vecs = self._matrix(name)
        index = faiss.IndexFlatIP(vecs.shape[1])
        index.add(vecs)
        folder = self.root / name
        with atomic_open(folder / "index.faiss", "wb") as f:
            f.write(faiss.serialize_index(index).tobytes())
        write_json(folder / "ids.json", ids)
        with atomic_open(folder / "payloads.jsonl") as f:      # streamed in the index's (id) order, never held whole
            for _, payload in self._db(name).execute("SELECT id, payload FROM rows ORDER BY id"):
                f.write(payload + "\n")

    def close(self) -> None:
        for conn in self._conns.values():
            conn.close()
        self._conns.clear()
