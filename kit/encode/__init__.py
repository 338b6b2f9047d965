"""One encoding layer for every stage that encodes a corpus, three ways to run it (``encode.engine``):

``local``     in this process (the default; what the kit always did);
``torchrun``  data-parallel ranks under ``torch.distributed`` launched by torchrun, like training (gloo on CPU,
              nccl on GPUs; several nodes with ``nnodes``/``node_rank``/``master_addr``): rank r of W encodes
              the r-th, (r+W)-th, ... of the shards still to do, rank 0 checks they are all there;
``ray``       one Ray Data ``map_batches`` pipeline per job over an actor pool (``ActorPoolStrategy(size=workers)``,
              ``num_gpus`` per actor; each actor loads the model once) on the cluster of ``$RAY_ADDRESS``
              (optional extra: ``pip install 'kit[ray]'``).

Whichever runs, the input is cut into shards of ``shard_size`` texts in input order and each shard goes through
the same code (:func:`kit.encode.job.encode_shard`: embedding-cache look-up, unique texts, length-sorted
batches), so the engines give the same vectors (tests: max abs difference <= 1e-5 at fp32). Vectors stream to
shard files (:mod:`kit.encode.shards`) instead of one array in memory; a killed job redoes only missing or
damaged shards; the SQLite embedding cache the stages share is read and filled as before.

Usage::

    enc = encode_texts(texts, encoder=LocalEncoder(model), kind="passage", options=EncodeOptions(engine="ray"))
    for start, block in enc.vectors.iter_shards(): index.add(block)
    enc.cleanup()
"""
from __future__ import annotations

import shutil
import time
from dataclasses import dataclass, field
from pathlib import Path

from ..io import KitError, cache_dir, stable_hash
from .job import KINDS, EncodeJob, digest_and_count, source_iter
from .options import ENGINES, EncodeOptions
from .shards import ShardDir, ShardedVectors

__all__ = ["ENGINES", "EncodeOptions", "Encoded", "ShardDir", "ShardedVectors", "encode_texts"]


@dataclass
class Encoded:
    """The result: ``vectors`` (one per input text, in input order) and ``stats``. ``cleanup()`` releases the
    shard folder, and removes it when the kit chose it (not a ``shard_dir`` the user gave)."""

    vectors: ShardedVectors
    stats: dict = field(default_factory=dict)
    shards: ShardDir | None = None
    owned: bool = False

    def cleanup(self) -> None:
        if self.shards is None:
            return
        self.vectors.close()
        self.shards.unlock()
        if self.owned:
            shutil.rmtree(self.shards.root, ignore_errors=True)
        self.shards = None


def engine_device(options: EncodeOptions, encoder) -> str:
    """Where the workers run: Ray actors on GPUs when they get one, else as this process would."""
    if options.engine == "ray":
        return "cuda" if (options.gpus_per_worker or 0) > 0 else "cpu"
    return encoder.device


def _job_encoder(encoder, device: str):
    """``encoder`` as the workers will run it (device and resolved precision), sharing its cache."""
    if device == encoder.device:
        return encoder
    return type(encoder)(encoder.spec, device=device, precision=encoder._precision_arg,
                        batch_size=encoder.batch_size, max_length=encoder.max_length,
                        cache=encoder.cache if encoder.cache is not None else False, progress=encoder.progress)


def encode_texts(texts, *, encoder, kind: str = "passage", options: EncodeOptions | None = None,
                 desc: str | None = None) -> Encoded:
    """Encode ``texts`` (a list, or a function returning a fresh iterator: the input is streamed twice, never
    held whole) with ``encoder`` (a :class:`kit.embed.LocalEncoder`: model, precision, batch size, cache) as
    ``options.engine`` says; ``kind`` picks the model's query or passage instruction."""
    from ..options import validated

    options = validated(options or EncodeOptions(), "encode")
    if kind not in KINDS:
        raise KitError(f"encode: kind must be one of {', '.join(KINDS)}, got {kind!r}")
    if options.engine == "local" and (options.workers or 1) > 1:
        raise KitError("encode.workers > 1 needs encode.engine torchrun or ray (local runs in this process)")
    t0 = time.perf_counter()
    stream = source_iter(texts)
    digest, total = digest_and_count(stream())
    if options.engine == "ray":
        from .ray_engine import connect
        ray_info = connect(options)          # a cluster that is not there: one line, before anything is written
        if options.gpus_per_worker is None:
            options.gpus_per_worker = 1.0 if ray_info["gpus"] > 0 else 0.0
    enc = _job_encoder(encoder, engine_device(options, encoder))
    namespace = enc.namespace
    header = {"namespace": namespace, "model": enc.spec.name_or_path, "kind": kind, "total": total,
              "shard_size": options.shard_size, "texts": digest}
    owned = options.shard_dir is None
    # one sub-folder per (model, kind, texts): the corpus and the queries of one stage, or two corpora, never meet
    root = Path(options.shard_dir or (cache_dir() / "shards")) / f"{kind}-{stable_hash(header)}"
    shards = ShardDir(root, header)
    shards.lock()
    try:
        shards.prepare()
        job = EncodeJob(spec=enc.spec.to_json(), kind=kind, device=enc.device, precision=enc.precision,
                        batch_size=enc.batch_size, max_length=enc.max_length,
                        cache_path=str(enc.cache.path) if enc.cache is not None else None, namespace=namespace,
                        shard_dir=str(shards.root), total=total, shard_size=options.shard_size,
                        head=getattr(enc, "head", "dense"))
        if options.engine == "local":
            from .local import run_local
            stats = run_local(job, shards, stream, enc, desc)
        elif options.engine == "torchrun":
            from .distributed import run_torchrun
            stats = run_torchrun(job, shards, stream, options)
        else:
            from .ray_engine import run_ray
            stats = run_ray(job, shards, stream, options, enc)
        vectors = ShardedVectors(shards)      # every shard there, or one line saying which are not
    except BaseException:
        shards.unlock()
        raise
    stats.update(engine=options.engine, shards=shards.count, shard_size=options.shard_size,
                 shard_dir=str(shards.root), namespace=namespace, precision=enc.precision, device=enc.device,
                 seconds=round(time.perf_counter() - t0, 3))
    if stats.get("encoded"):
        stats["texts_per_second"] = round(stats["encoded"] / max(stats["seconds"], 1e-9), 2)
    return Encoded(vectors, stats, shards, owned)
