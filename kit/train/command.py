"""The exact ``torchrun -m FlagEmbedding...`` command line for a model family and a ``train:`` section.

The kit does not reimplement training: it builds the command with the flags the model family needs (from
:mod:`kit.registry`), and adapts what the installed stack rejects (transformers 5: ``--overwrite_output_dir``,
``--warmup_ratio``) or what the machine cannot do (fp16/DeepSpeed without CUDA).
"""
from __future__ import annotations

import math
import shlex
import sys
from pathlib import Path

from ..device import cuda_available  # noqa: F401 (re-exported: kit.train.cuda_available)
from ..io import KitError
from ..registry import ModelSpec
from .options import TrainOptions

# transformers 5 rejects these; warmup_ratio is translated into warmup_steps.
REJECTED_ARGS = {"overwrite_output_dir"}
OWN_OPTIONS = ("model_name_or_path", "train_data", "output_dir", "resume_from_checkpoint")


def torchrun_executable() -> str:
    exe = Path(sys.executable).parent / "torchrun"
    return str(exe) if exe.exists() else "torchrun"


def format_command(cmd: list[str]) -> str:
    return " ".join(shlex.quote(c) for c in cmd)


def steps_per_epoch(rows: int, batch: int, world: int, accum: int) -> int:
    return max(1, math.ceil(math.ceil(rows / max(1, batch * world)) / max(1, accum)))


def processes(options: TrainOptions, cuda: bool) -> int:
    if options.nproc in (None, "auto"):
        if not cuda:
            return 1
        import torch
        return max(1, torch.cuda.device_count())
    return int(options.nproc)


def trainer_args(options: TrainOptions, world: int, data_rows: int | None, notes: list[str]) -> dict:
    """``train.args`` as FlagEmbedding will get them, with what the installed stack rejects translated."""
    args = {k: v for k, v in (options.args or {}).items() if k not in ("fp16", "bf16", "deepspeed")}
    for bad in REJECTED_ARGS & set(args):
        args.pop(bad)
        notes.append(f"dropped --{bad}: transformers 5 rejects it (kit resumes from checkpoints instead)")
    for k in OWN_OPTIONS:
        if k in args:
            raise KitError(f"train.args.{k}: set it with the kit's own option, not under args")
    if world == 1 and args.get("negatives_cross_device"):
        # Nothing to share negatives with; skip the all-gather FlagEmbedding would set up for it.
        args.pop("negatives_cross_device")
        notes.append("dropped --negatives_cross_device: a single process has no other devices")
    if "warmup_ratio" in args:
        ratio = float(args.pop("warmup_ratio"))
        max_steps = int(args.get("max_steps", -1) or -1)
        if max_steps > 0:
            total = max_steps
        elif data_rows:
            per_epoch = steps_per_epoch(data_rows, int(args.get("per_device_train_batch_size", 8)), world,
                                        int(args.get("gradient_accumulation_steps", 1)))
            total = math.ceil(per_epoch * float(args.get("num_train_epochs", 3)))
        else:
            total = 0
        args["warmup_steps"] = int(round(ratio * total))
        notes.append(f"warmup_ratio {ratio} -> --warmup_steps {args['warmup_steps']} "
                     f"(transformers 5 rejects --warmup_ratio)")
    if not getattr(options, "in_batch_negatives", True):
        # the data file's name turns in-batch negatives off only in FlagEmbedding's same-dataset sampler
        args["same_dataset_within_batch"] = True
    args.setdefault("report_to", "none")   # no wandb/tensorboard surprises; the kit streams the log itself
    return args


def precision_flags(options: TrainOptions, cuda: bool, notes: list[str]) -> list[str]:
    """Mixed precision and DeepSpeed where CUDA exists; on CPU only bf16 (and --use_cpu)."""
    args = options.args or {}
    fp16 = bool(args.get("fp16", options.fp16))
    bf16 = bool(args.get("bf16", options.bf16))
    deepspeed = args.get("deepspeed", options.deepspeed)
    if cuda:
        return (["--fp16", "True"] if fp16 else []) + (["--bf16", "True"] if bf16 else []) + \
            (["--deepspeed", str(deepspeed)] if deepspeed else [])
    dropped = [n for n, on in (("fp16", fp16), ("DeepSpeed", bool(deepspeed))) if on]
    if dropped:
        notes.append(f"no CUDA: training on CPU without {' and '.join(dropped)}")
    return ["--use_cpu", "True"] + (["--bf16", "True"] if bf16 else [])


def launcher(options: TrainOptions, nproc: int) -> list[str]:
    cmd = [torchrun_executable(), "--nproc_per_node", str(nproc)]
    if int(options.nnodes or 1) > 1 or options.master_addr:
        cmd += ["--nnodes", str(options.nnodes or 1), "--node_rank", str(options.node_rank or 0)]
        if options.master_addr:
            cmd += ["--master_addr", str(options.master_addr)]
        cmd += ["--master_port", str(options.master_port or 29500)]
    elif options.master_port:
        cmd += ["--master_port", str(options.master_port)]
    return cmd


def _flag_value(v) -> list[str]:
    if isinstance(v, (list, tuple)):
        return [str(x) for x in v]
    return [str(v)]


def build_command(spec: ModelSpec, options: TrainOptions, data_path: str | None = None,
                  resume_from: str | None = None, cuda: bool | None = None,
                  data_rows: int | None = None, notes: list[str] | None = None) -> list[str]:
    """The exact ``torchrun ... -m FlagEmbedding...`` command line for ``spec`` and ``options``."""
    notes = notes if notes is not None else []
    cuda = cuda_available() if cuda is None else cuda
    nproc = processes(options, cuda)
    args = trainer_args(options, nproc * int(options.nnodes or 1), data_rows, notes)
    cmd = launcher(options, nproc)
    cmd += ["-m", spec.finetune_module,
            "--model_name_or_path", spec.name_or_path,
            "--train_data", str(data_path or options.data),
            "--output_dir", str(options.output_dir)]
    cmd += spec.training_flags()
    cmd += precision_flags(options, cuda, notes)
    for k, v in args.items():
        if v is not None:
            cmd += [f"--{k}", *_flag_value(v)]
    if resume_from:
        cmd += ["--resume_from_checkpoint", str(resume_from)]
    return cmd
