"""The ray engine: one Ray Data pipeline per job, ``map_batches`` over a pool of encoder actors
(``ActorPoolStrategy(size=workers)``, ``num_gpus`` per actor) on the cluster of ``$RAY_ADDRESS`` (or
``encode.ray_address``; ``local`` starts a private one here).

Ray is an optional extra (``pip install 'kit[ray]'``), imported only when this engine runs. The driver (this
process) walks the shards once, looks their texts up in the embedding cache, and puts each shard's texts and the
ones to encode into Ray's object store as one block (Ray spills it to disk when it fills; the driver keeps only the
references, and actors on any node read them without shared storage). One pipeline over all the blocks means each
actor loads the model once for the whole job; an actor encodes a shard's texts with the same length-sorted batches
as the local engine and returns the vectors; the driver fills the cache and writes the shard files as results
stream back. A cluster that is not there is one line before anything starts; an actor that dies is restarted once
and its shard retried, a second death fails the job with Ray's reason, and the shards already written are kept.
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
    """One model per actor, loaded once for the whole job (the pipeline's actor pool lives as long as the job);
    each call encodes one shard's uncached texts."""

    def __init__(self, job: dict, threads: int = 0):
        import torch

        if threads:
            torch.set_num_threads(threads)
        self.job = EncodeJob(**job)
        self.encoder = self.job.encoder(device="cuda" if self.job.device.startswith("cuda") else "cpu", cache=False)

    def __call__(self, batch: dict) -> dict:
        import ray

        from ..embed import embed_with_cache

        me = ray.get_runtime_context().get_actor_id() or ""
        vecs, dims, counts = [], [], []
        for shard, todo in zip(batch["shard"], batch["todo"]):
            _die_once_for_tests(int(shard))
            todo = [str(t) for t in todo]
            v, _ = embed_with_cache(self.job.namespace, todo, self.encoder._compute, None, self.job.batch_size)
            v = np.ascontiguousarray(v, dtype=np.float32)
            vecs.append(v.tobytes())
            dims.append(v.shape[1] if v.ndim == 2 else 0)
            counts.append(len(todo))
        # the shard's texts and its list to encode go back with the vectors: the driver kept only their references
        return {"shard": np.asarray(batch["shard"]), "texts": batch["texts"], "todo": batch["todo"],
                "vec": np.array(vecs, dtype=object), "dim": np.asarray(dims), "n": np.asarray(counts),
                "actor": np.array([me] * len(counts), dtype=object)}


def _die_once_for_tests(shard: int) -> None:
    """Fault injection: ``KIT_TEST_KILL_SHARD=i`` with ``KIT_TEST_KILL_MARK=FILE`` kills the actor about to encode
    shard ``i`` (``os._exit``, as the OOM killer or a lost node would), once: the file records that it happened."""
    mark = os.environ.get("KIT_TEST_KILL_MARK")
    if mark and os.environ.get("KIT_TEST_KILL_SHARD") == str(shard) and not os.path.exists(mark):
        open(mark, "w").close()
        os._exit(17)


def _shard_block(ray, i: int, prefixed: list[str], todo: list[str]):
    """One shard as a one-row Arrow table in Ray's object store (spilled to disk by Ray when it fills): its texts
    as encoded (instruction applied, in order) and the unique ones the cache lacked. The driver keeps only the
    reference (its memory does not grow with the corpus), and actors on any node read it without shared storage."""
    import pyarrow as pa

    strings = pa.list_(pa.string())
    return ray.put(pa.table({"shard": pa.array([i], pa.int64()), "texts": pa.array([prefixed], strings),
                             "todo": pa.array([todo], strings)}))


class _RayJob:
    """One encoding job on Ray: the driver's side (cache, shard files, stats) of the two passes of :func:`run_ray`."""

    def __init__(self, ray, job: EncodeJob, shards: ShardDir, options: EncodeOptions, encoder):
        res = ray.cluster_resources()
        self.ray, self.job, self.shards, self.encoder = ray, job, shards, encoder
        self.gpus = float(options.gpus_per_worker or 0)
        self.workers = int(options.workers or (max(1, int(res.get("GPU", 0) // max(self.gpus, 1))) if self.gpus
                                               else 1))
        self.cpus = 1.0 if self.gpus else max(1.0, float(int(res.get("CPU", 1) // self.workers)))
        self.cache, self.ns = encoder.cache, job.namespace
        self.stats = {"unique": 0, "cached": 0, "encoded": 0, "workers": self.workers, "shards_reused": 0,
                      "ray": {"gpus_per_worker": self.gpus, "cpus_per_worker": self.cpus}}

    def write(self, i, prefixed, sha, vecs=None, todo=()) -> None:
        unique = list(dict.fromkeys(prefixed))
        have = self.cache.get_many(self.ns, unique) if self.cache is not None else {}
        if todo:
            if vecs is None or len(vecs) != len(todo):
                raise KitError(f"encode.engine ray: shard {i} came back with "
                               f"{0 if vecs is None else len(vecs)} vectors for {len(todo)} texts")
            if self.cache is not None:
                self.cache.put_many(self.ns, todo, vecs)
            have.update(zip(todo, vecs))
        self.shards.write(i, np.stack([have[t] for t in prefixed]), sha, info={"engine": "ray", "encoded": len(todo)})
        add_stats(self.stats, {"unique": len(unique), "cached": len(unique) - len(todo), "encoded": len(todo)})

    def plan(self, stream) -> tuple[list, dict[int, str]]:
        """Pass 1: each shard's texts looked up in the cache (here: actors need no shared storage); a shard with
        nothing to encode is written at once, the others go to the object store as one block each."""
        blocks, sha_of = [], {}
        for i, texts, sha in shards_to_encode(stream(), self.job.shard_size, self.shards, self.stats):
            prefixed = instructed(self.encoder.spec, self.job.kind, texts)
            have = self.cache.get_many(self.ns, list(dict.fromkeys(prefixed))) if self.cache is not None else {}
            todo = [t for t in dict.fromkeys(prefixed) if t not in have]
            if todo:
                blocks.append(_shard_block(self.ray, i, prefixed, todo))
                sha_of[i] = sha
            else:
                self.write(i, prefixed, sha)
        return blocks, sha_of

    def pipeline(self, blocks: list):
        """Pass 2: ONE Ray Data pipeline over every block, so its actor pool (and each actor's model) lives for the
        whole job. An actor that dies is restarted once and its shard retried (max_restarts / max_task_retries)."""
        ray, size = self.ray, max(1, min(self.workers, len(blocks)))
        pool = ({"compute": ray.data.ActorPoolStrategy(size=size)} if hasattr(ray.data, "ActorPoolStrategy")
                else {"concurrency": size})
        threads = max(1, int(self.cpus)) if not self.gpus else 0
        return ray.data.from_arrow_refs(blocks).map_batches(
            EncoderActor, fn_constructor_kwargs={"job": asdict(self.job), "threads": threads}, batch_size=1,
            num_gpus=self.gpus or None, num_cpus=self.cpus, batch_format="numpy", max_restarts=1, max_task_retries=1,
            **pool)

    def collect(self, out, sha_of: dict[int, str]) -> None:
        """Results as actors finish them, each shard written as it comes back; every shard must come back."""
        actors: set[str] = set()
        done = dict.fromkeys(sha_of, False)
        try:
            for row in out.iter_rows():
                i, n, dim = int(row["shard"]), int(row["n"]), int(row["dim"])
                vecs = np.frombuffer(row["vec"], dtype=np.float32).reshape(n, dim)
                actors.add(str(row["actor"]))
                self.write(i, [str(t) for t in row["texts"]], sha_of[i], vecs, [str(t) for t in row["todo"]])
                done[i] = True
        except KitError:
            raise
        except Exception as e:  # noqa: BLE001 - an actor that died twice, a task error: Ray's own types
            first = (str(e).strip().splitlines() or [type(e).__name__])[0][:300]
            raise KitError(f"encode.engine ray: the actors failed ({type(e).__name__}: {first}); the shards "
                           f"already written are kept, run again to encode the rest") from None
        missing = [i for i, d in done.items() if not d]
        if missing:
            raise KitError(f"encode.engine ray: shards {missing[:10]} did not come back; the shards written are "
                           f"kept, run again to encode the rest")
        self.stats["ray"]["actors"] = len(actors)


def run_ray(job: EncodeJob, shards: ShardDir, stream, options: EncodeOptions, encoder) -> dict:
    ray = _import_ray()
    ray.data.DataContext.get_current().enable_progress_bars = False
    logging.getLogger("ray.data").setLevel(logging.WARNING)
    rj = _RayJob(ray, job, shards, options, encoder)
    note(f"[kit] encoding {shards.count} shards with Ray Data ({rj.workers} actors, {rj.gpus:g} GPU / {rj.cpus:g} "
         f"CPU each)")
    try:
        blocks, sha_of = rj.plan(stream)
        if blocks:
            rj.collect(rj.pipeline(blocks), sha_of)
    finally:
        shutdown()
    return rj.stats


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
