"""What `kit index` needs from a vector store, in one small interface; each store module implements it with the
store's official client. A collection carries the kit's record of itself (``meta``: the model and how it embeds,
its state, the collection the alias pointed to before it went live), so the store alone says what is live, what
was verified and where a rollback goes: any machine can roll back."""
from __future__ import annotations

import json
from dataclasses import dataclass, field

import numpy as np

from ...io import KitError
from ...secrets import redact_text

META_KEY = "kit_index"


@dataclass
class Schema:
    dim: int
    sparse: bool = False
    colbert: int = 0             # ColBERT vector width; 0 = none
    payload_text: bool = True


@dataclass
class CollectionInfo:
    name: str
    dim: int | None
    sparse: bool
    colbert: bool
    meta: dict = field(default_factory=dict)     # {} for a collection the kit did not make


@dataclass
class Row:
    id: str
    dense: np.ndarray
    payload: dict
    hash: str
    sparse: dict | None = None
    colbert: np.ndarray | None = None


class StoreError(KitError):
    """The store refused or failed an operation (one line, no key)."""


def fail(what: str, uri, e: Exception) -> StoreError:
    first = (str(e).strip().splitlines() or [type(e).__name__])[0]
    return StoreError(redact_text(f"{uri}: {what} failed ({type(e).__name__}: {first[:300]})"))


def encode_meta(meta: dict) -> str:
    return json.dumps(meta, ensure_ascii=False, sort_keys=True)


def decode_meta(text) -> dict:
    try:
        meta = json.loads(text) if text else {}
    except (TypeError, ValueError):
        return {}
    return meta if isinstance(meta, dict) else {}


class Store:
    """One connection to one store. Names given to ``search``/``count`` may be aliases."""

    kind = ""
    sparse = False          # holds sparse vectors
    multivector = False     # holds ColBERT multi-vectors

    def __init__(self, uri):
        self.uri = uri

    def collections(self) -> list[str]: raise NotImplementedError
    def info(self, name: str) -> CollectionInfo | None: raise NotImplementedError
    def create(self, name: str, schema: Schema, meta: dict) -> None: raise NotImplementedError
    def drop(self, name: str) -> None: raise NotImplementedError
    def set_meta(self, name: str, meta: dict) -> None: raise NotImplementedError
    def upsert(self, name: str, rows: list[Row]) -> None: raise NotImplementedError
    def delete(self, name: str, ids: list[str]) -> None: raise NotImplementedError
    def hashes(self, name: str) -> dict[str, str]: raise NotImplementedError
    def count(self, name: str) -> int: raise NotImplementedError
    def search(self, name: str, vectors: np.ndarray, k: int) -> list[list[str]]: raise NotImplementedError
    def search_sparse(self, name: str, weights: list[dict], k: int) -> list[list[str]]: raise NotImplementedError
    def aliases(self) -> dict[str, str]: raise NotImplementedError
    def point_alias(self, alias: str, collection: str) -> None: raise NotImplementedError
    def close(self) -> None: pass

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()
        return False
