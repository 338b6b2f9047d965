"""The ray engine: a pool of ``workers`` encoder actors (``ray.util.ActorPool``, ``num_gpus`` per actor), started once
per job, on the cluster of ``$RAY_ADDRESS`` (or ``encode.ray_address``; ``local`` starts a private one here).

Ray is an optional extra (``pip install 'kit[ray]'``), imported only when this engine runs. The driver (this
process) streams the shards, at most 2 x workers of them in flight (memory stays bounded), looks their texts up in
the embedding cache, and sends each shard's uncached texts to the next free actor; an actor encodes them with the
same length-sorted batches as the local engine and returns the vectors; the driver fills the cache and writes the
shard files (the actors need no shared storage). Each actor loads the model once for the whole job. A cluster that
is not there is one line before anything starts; an actor that dies is restarted once and its shard retried, a
second death fails the job with Ray's reason, and the shards already written are kept.
"""
from __future__ import annotations

import logging
import os
import socket
from dataclasses import asdict

import numpy as np

from ..io import KitError
from ..logs import note
from .job import EncodeJob, add_stats, instructed, shards_to_encode
from .options import EncodeOptions
from .shards import ShardDir

_STARTED_HERE = False


def _import_ray():
    try:
        import ray
    except ImportError:
        raise KitError("encode.engine ray needs Ray, an optional extra: pip install 'kit[ray]' "
                       "(or pip install 'ray'); or use engine local or torchrun") from None
    return ray


def _host_port(address: str) -> tuple[str, int] | None:
    a = address.split("://", 1)[-1]
    host, sep, port = a.rpartition(":")
    if not sep or not port.isdigit():
        return None
    return host or "127.0.0.1", int(port)


def connect(options: EncodeOptions) -> dict:
    """Join (or, for ``local`` or no address, start) a Ray cluster; one clear line when it is not there."""
    global _STARTED_HERE
    ray = _import_ray()
    address = options.ray_address or os.environ.get("RAY_ADDRESS") or "local"
    if not ray.is_initialized():
        quiet = dict(include_dashboard=False, log_to_driver=False, logging_level=logging.WARNING)
        if address == "local":
            ray.init(address="local", num_cpus=max(int(options.workers or 1), os.cpu_count() or 1), **quiet)
            _STARTED_HERE = True
        else:
            hp = _host_port(address)
            if hp is not None:
                try:
                    socket.create_connection(hp, timeout=5).close()
                except OSError as e:
                    raise KitError(f"encode.engine ray: no Ray cluster at {address} ({e.strerror or e}); start one "
                                   f"(ray start --head), fix RAY_ADDRESS / encode.ray_address, or use "
                                   f"ray_address: local") from None
            try:
                ray.init(address=address, **quiet)
            except Exception as e:  # noqa: BLE001 - Ray raises ConnectionError, RuntimeError, ValueError...
                first = (str(e).strip().splitlines() or [type(e).__name__])[0][:300]
                raise KitError(f"encode.engine ray: cannot join the Ray cluster at {address} ({first}); is it "
                               f"running (ray start --head)? or use ray_address: local") from None
    res = ray.cluster_resources()
    return {"address": address, "gpus": float(res.get("GPU", 0)), "cpus": float(res.get("CPU", 0))}


class EncoderActor:
    """One model per actor, loaded once for the whole job; each call encodes one shard's uncached texts."""

    def __init__(self, job: dict, threads: int = 0):
        import torch

        if threads:
            torch.set_num_threads(threads)
        self.job = EncodeJob(**job)
        self.encoder = self.job.encoder(device="cuda" if self.job.device.startswith("cuda") else "cpu", cache=False)

    def encode(self, shard: int, texts: list[str]) -> tuple[int, np.ndarray, str]:
        import ray

        from ..embed import embed_with_cache

        _die_once_for_tests(shard)
        v, _ = embed_with_cache(self.job.namespace, [str(t) for t in texts], self.encoder._compute, None,
                                self.job.batch_size)
        return shard, np.ascontiguousarray(v, dtype=np.float32), ray.get_runtime_context().get_actor_id()


def _die_once_for_tests(shard: int) -> None:
    """Fault injection: ``KIT_TEST_KILL_SHARD=i`` with ``KIT_TEST_KILL_MARK=FILE`` kills the actor about to encode
    shard ``i`` (``os._exit``, as the OOM killer or a lost node would), once: the file records that it happened."""
    mark = os.environ.get("KIT_TEST_KILL_MARK")
    if mark and os.environ.get("KIT_TEST_KILL_SHARD") == str(shard) and not os.path.exists(mark):
        open(mark, "w").close()
        os._exit(17)


def _start_actors(ray, job: EncodeJob, workers: int, gpus: float, cpus: float) -> list:
    """The pool, started once per job: every shard goes to one of these actors, so each model loads once per actor
    (not once per window of shards). An actor that dies is restarted once and its shard retried (Ray's own
    ``max_restarts``/``max_task_retries``); a second death fails the job."""
    threads = max(1, int(cpus)) if not gpus else 0
    actor = ray.remote(EncoderActor).options(num_cpus=cpus, num_gpus=gpus or 0, max_restarts=1, max_task_retries=1)
    return [actor.remote(asdict(job), threads) for _ in range(workers)]


def _failed(e: Exception) -> KitError:
    first = (str(e).strip().splitlines() or [type(e).__name__])[0][:300]
    return KitError(f"encode.engine ray: the actors failed ({type(e).__name__}: {first}); the shards already "
                    f"written are kept, run again to encode the rest")


def run_ray(job: EncodeJob, shards: ShardDir, stream, options: EncodeOptions, encoder) -> dict:
    ray = _import_ray()
    from ray.util import ActorPool

    res = ray.cluster_resources()
    gpus = float(options.gpus_per_worker or 0)
    workers = int(options.workers or (max(1, int(res.get("GPU", 0) // max(gpus, 1))) if gpus else 1))
    cpus = 1.0 if gpus else max(1.0, float(int(res.get("CPU", 1) // workers)))
    cache, ns = encoder.cache, job.namespace
    stats = {"unique": 0, "cached": 0, "encoded": 0, "workers": workers, "shards_reused": 0,
             "ray": {"gpus_per_worker": gpus, "cpus_per_worker": cpus}}
    note(f"[kit] encoding {shards.count} shards on Ray ({workers} actors, {gpus:g} GPU / {cpus:g} CPU each)")
    pending: dict[int, tuple] = {}      # shard -> (texts, digest, instructed texts, cached vectors, texts to encode)
    used: set[str] = set()              # the actors that encoded a shard: at most ``workers`` for the whole job

    def write(i, vecs=None):
        texts, sha, prefixed, have, todo = pending.pop(i)
        if todo:
            if vecs is None or len(vecs) != len(todo):
                raise KitError(f"encode.engine ray: shard {i} came back with "
                               f"{0 if vecs is None else len(vecs)} vectors for {len(todo)} texts")
            if cache is not None:
                cache.put_many(ns, todo, vecs)
            have.update(zip(todo, vecs))
        shards.write(i, np.stack([have[t] for t in prefixed]), sha, info={"engine": "ray", "encoded": len(todo)})
        add_stats(stats, {"unique": len(have), "cached": len(have) - len(todo), "encoded": len(todo)})

    def take_one(pool):
        try:
            i, vecs, actor_id = pool.get_next_unordered()
        except Exception as e:  # noqa: BLE001 - RayActorError, RayTaskError...: Ray's own exception types
            raise _failed(e) from None
        used.add(actor_id)
        write(i, vecs)

    pool = None
    try:
        # The driver streams the shards: at most 2 x workers of them in flight (memory stays bounded, and no actor
        # waits for the slowest shard of a batch), the cache is looked up and filled here, so actors need no
        # shared storage.
        for i, texts, sha in shards_to_encode(stream(), job.shard_size, shards, stats):
            prefixed = instructed(encoder.spec, job.kind, texts)
            unique = list(dict.fromkeys(prefixed))
            have = cache.get_many(ns, unique) if cache is not None else {}
            todo = [t for t in unique if t not in have]
            pending[i] = (texts, sha, prefixed, have, todo)
            if not todo:
                write(i)
                continue
            if pool is None:
                pool = ActorPool(_start_actors(ray, job, workers, gpus, cpus))
            pool.submit(lambda a, item: a.encode.remote(*item), (i, todo))
            while len(pending) >= 2 * workers:
                take_one(pool)
        while pool is not None and pool.has_next():
            take_one(pool)
        stats["ray"]["actors"] = len(used)
    finally:
        shutdown()
    return stats


def shutdown() -> None:
    """Stop the Ray instance this process started (a cluster it joined is left alone, only disconnected)."""
    global _STARTED_HERE
    try:
        import ray
    except ImportError:
        return
    if ray.is_initialized():
        ray.shutdown()
    _STARTED_HERE = False
