"""The local engine: shards encoded one after the other in this process (each written as it is finished)."""
from __future__ import annotations

from ..logs import note
from .job import EncodeJob, add_stats, encode_shard, iter_shard_texts
from .shards import ShardDir, texts_digest


def run_local(job: EncodeJob, shards: ShardDir, stream, encoder, desc: str | None = None) -> dict:
    stats = {"unique": 0, "cached": 0, "encoded": 0, "workers": 1, "shards_reused": 0}
    for i, texts in iter_shard_texts(stream(), job.shard_size):
        sha = texts_digest(texts)
        why = shards.problem(i, sha)
        if why is None:
            stats["shards_reused"] += 1
            add_stats(stats, {"unique": len(texts), "cached": len(texts)})
            continue
        if why != "missing":
            note(f"[kit] {shards.root}: shard {i} {why}: encoding it again")
        vecs, part = encode_shard(encoder, job.kind, texts,
                                  desc if shards.count == 1 else (f"{desc} {i + 1}/{shards.count}" if desc else None))
        shards.write(i, vecs, sha, info={"engine": "local", "encoded": part.get("encoded", 0)})
        add_stats(stats, part)
    return stats
