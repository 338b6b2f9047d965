"""The ray engine: Ray Data ``map_batches`` over a pool of encoder actors (``concurrency=workers``, ``num_gpus`` per
actor) on the cluster of ``$RAY_ADDRESS`` (or ``encode.ray_address``; ``local`` starts a private one here).

Ray is an optional extra (``pip install 'kit[ray]'``), imported only when this engine runs. The driver (this
process) reads the texts a window of shards at a time (2 x workers shards: memory stays bounded), looks them up in
the embedding cache, and sends each shard's uncached texts to the actors as one item; an actor encodes them with
the same length-sorted batches as the local engine and returns the vectors; the driver fills the cache and writes
the shard files (the actors need no shared storage). A cluster that is not there is one line before anything
starts; an actor that dies fails the job with Ray's reason, and the shards already written are kept.
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
        import ray.data  # noqa: F401
    except ImportError:
        raise KitError("encode.engine ray needs Ray Data, an optional extra: pip install 'kit[ray]' "
                       "(or pip install 'ray[data]'); or use engine local or torchrun") from None
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
    """One model per actor; each call encodes whole shards (their uncached texts, instruction applied)."""

    def __init__(self, job: dict, threads: int = 0):
        import torch

        if threads:
            torch.set_num_threads(threads)
        self.job = EncodeJob(**job)
        self.encoder = self.job.encoder(device="cuda" if self.job.device.startswith("cuda") else "cpu", cache=False)

    def __call__(self, batch: dict) -> dict:
        from ..embed import embed_with_cache

        vecs, dims, counts = [], [], []
        for texts in batch["texts"]:
            texts = [str(t) for t in texts]
            v, _ = embed_with_cache(self.job.namespace, texts, self.encoder._compute, None, self.job.batch_size)
            v = np.ascontiguousarray(v, dtype=np.float32)
            vecs.append(v.tobytes())
            dims.append(v.shape[1] if v.ndim == 2 else 0)
            counts.append(len(texts))
        return {"shard": np.asarray(batch["shard"]), "vec": np.array(vecs, dtype=object),
                "dim": np.asarray(dims), "n": np.asarray(counts)}


def _encode_window(ray, window, job: EncodeJob, workers: int, gpus: float, cpus: float) -> dict[int, np.ndarray]:
    items = [{"shard": i, "texts": todo} for i, _, _, todo in window if todo]
    if not items:
        return {}
    ds = ray.data.from_items(items, override_num_blocks=len(items))
    threads = max(1, int(cpus)) if not gpus else 0
    size = max(1, min(workers, len(items)))
    pool = ({"compute": ray.data.ActorPoolStrategy(size=size)} if hasattr(ray.data, "ActorPoolStrategy")
            else {"concurrency": size})
    out = ds.map_batches(EncoderActor, fn_constructor_kwargs={"job": asdict(job), "threads": threads},
                         batch_size=1, num_gpus=gpus or None, num_cpus=cpus, batch_format="numpy", **pool)
    got = {}
    try:
        for row in out.iter_rows():
            n, dim = int(row["n"]), int(row["dim"])
            got[int(row["shard"])] = np.frombuffer(row["vec"], dtype=np.float32).reshape(n, dim)
    except Exception as e:  # noqa: BLE001 - an actor that died, a task error: Ray's own exception types
        first = (str(e).strip().splitlines() or [type(e).__name__])[0][:300]
        raise KitError(f"encode.engine ray: the actors failed ({type(e).__name__}: {first}); the shards already "
                       f"written are kept, run again to encode the rest") from None
    return got


def run_ray(job: EncodeJob, shards: ShardDir, stream, options: EncodeOptions, encoder) -> dict:
    ray = _import_ray()
    ctx = ray.data.DataContext.get_current()
    ctx.enable_progress_bars = False
    logging.getLogger("ray.data").setLevel(logging.WARNING)
    res = ray.cluster_resources()
    gpus = float(options.gpus_per_worker or 0)
    workers = int(options.workers or (max(1, int(res.get("GPU", 0) // max(gpus, 1))) if gpus else 1))
    cpus = 1.0 if gpus else max(1.0, float(int(res.get("CPU", 1) // workers)))
    cache, ns = encoder.cache, job.namespace
    stats = {"unique": 0, "cached": 0, "encoded": 0, "workers": workers, "shards_reused": 0,
             "ray": {"gpus_per_worker": gpus, "cpus_per_worker": cpus}}
    note(f"[kit] encoding {shards.count} shards with Ray Data ({workers} actors, {gpus:g} GPU / {cpus:g} CPU each)")

    def flush(window):
        got = _encode_window(ray, window, job, workers, gpus, cpus)
        for i, texts, sha, todo in window:
            prefixed = instructed(encoder.spec, job.kind, texts)
            unique = list(dict.fromkeys(prefixed))
            have = cache.get_many(ns, unique) if cache is not None else {}
            if todo:
                vecs = got.get(i)
                if vecs is None or len(vecs) != len(todo):
                    raise KitError(f"encode.engine ray: shard {i} came back with "
                                   f"{0 if vecs is None else len(vecs)} vectors for {len(todo)} texts")
                if cache is not None:
                    cache.put_many(ns, todo, vecs)
                have.update(zip(todo, vecs))
            shards.write(i, np.stack([have[t] for t in prefixed]), sha,
                         info={"engine": "ray", "encoded": len(todo)})
            add_stats(stats, {"unique": len(unique), "cached": len(unique) - len(todo), "encoded": len(todo)})

    try:
        window = []
        for i, texts, sha in shards_to_encode(stream(), job.shard_size, shards, stats):
            prefixed = instructed(encoder.spec, job.kind, texts)
            unique = list(dict.fromkeys(prefixed))
            have = cache.get_many(ns, unique) if cache is not None else {}
            window.append((i, texts, sha, [t for t in unique if t not in have]))
            if len(window) >= 2 * workers:
                flush(window)
                window = []
        if window:
            flush(window)
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
