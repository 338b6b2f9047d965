"""Filling a collection: only the rows it lacks or holds with another hash are embedded and written, a batch at a
time, then the rows whose chunk is gone are deleted (upserts first: a changed chunk is never missing in between).

The same difference serves three cases: a new collection (everything to write), a run killed mid-way (the
written batches are skipped; vectors embedded but not written come from the embedding cache, so no chunk is
embedded twice) and an incremental update under the same model (new, changed and deleted chunks only)."""
from __future__ import annotations

import sys
import time

from .encode import ChunkEncoder
from .rows import IndexRow
from .stores import Row, Store


def plan(stored: dict[str, str], rows: list[IndexRow]) -> tuple[list[int], list[str]]:
    """(positions in ``rows`` of the rows to write: new or changed, ids to delete: stored but no longer in the
    corpus)."""
    want = {r.id for r in rows}
    return [i for i, r in enumerate(rows) if stored.get(r.id) != r.hash], sorted(i for i in stored if i not in want)


def store_rows(batch: list[IndexRow], vecs: dict) -> list[Row]:
    return [Row(r.id, vecs["dense"][j], r.payload, r.hash,
                sparse=vecs["sparse"][j] if vecs["sparse"] is not None else None,
                colbert=vecs["colbert"][j] if vecs["colbert"] is not None else None) for j, r in enumerate(batch)]


def fill(store: Store, collection: str, rows: list[IndexRow], encoder: ChunkEncoder, batch_size: int,
         progress: bool = True, dense=None, sparse=None) -> dict:
    """``dense`` / ``sparse``: every row's vector / bge-m3 sparse row from the encoding layer
    (kit.encode.ShardedVectors, read a batch at a time from the shard files), or None to embed here."""
    from tqdm.auto import tqdm

    t0 = time.perf_counter()
    stored = store.hashes(collection)
    todo, gone = plan(stored, rows)
    bar = tqdm(total=len(todo), desc=f"indexing {collection}", unit="chunk", file=sys.stderr, leave=False,
               disable=not progress or not todo)
    for i in range(0, len(todo), batch_size):
        at = todo[i:i + batch_size]
        batch = [rows[j] for j in at]
        vecs = encoder.passages([r.text for r in batch], dense=None if dense is None else dense[at],
                                sparse=None if sparse is None else sparse[at])
        store.upsert(collection, store_rows(batch, vecs))
        bar.update(len(batch))
    bar.close()
    if gone:
        store.delete(collection, gone)
    changed = sum(1 for j in todo if rows[j].id in stored)
    return {"chunks": len(rows), "unchanged": len(rows) - len(todo), "added": len(todo) - changed,
            "changed": changed, "deleted": len(gone), "encoded": dict(encoder.encoded),
            "seconds": round(time.perf_counter() - t0, 1)}
