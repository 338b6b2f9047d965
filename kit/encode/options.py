"""The ``encode:`` section: how every stage that encodes a corpus runs the encoder (``--engine``, ``--workers``...).

One setting chooses the engine for every command that encodes; the results are the same vectors whichever runs
(see :mod:`kit.encode`)."""
from __future__ import annotations

import contextlib
import contextvars
from dataclasses import dataclass
from pathlib import Path
from typing import ClassVar

from ..options import option

ENGINES = ("local", "torchrun", "ray")
SHARD_SIZE = 20_000   # texts per shard file: 80 MB of fp32 vectors at 1024 dims, the memory one worker holds


def _positive(v) -> str | None:
    return None if v is None or v >= 1 else "must be >= 1"


def _not_negative(v) -> str | None:
    return None if v is None or v >= 0 else "must be >= 0"


@dataclass
class EncodeOptions:
    """The ``encode:`` section; field names equal its keys (and the flags of every command that encodes)."""

    SECTION: ClassVar[str] = "encode"   # read from this YAML section by `--config` (kit/cli/_common.py)

    engine: str = option("local", choices=ENGINES,
                         help="How the corpus is encoded: local (in this process), torchrun (data-parallel ranks "
                              "under torch.distributed: gloo on CPU, nccl on GPUs, one node or many) or ray (Ray "
                              "Data actors on the cluster of $RAY_ADDRESS; pip install 'kit[ray]'). Same vectors "
                              "whichever runs.")
    workers: int | None = option(None, check=_positive,
                                 help="Ranks per node (torchrun) or actors (ray); default: one per GPU, else 1.")
    shard_size: int = option(SHARD_SIZE, check=_positive,
                             help="Texts per shard file: embeddings stream to shard files (vectors, ids, the "
                                  "model's weight fingerprint, a checksum), and a killed job redoes only the "
                                  "missing shards.")
    shard_dir: str | None = option(None, path=True,
                                   help="Where the shard files go (shared storage for several nodes), one "
                                        "sub-folder per model, kind and texts; kept after the run and reused by the "
                                        "next one with the same model and texts. Default: $KIT_CACHE_DIR/shards, "
                                        "the sub-folder removed once the stage is done.")
    nnodes: int = option(1, check=_positive, help="torchrun: nodes (each runs the torchrun command the kit prints, "
                         "with its --node_rank; SLURM: one srun task per node).")
    node_rank: int = option(0, check=_not_negative, help="torchrun: this node's rank.")
    master_addr: str | None = option(None, help="torchrun: address of node 0 (several nodes).")
    master_port: int | None = option(None, help="torchrun: port on node 0 (default 29500 on several nodes, a free "
                                     "port on one).")
    ray_address: str | None = option(None, help="ray: the cluster (default $RAY_ADDRESS; `local` starts a "
                                     "private one on this machine with `workers` CPUs).")
    gpus_per_worker: float | None = option(None, check=_not_negative,
                                           help="ray: num_gpus per actor (default 1 when the cluster has GPUs, "
                                                "else 0).")


# --engine, --workers... given to a command that reads a whole config (kit run, update, drift): they override its
# `encode:` section for every stage the command runs (a context variable: the stages read the config, not the CLI)
_FLAGS: contextvars.ContextVar[dict] = contextvars.ContextVar("kit_encode_flags", default={})


@contextlib.contextmanager
def flags_over_config(given: dict):
    """Within the block, the flags in ``given`` (field name -> value, only those the user typed) win over every
    config's `encode:` section; a shard folder typed on the command line is taken from the working directory."""
    given = dict(given)
    if given.get("shard_dir"):
        given["shard_dir"] = str(Path(given["shard_dir"]).resolve())
    token = _FLAGS.set(given)
    try:
        yield
    finally:
        _FLAGS.reset(token)


def _section(p) -> dict | None:
    flags = _FLAGS.get()
    return {**(p.cfg.get("encode") or {}), **flags} if flags else p.cfg.get("encode")


def scale_options(p) -> tuple:
    """The config's top-level `encode:` and `search:` sections of a :class:`kit.pipeline.Pipeline` (search:
    kit/search.py): how every stage that encodes a corpus runs (local, torchrun, Ray) and which index it searches
    past exact_max."""
    from ..options import from_section
    from ..search import SearchOptions

    return (from_section(EncodeOptions, _section(p), f"{p.config_path}: encode", resolve_path=p.resolve_path),
            from_section(SearchOptions, p.cfg.get("search"), f"{p.config_path}: search"))


def layer_options(p) -> "EncodeOptions | None":
    """The `encode:` section when the config has one (a corpus is then encoded through the layer, kit/encode/),
    else None: the stage encodes in this process, as before the layer existed."""
    return scale_options(p)[0] if _section(p) else None


def wanted(options: "EncodeOptions") -> "EncodeOptions | None":
    """Command-line flags: the layer when they ask for more than this process (another engine or a shard folder)."""
    return options if options.engine != "local" or options.shard_dir else None
