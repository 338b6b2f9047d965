"""Qdrant through its official client (``qdrant-client``): a server (``qdrant://HOST:PORT``, key from
QDRANT_API_KEY) or the client's local mode (``qdrant-local://FOLDER``: the client's own Python implementation,
one process at a time, for tests and small sets).

Named vectors: ``dense`` (dot product of normalised vectors), ``sparse`` (bge-m3's lexical weights) and
``colbert`` (bge-m3's ColBERT vectors, a MAX_SIM multi-vector). Point ids are UUIDs derived from the chunk ids
(Qdrant takes only integers and UUIDs); the chunk id is in the payload (``chunk_id``) with ``hash``. The kit's
record of the collection is the collection's metadata (``kit_index``)."""
from __future__ import annotations

import uuid

import numpy as np

from ...io import KitError
from .base import META_KEY, CollectionInfo, Row, Schema, Store, decode_meta, encode_meta, fail

NAMESPACE = uuid.UUID("6f1d2c0e-4b8a-5d3e-9a71-2c4f0e8b7a55")


def point_id(chunk_id: str) -> str:
    return str(uuid.uuid5(NAMESPACE, chunk_id))


class QdrantStore(Store):
    kind = "qdrant"
    sparse = True
    multivector = True

    def __init__(self, uri, timeout: int = 10):
        super().__init__(uri)
        from qdrant_client import QdrantClient

        try:
            if uri.server:
                self.client = QdrantClient(url=uri.endpoint(), api_key=uri.key(), timeout=timeout,
                                           https=uri.tls, prefer_grpc=False)
            else:
                uri.path.mkdir(parents=True, exist_ok=True)
                self.client = QdrantClient(path=str(uri.path))
            self.client.get_collections()
        except Exception as e:  # noqa: BLE001 - every way of not connecting is one line
            if not uri.server and "already accessed by another instance" in str(e):
                raise KitError(f"{uri}: another process has the local Qdrant folder open (local mode admits one "
                               f"process; use a Qdrant server for several); nothing was changed") from None
            raise KitError(fail("connecting", uri, e).args[0] + "; is the store up? nothing was changed") from None

    def _call(self, what: str, fn, *args, **kwargs):
        try:
            return fn(*args, **kwargs)
        except Exception as e:  # noqa: BLE001
            raise fail(what, self.uri, e) from None

    def collections(self) -> list[str]:
        return [c.name for c in self._call("listing collections", self.client.get_collections).collections]

    def info(self, name: str) -> CollectionInfo | None:
        if name not in self.collections():
            return None
        cfg = self._call(f"describing {name}", self.client.get_collection, name).config
        vectors = cfg.params.vectors if isinstance(cfg.params.vectors, dict) else {}
        dense = vectors.get("dense")
        meta = decode_meta((getattr(cfg, "metadata", None) or {}).get(META_KEY))
        return CollectionInfo(name, int(dense.size) if dense else None, "sparse" in (cfg.params.sparse_vectors or {}),
                              "colbert" in vectors, meta)

    def create(self, name: str, schema: Schema, meta: dict) -> None:
        from qdrant_client import models

        vectors = {"dense": models.VectorParams(size=schema.dim, distance=models.Distance.DOT)}
        if schema.colbert:
            vectors["colbert"] = models.VectorParams(
                size=schema.colbert, distance=models.Distance.DOT,
                multivector_config=models.MultiVectorConfig(comparator=models.MultiVectorComparator.MAX_SIM))
        sparse = {"sparse": models.SparseVectorParams()} if schema.sparse else None
        self._call(f"creating {name}", self.client.create_collection, name, vectors_config=vectors,
                   sparse_vectors_config=sparse, metadata={META_KEY: encode_meta(meta)})

    def drop(self, name: str) -> None:
        self._call(f"dropping {name}", self.client.delete_collection, name)

    def set_meta(self, name: str, meta: dict) -> None:
        self._call(f"recording {name}'s state", self.client.update_collection, name,
                   metadata={META_KEY: encode_meta(meta)})

    def upsert(self, name: str, rows: list[Row]) -> None:
        from qdrant_client import models

        points = []
        for r in rows:
            vector = {"dense": np.asarray(r.dense, np.float32).tolist()}
            if r.sparse is not None:
                ids = sorted(r.sparse)
                vector["sparse"] = models.SparseVector(indices=ids, values=[float(r.sparse[i]) for i in ids])
            if r.colbert is not None:
                vector["colbert"] = np.asarray(r.colbert, np.float32).tolist()
            points.append(models.PointStruct(id=point_id(r.id), vector=vector, payload={**r.payload, "hash": r.hash}))
        self._call(f"writing to {name}", self.client.upsert, name, points, wait=True)

    def delete(self, name: str, ids: list[str]) -> None:
        from qdrant_client import models

        for i in range(0, len(ids), 1000):
            selector = models.PointIdsList(points=[point_id(x) for x in ids[i:i + 1000]])
            self._call(f"deleting from {name}", self.client.delete, name, points_selector=selector, wait=True)

    def hashes(self, name: str) -> dict[str, str]:
        out, offset = {}, None
        while True:
            points, offset = self._call(f"reading {name}", self.client.scroll, name, limit=1000, offset=offset,
                                        with_payload=["chunk_id", "hash"], with_vectors=False)
            out.update((p.payload["chunk_id"], p.payload["hash"]) for p in points)
            if offset is None:
                return out

    def count(self, name: str) -> int:
        return int(self._call(f"counting {name}", self.client.count, name, exact=True).count)

    def _ids(self, name: str, query, using: str, k: int) -> list[str]:
        res = self._call(f"searching {name}", self.client.query_points, name, query=query, using=using, limit=k,
                         with_payload=["chunk_id"])
        return [p.payload["chunk_id"] for p in res.points]

    def search(self, name: str, vectors: np.ndarray, k: int) -> list[list[str]]:
        return [self._ids(name, np.asarray(v, np.float32).tolist(), "dense", k) for v in vectors]

    def search_sparse(self, name: str, weights: list[dict], k: int) -> list[list[str]]:
        from qdrant_client import models

        return [self._ids(name, models.SparseVector(indices=sorted(w), values=[float(w[i]) for i in sorted(w)]),
                          "sparse", k) for w in weights]

    def aliases(self) -> dict[str, str]:
        return {a.alias_name: a.collection_name for a in self._call("listing aliases", self.client.get_aliases).aliases}

    def point_alias(self, alias: str, collection: str) -> None:
        """Delete and create in one request: Qdrant applies the list atomically (no moment without the alias)."""
        from qdrant_client import models

        ops = [models.CreateAliasOperation(create_alias=models.CreateAlias(collection_name=collection,
                                                                           alias_name=alias))]
        if alias in self.aliases():
            ops.insert(0, models.DeleteAliasOperation(delete_alias=models.DeleteAlias(alias_name=alias)))
        self._call(f"moving alias {alias}", self.client.update_collection_aliases, change_aliases_operations=ops)

    def close(self) -> None:
        try:
            self.client.close()
        except Exception:  # noqa: BLE001
            pass
