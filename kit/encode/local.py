"""The local engine: shards encoded one after the other in this process (each written as it is finished)."""
from __future__ import annotations

from .job import EncodeJob, add_stats, encode_shard, shards_to_encode
from .shards import ShardDir


def run_local(job: EncodeJob, shards: ShardDir, stream, encoder, desc: str | None = None) -> dict:
    stats = {"unique": 0, "cached": 0, "encoded": 0, "workers": 1, "shards_reused": 0}
    for i, texts, sha in shards_to_encode(stream(), job.shard_size, shards, stats):
        vecs, part = encode_shard(encoder, job.kind, texts,
                                  desc if shards.count == 1 else (f"{desc} {i + 1}/{shards.count}" if desc else None))
        shards.write(i, vecs, sha, info={"engine": "local", "encoded": part.get("encoded", 0)})
        add_stats(stats, part)
    return stats
