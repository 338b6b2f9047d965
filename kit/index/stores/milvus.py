"""Milvus through its official client (pymilvus ``MilvusClient``): a Milvus Lite folder in this process
(``milvus-lite://PATH.db``; one process at a time) or a Milvus server (``milvus://HOST:PORT``, token from
MILVUS_TOKEN). Milvus Lite is a Milvus gRPC engine in-process; ``milvus-lite server --data-dir PATH --port P``
serves the same folder to several processes.

One collection per model version: ``id`` (the chunk id, primary key), ``dense`` (FLOAT_VECTOR, inner product),
``sparse`` (SPARSE_FLOAT_VECTOR, bge-m3 only), the payload as scalar fields (doc, title, page_start, page_end,
text) and ``hash``. The kit's record of the collection is a collection property (``kit_index``, JSON). Milvus
holds no multi-vector field here (ColBERT vectors are a Qdrant feature in the kit)."""
from __future__ import annotations

import logging

import numpy as np

from ...io import KitError
from ..rows import MAX_BYTES, MAX_ID_BYTES
from .base import META_KEY, CollectionInfo, Row, Schema, Store, decode_meta, encode_meta, fail



def _quiet() -> None:
    """pymilvus logs every failed call at ERROR with a traceback (and resets its logger's level when imported), and
    the in-process Milvus Lite server logs calls it does not implement: the kit reports each failure itself, in one
    line."""
    for name in ("pymilvus", "milvus_lite", "grpc._server"):
        logging.getLogger(name).setLevel(logging.CRITICAL)


STRONG = "Strong"    # every read sees every write before it (the checks must see what was just written)


class MilvusStore(Store):
    kind = "milvus"
    sparse = True
    multivector = False

    def __init__(self, uri, timeout: float = 10.0):
        super().__init__(uri)
        from pymilvus import MilvusClient

        _quiet()
        self.lite = not uri.server
        self._loaded: set[str] = set()
        try:
            if self.lite:
                if uri.path.suffix != ".db":
                    raise KitError(f"{uri}: a Milvus Lite path ends in .db (e.g. milvus-lite:///srv/index.db)")
                uri.path.parent.mkdir(parents=True, exist_ok=True)
                self.client = MilvusClient(uri=str(uri.path.resolve()), timeout=timeout)
            else:
                self.client = MilvusClient(uri=uri.endpoint(), token=uri.key() or "", timeout=timeout)
            self.client.list_collections()
        except KitError:
            raise
        except Exception as e:  # noqa: BLE001 - every way of not connecting is one line
            if self.lite and "Open local milvus failed" in str(e):
                raise KitError(f"{uri}: cannot open the Milvus Lite folder: another process has it open (it admits "
                               f"one process; serve it with `milvus-lite server --data-dir {uri.path} --port 19530` "
                               f"and use milvus://127.0.0.1:19530); nothing was changed") from None
            raise KitError(fail("connecting", uri, e).args[0] + "; is the store up? nothing was changed") from None

    def _call(self, what: str, fn, *args, **kwargs):
        try:
            return fn(*args, **kwargs)
        except KitError:
            raise
        except Exception as e:  # noqa: BLE001
            raise fail(what, self.uri, e) from None

    def collections(self) -> list[str]:
        return list(self._call("listing collections", self.client.list_collections))

    def _load(self, name: str) -> None:
        """A collection is searchable once loaded; Milvus (Lite too) releases them when it restarts."""
        if name in self._loaded:
            return
        from pymilvus.client.types import LoadState

        if self._call(f"reading {name}", self.client.get_load_state, name).get("state") != LoadState.Loaded:
            self._call(f"loading {name}", self.client.load_collection, name)
        self._loaded.add(name)

    def info(self, name: str) -> CollectionInfo | None:
        if name not in self.collections():
            return None
        self._load(name)
        d = self._call(f"describing {name}", self.client.describe_collection, name)
        fields = {f["name"]: f for f in d.get("fields", [])}
        dense = fields.get("dense") or {}
        dim = (dense.get("params") or {}).get("dim")
        meta = decode_meta((d.get("properties") or {}).get(META_KEY))
        return CollectionInfo(name, int(dim) if dim else None, "sparse" in fields, False, meta)

    def create(self, name: str, schema: Schema, meta: dict) -> None:
        from pymilvus import DataType, MilvusClient

        s = MilvusClient.create_schema(auto_id=False, enable_dynamic_field=False)
        s.add_field("id", DataType.VARCHAR, is_primary=True, max_length=MAX_ID_BYTES)
        s.add_field("dense", DataType.FLOAT_VECTOR, dim=schema.dim)
        index = self.client.prepare_index_params()
        index.add_index("dense", index_type="FLAT" if self.lite else "AUTOINDEX", metric_type="IP")
        if schema.sparse:
            s.add_field("sparse", DataType.SPARSE_FLOAT_VECTOR)
            index.add_index("sparse", index_type="SPARSE_INVERTED_INDEX", metric_type="IP")
        s.add_field("doc", DataType.VARCHAR, max_length=MAX_BYTES["doc"])
        s.add_field("title", DataType.VARCHAR, max_length=MAX_BYTES["title"])
        s.add_field("page_start", DataType.INT64)
        s.add_field("page_end", DataType.INT64)
        if schema.payload_text:
            s.add_field("text", DataType.VARCHAR, max_length=MAX_BYTES["text"])
        s.add_field("hash", DataType.VARCHAR, max_length=64)
        self._call(f"creating {name}", self.client.create_collection, name, schema=s, index_params=index,
                   properties={META_KEY: encode_meta(meta)}, consistency_level=STRONG)

    def drop(self, name: str) -> None:
        self._call(f"dropping {name}", self.client.drop_collection, name)
        self._loaded.discard(name)

    def set_meta(self, name: str, meta: dict) -> None:
        self._call(f"recording {name}'s state", self.client.alter_collection_properties, name,
                   properties={META_KEY: encode_meta(meta)})

    def upsert(self, name: str, rows: list[Row]) -> None:
        data = []
        for r in rows:
            d = {"id": r.id, "dense": np.asarray(r.dense, np.float32).tolist(), "hash": r.hash,
                 **{k: v for k, v in r.payload.items() if k != "chunk_id"}}
            if r.sparse is not None:
                d["sparse"] = r.sparse or {0: 1e-9}   # Milvus refuses an empty sparse vector
            data.append(d)
        self._call(f"writing to {name}", self.client.upsert, name, data)

    def delete(self, name: str, ids: list[str]) -> None:
        for i in range(0, len(ids), 1000):
            self._call(f"deleting from {name}", self.client.delete, name, ids=ids[i:i + 1000])

    def hashes(self, name: str) -> dict[str, str]:
        self._load(name)
        out: dict[str, str] = {}
        it = self._call(f"reading {name}", self.client.query_iterator, name, batch_size=1000, filter="",
                        output_fields=["id", "hash"])
        try:
            while True:
                batch = self._call(f"reading {name}", it.next)
                if not batch:
                    break
                out.update((r["id"], r["hash"]) for r in batch)
        finally:
            it.close()
        return out

    def count(self, name: str) -> int:
        self._load(name)
        res = self._call(f"counting {name}", self.client.query, name, filter="", output_fields=["count(*)"],
                         consistency_level=STRONG)
        return int(res[0]["count(*)"])

    def search(self, name: str, vectors: np.ndarray, k: int) -> list[list[str]]:
        self._load(name)
        res = self._call(f"searching {name}", self.client.search, name, data=np.asarray(vectors, np.float32).tolist(),
                         anns_field="dense", limit=k, search_params={"metric_type": "IP"}, output_fields=["id"],
                         consistency_level=STRONG)
        return [[h["id"] for h in hits] for hits in res]

    def search_sparse(self, name: str, weights: list[dict], k: int) -> list[list[str]]:
        self._load(name)
        res = self._call(f"searching {name}", self.client.search, name, data=[w or {0: 1e-9} for w in weights],
                         anns_field="sparse", limit=k, search_params={"metric_type": "IP"}, output_fields=["id"],
                         consistency_level=STRONG)
        return [[h["id"] for h in hits] for hits in res]

    def aliases(self) -> dict[str, str]:
        names = self._call("listing aliases", self.client.list_aliases).get("aliases", [])
        return {a: self._call(f"reading alias {a}", self.client.describe_alias, a)["collection_name"] for a in names}

    def point_alias(self, alias: str, collection: str) -> None:
        if alias in self.aliases():
            self._call(f"moving alias {alias}", self.client.alter_alias, collection, alias)
        else:
            self._call(f"creating alias {alias}", self.client.create_alias, collection, alias)

    def close(self) -> None:
        try:
            self.client.close()
            if self.lite:   # the in-process engine holds the folder's lock until released
                from milvus_lite import server_manager_instance

                server_manager_instance.release_server(str(self.uri.path.resolve()))
        except Exception:  # noqa: BLE001 - closing a dead connection is not an error
            pass
