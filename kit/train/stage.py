"""`kit train`: validate the data, build and run torchrun, then finish the output folder."""
from __future__ import annotations

import os
import shutil
import sys
from dataclasses import dataclass, replace
from pathlib import Path

from ..io import KitError, file_hash, write_json
from ..modelfolder import MANIFEST_FILE, finish_output, git_revision, now, package_versions
from ..registry import ModelSpec, resolve
from .command import build_command, cuda_available, format_command
from .data import DataReport, validate_training_data
from .options import TrainOptions
from .progress import run_streaming
from .resume import checkpoint_step, latest_checkpoint, make_resume_view


@dataclass
class Plan:
    """Everything decided before torchrun starts."""

    spec: ModelSpec
    options: TrainOptions
    report: DataReport
    resume: Path | None
    command: list[str]
    notes: list[str]


def _check_inputs(model: str, options: TrainOptions) -> None:
    if not model:
        raise KitError("train: no model given (top-level `model:` in the config, or --model)")
    if not options.data:
        raise KitError("train: no training data given (train.data in the config, or --data)")
    if not options.output_dir:
        raise KitError("train: no output folder given (train.output_dir in the config, or --output)")


def plan(model: str, options: TrainOptions, dry_run: bool, echo) -> Plan:
    _check_inputs(model, options)
    spec = resolve(model)
    out = Path(options.output_dir)
    args = dict(options.args or {})
    group = int(args.get("train_group_size", 8))
    report = validate_training_data(options.data, group, clean_path=out.parent / f"{out.name}.kit_train_data.jsonl",
                                    write=not dry_run)
    echo(report.summary())
    if report.train_group_size != group:
        args["train_group_size"] = report.train_group_size
    options = replace(options, args=args)
    resume = latest_checkpoint(out)
    if resume is None and out.is_dir() and any(p for p in out.iterdir() if p.name != ".kit_resume"):
        raise KitError(f"{out}: folder exists, is not empty and has no checkpoint-* to resume from; "
                       f"choose another --output")
    notes: list[str] = []
    cuda = cuda_available()
    resume_arg = None
    if resume is not None:
        uses_deepspeed = cuda and bool(options.deepspeed or args.get("deepspeed"))
        # DeepSpeed checkpoints restore through DeepSpeed's own loader, which does not hit the key bug.
        resume_arg = resume if uses_deepspeed or dry_run else make_resume_view(resume, spec.family)
        echo(f"[kit train] resuming from {resume}")
    cmd = build_command(spec, options, data_path=report.path, resume_from=resume_arg, cuda=cuda,
                        data_rows=report.rows, notes=notes)
    return Plan(spec, options, report, resume, cmd, notes)


def write_manifest(out: Path, model: str, p: Plan, started: str) -> None:
    write_json(out / MANIFEST_FILE, {
        "command": p.command, "command_line": format_command(p.command),
        "base_model": model, "family": p.spec.family,
        "data": p.report.source, "data_used": p.report.path, "data_sha256": file_hash(p.report.source, n=64),
        "data_rows": p.report.rows, "data_dropped": p.report.dropped,
        "train_group_size": p.report.train_group_size,
        "resumed_from": str(p.resume) if p.resume else None,
        "notes": p.report.notes + p.notes,
        "packages": package_versions(), "python": sys.version.split()[0], "git_revision": git_revision(),
        "started": started, "finished": now(),
    })


def train(model: str, options: TrainOptions, dry_run: bool = False, echo=print) -> Path:
    """Validate the data, build and run torchrun, then finish the output folder. Returns the output dir.
    ``dry_run`` prints the command and writes nothing."""
    p = plan(model, options, dry_run, echo)
    for n in p.notes:
        echo(f"[kit train] note: {n}")
    echo(format_command(p.command))
    out = Path(options.output_dir)
    if dry_run:
        return out
    env = dict(os.environ)
    env.setdefault("TOKENIZERS_PARALLELISM", "false")
    started = now()
    rc = run_streaming(p.command, env=env, logging_steps=p.options.args.get("logging_steps", 500),
                       start_step=checkpoint_step(p.resume))
    if rc != 0:
        raise KitError(f"training failed (torchrun exit status {rc}); command: {format_command(p.command)}")
    if int(options.node_rank or 0) != 0:
        return out   # the trainer saves the final model on node 0 only
    shutil.rmtree(out / ".kit_resume", ignore_errors=True)
    finish_output(out, p.spec)
    write_manifest(out, model, p, started)
    echo(f"[kit train] model written to {out}")
    return out
