"""Vector stores behind one small interface (:class:`Store`): Milvus (Lite or server), Qdrant (server or local
mode), a faiss folder. :func:`open_store` picks one from a URI (:mod:`kit.index.uri`)."""
from __future__ import annotations

from ..uri import StoreURI, parse
from .base import CollectionInfo, Row, Schema, Store, StoreError


def open_store(uri: str | StoreURI) -> Store:
    """A connected store, or one line (a KitError) saying why not; nothing is created but an embedded store's
    folder."""
    u = uri if isinstance(uri, StoreURI) else parse(uri)
    if u.family == "milvus":
        from .milvus import MilvusStore

        return MilvusStore(u)
    if u.family == "qdrant":
        from .qdrant import QdrantStore

        return QdrantStore(u)
    from .faiss import FaissStore

    return FaissStore(u)


__all__ = ["CollectionInfo", "Row", "Schema", "Store", "StoreError", "open_store"]
