"""One torchrun rank of the torchrun engine: ``python -m kit.encode.worker SHARD_DIR/job.json`` (torchrun sets RANK,
WORLD_SIZE, LOCAL_RANK, MASTER_ADDR/PORT). See :mod:`kit.encode.distributed`.

Fault injection for tests: ``KIT_TEST_KILL_SHARD=i`` makes the rank that is about to write shard ``i`` die at once
(``os._exit``), as a rank killed by the OOM killer or a lost node would.
"""
from __future__ import annotations

import json
import os
import sys
import time
from datetime import timedelta

from ..logs import note


def _texts_of(job, wanted: set[int]):
    """(shard, texts) for the wanted shards, in order, streaming the texts file (one shard in memory)."""
    buf: list[str] = []
    current = None
    with open(job.texts_file, encoding="utf-8") as f:
        for n, line in enumerate(f):
            i = n // job.shard_size
            if current is not None and i != current:
                yield current, buf
                buf, current = [], None
            if i in wanted:
                current = i
                buf.append(json.loads(line))
    if current is not None:
        yield current, buf


def encode_my_shards(job, rank: int, world: int, device: str) -> dict:
    from ..io import KitError
    from .job import encode_shard
    from .shards import ShardDir, texts_digest

    shards = ShardDir(job.shard_dir, json.loads(open(os.path.join(job.shard_dir, "manifest.json")).read()))
    mine = job.todo[rank::world]
    stats = {"rank": rank, "shards": len(mine), "texts": 0, "unique": 0, "cached": 0, "encoded": 0, "seconds": 0.0}
    if not mine:
        return stats
    encoder = job.encoder(device=device)
    kill_at = os.environ.get("KIT_TEST_KILL_SHARD")
    t0 = time.perf_counter()
    for i, texts in _texts_of(job, set(mine)):
        sha = texts_digest(texts)
        if sha != job.shard_shas[i]:
            raise KitError(f"{job.texts_file}: shard {i} reads other texts than the driver wrote (file changed?)")
        vecs, part = encode_shard(encoder, job.kind, texts)
        if kill_at is not None and int(kill_at) == i:
            os._exit(17)
        shards.write(i, vecs, sha, info={"engine": "torchrun", "rank": rank, "encoded": part.get("encoded", 0)})
        stats["texts"] += len(texts)
        for k in ("unique", "cached", "encoded"):
            stats[k] += int(part.get(k, 0))
        note(f"rank {rank}/{world}: shard {i} done ({len(texts)} texts, {part.get('encoded', 0)} encoded)")
    stats["seconds"] = round(time.perf_counter() - t0, 3)
    stats["texts_per_second"] = round(stats["encoded"] / max(stats["seconds"], 1e-9), 2)
    return stats


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    import torch
    import torch.distributed as dist

    from ..io import KitError, write_json
    from .job import EncodeJob
    from .shards import ShardDir

    job = EncodeJob.load(argv[0])
    rank, world = int(os.environ.get("RANK", 0)), int(os.environ.get("WORLD_SIZE", 1))
    local = int(os.environ.get("LOCAL_RANK", 0))
    cuda = job.device.startswith("cuda")
    if cuda:
        torch.cuda.set_device(local)
    elif os.environ.get("OMP_NUM_THREADS"):
        torch.set_num_threads(int(os.environ["OMP_NUM_THREADS"]))
    dist.init_process_group("nccl" if cuda else "gloo", timeout=timedelta(hours=24))
    try:
        try:
            stats = encode_my_shards(job, rank, world, f"cuda:{local}" if cuda else "cpu")
            stats["error"] = None
        except KitError as e:
            stats = {"rank": rank, "error": str(e)}
            note(f"rank {rank}: error: {e}")
        gathered = [None] * world
        dist.all_gather_object(gathered, stats)
        if rank == 0:
            shards = ShardDir(job.shard_dir, json.loads(open(os.path.join(job.shard_dir, "manifest.json")).read()))
            missing = [i for i in job.todo if shards.problem(i, job.shard_shas[i], checksum=False)]
            errors = [g["error"] for g in gathered if g and g.get("error")]
            write_json(os.path.join(job.shard_dir, "done.json"),
                       {"ok": not missing and not errors, "missing": missing, "errors": errors, "ranks": gathered})
            if missing or errors:
                note(f"rank 0: {len(missing)} shards missing after all ranks finished: {missing[:10]}; "
                     f"errors: {errors[:3]}")
        failed = bool(stats.get("error"))
        dist.barrier()
    finally:
        dist.destroy_process_group()
    if os.environ.get("KIT_TEST_ABORT_AT_EXIT") == str(rank):   # tests: a rank that crashes in teardown (SIGABRT)
        os.abort()
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
