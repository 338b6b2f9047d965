"""`kit train`: validate the data, build and run torchrun, then finish the output folder."""
from __future__ import annotations

import os
import shutil
import sys
from dataclasses import dataclass, replace
from pathlib import Path

from ..io import KitError, file_hash, write_json
from ..logs import StageLog, current_log, is_verbose
from ..modelcard import write_card
from ..modelfolder import MANIFEST_FILE, cast_weights, finish_output, git_revision, local_model_dir, now, \
    package_versions, save_dtype_for, stored_dtype
from ..registry import ModelSpec, ensure_available, resolve
from .command import build_command, cuda_available, format_command
from .data import DataReport, data_summary, validate_training_data
from .options import TrainOptions
from .progress import run_streaming
from .resume import checkpoint_step, latest_checkpoint, make_resume_view
from ..logs import note


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


def fp32_start(name_or_path: str, out: Path, dry_run: bool, notes: list[str]) -> str:
    """The model folder training starts from, in fp32. transformers 5 loads a folder in the dtype it is stored in,
    and the trainer then keeps its weights in that dtype: a folder stored in bf16 or fp16 (every kit-made model, by
    ``save_dtype: auto``) cannot take training's steps -- at lr 1e-5 a weight of ~0.03 moves by ~1e-5 a step, under
    bf16's resolution there (~1e-4), so it comes back unchanged (measured: an update trained 120 steps from a bf16
    model gained +0.0002 MRR@10). Such a folder is copied once beside the output and cast to fp32; mixed precision
    still computes in bf16/fp16. The copy is removed when training finishes."""
    folder = local_model_dir(name_or_path)
    dtype = stored_dtype(folder) if folder is not None else None
    if dtype in (None, "fp32"):
        return name_or_path
    if dry_run:
        notes.append(f"{name_or_path} is stored in {dtype}: the trainer would keep its weights in {dtype}, too coarse "
                     f"for steps of lr 1e-5; cast a copy to fp32 first (kit train on this machine does it)")
        return name_or_path
    from ..embed import weights_fingerprint

    copy = start_copy(out)
    source = f"{folder.resolve()} {weights_fingerprint(folder)}"
    marker = copy / ".kit_source"
    if not (marker.is_file() and marker.read_text(encoding="utf-8") == source):
        tmp = copy.with_name(copy.name + ".tmp")
        shutil.rmtree(tmp, ignore_errors=True)
        shutil.copytree(folder, tmp)
        cast_weights(tmp, "fp32")
        marker_tmp = tmp / ".kit_source"
        marker_tmp.write_text(source, encoding="utf-8")
        shutil.rmtree(copy, ignore_errors=True)
        os.replace(tmp, copy)
    notes.append(f"{name_or_path} is stored in {dtype}: training starts from an fp32 copy ({copy}), since {dtype} "
                 f"weights cannot take steps of lr 1e-5")
    return str(copy)


def start_copy(out: Path) -> Path:
    """Where :func:`fp32_start` keeps its copy for ``out``."""
    return out.parent / f".{out.name}.start-fp32"


def plan(model: str, options: TrainOptions, dry_run: bool, echo) -> Plan:
    _check_inputs(model, options)
    # before torchrun: a missing model is one line, not a child's traceback. A dry run prepares the command for
    # another machine (a GPU cluster): a hub id not on this one is a warning there, and its family still comes
    # from the name.
    warning = ensure_available(model, "base model", dry_run=dry_run)
    if warning:
        echo(f"[kit train] {warning}")
    spec = resolve(model)
    options, report, resume, resume_arg, cuda = prepare_run(options, spec.family, dry_run, echo, "kit train")
    notes: list[str] = []
    start = replace(spec, name_or_path=fp32_start(spec.name_or_path, Path(options.output_dir), dry_run, notes))
    cmd = build_command(start, options, data_path=report.path, resume_from=resume_arg, cuda=cuda,
                        data_rows=report.rows, notes=notes)
    return Plan(spec, options, report, resume, cmd, notes)


def prepare_run(options, family: str, dry_run: bool, echo, label: str):
    """What `kit train` and `kit rerank-train` do before building the command (``options`` has data, output_dir,
    args, and may have deepspeed): validate the data (group size fitted to it), find the checkpoint to resume from and
    refuse a non-empty output folder without one. Returns (options, data report, checkpoint, resume argument,
    cuda)."""
    out = Path(options.output_dir)
    args = dict(options.args or {})
    group = int(args.get("train_group_size", 8))
    titles = getattr(options, "passage_titles", False)
    if titles and not getattr(options, "corpus", None):
        raise KitError(f"{label}: passage_titles needs the chunks their titles come from (train.corpus / --corpus)")
    # FlagEmbedding turns in-batch negatives off per data file, by a name ending in `no_in_batch_neg`
    # (AbsEmbedderSameDatasetTrainDataset): the kit's copy of the data gets that name.
    in_batch = getattr(options, "in_batch_negatives", True)
    clean_name = f"{out.name}.kit_train_data" + ("" if in_batch else "-no_in_batch_neg") + ".jsonl"
    report = validate_training_data(options.data, group, clean_path=out.parent / clean_name, write=not dry_run,
                                    corpus=options.corpus if titles else None, force_copy=not in_batch)
    echo(report.summary())
    if report.train_group_size != group:
        args["train_group_size"] = report.train_group_size
    options = replace(options, args=args)
    resume = latest_checkpoint(out)
    if resume is None and out.is_dir() and any(p for p in out.iterdir() if p.name != ".kit_resume"):
        raise KitError(f"{out}: folder exists, is not empty and has no checkpoint-* to resume from; "
                       f"choose another --output")
    cuda = cuda_available()
    resume_arg = None
    if resume is not None:
        uses_deepspeed = cuda and bool(getattr(options, "deepspeed", None) or args.get("deepspeed"))
        # DeepSpeed checkpoints restore through DeepSpeed's own loader, which does not hit the key bug; the
        # reranker trainer saves checkpoints as the embedder's does (inner model's keys), so the same view serves.
        resume_arg = resume if uses_deepspeed or dry_run else make_resume_view(resume, family)
        echo(f"[{label}] resuming from {resume}")
    return options, report, resume, resume_arg, cuda


def _to_stderr(text: str) -> None:
    """The trainer's own output is progress, not a result: stderr, as it arrives."""
    sys.stderr.write(text)
    sys.stderr.flush()


def training_dtype(command: list[str]) -> str:
    """The precision the trainer ran in, read from the command it was given."""
    return "fp16" if "--fp16" in command else "bf16" if "--bf16" in command else "fp32"


def default_save_dtype(p: Plan) -> str:
    """What ``save_dtype: auto`` means: the mixed precision training ran in (fp16/bf16); after fp32 training, the
    dtype the base model is stored in (a model shipped in fp16 is not handed back at twice its size)."""
    trained = training_dtype(p.command)
    if trained != "fp32":
        return trained
    base_dir = local_model_dir(p.spec.name_or_path)
    return (stored_dtype(base_dir) if base_dir is not None else None) or "fp32"


def write_manifest(out: Path, model: str, p: Plan, started: str, weights: dict | None = None,
                   stage: str = "train") -> None:
    args = {k: v for k, v in zip(p.command, p.command[1:]) if k.startswith("--")}
    write_json(out / MANIFEST_FILE, {
        "stage": stage,
        "command": p.command, "command_line": format_command(p.command),
        "base_model": model, "family": p.spec.family,
        "data": p.report.source, "data_used": p.report.path, "data_sha256": file_hash(p.report.source, n=64),
        "data_rows": p.report.rows, "data_dropped": p.report.dropped,
        "train_group_size": p.report.train_group_size,
        "data_summary": data_summary(p.report.path),
        "trainer_args": {k[2:]: v for k, v in args.items()},   # as the trainer got them (after translation)
        "training_dtype": training_dtype(p.command), "weights": weights,
        "processes": args.get("--nproc_per_node"),
        "resumed_from": str(p.resume) if p.resume else None,
        "notes": p.report.notes + p.notes,
        "packages": package_versions(), "python": sys.version.split()[0], "git_revision": git_revision(),
        "started": started, "finished": now(),
    })


def execute(p: Plan, out: Path, dry_run: bool, echo, result, label: str, what: str) -> bool:
    """Run a plan's torchrun command (`kit train`, `kit rerank-train`): notes, the command itself on a dry run,
    live output, one-line failure. True when this process should finish the output folder (node 0 of a real
    run)."""
    for n in p.notes:
        echo(f"[{label}] note: {n}")
    if dry_run:
        result(format_command(p.command))   # the command is what a dry run produces
        return False
    echo(format_command(p.command))
    env = dict(os.environ)
    env.setdefault("TOKENIZERS_PARALLELISM", "false")
    # The trainer's whole output goes to the stage's log (`kit run`), else to one beside the output folder; stderr
    # shows all of it only with -v (otherwise: the bar, step/loss lines, warnings, errors).
    log = current_log() or StageLog(out.parent / f"{out.name}.kit_train.log", label)
    log.line(format_command(p.command))
    if not is_verbose():
        echo(f"[{label}] the trainer's full output: {log.path} (-v shows it here)")
    try:
        rc = run_streaming(p.command, env=env, echo=_to_stderr, logging_steps=p.options.args.get("logging_steps", 500),
                           start_step=checkpoint_step(p.resume), label=label, log=log, verbose=is_verbose())
    finally:
        if log is not current_log():
            log.close()
    if rc != 0:
        raise KitError(f"{what} failed (torchrun exit status {rc}; full log: {log.path}); "
                       f"command: {format_command(p.command)}")
    if int(p.options.node_rank or 0) != 0:
        return False   # the trainer saves the final model on node 0 only
    shutil.rmtree(out / ".kit_resume", ignore_errors=True)
    return True


def train(model: str, options: TrainOptions, dry_run: bool = False, echo=None, result=None) -> Path:
    """Validate the data, build and run torchrun, then finish the output folder. Returns the output dir.
    ``dry_run`` prints the command and writes nothing. ``echo`` gets progress and the trainer's output (default:
    stderr), ``result`` the outcome (default: stdout)."""
    echo = echo or (note)
    result = result or print
    p = plan(model, options, dry_run, echo)
    out = Path(options.output_dir)
    started = now()
    if not execute(p, out, dry_run, echo, result, "kit train", "training"):
        return out
    finish_output(out, p.spec)
    weights = cast_weights(out, save_dtype_for(options.save_dtype, default_save_dtype(p)))
    shutil.rmtree(start_copy(out), ignore_errors=True)
    write_manifest(out, model, p, started, weights)
    write_card(out)
    result(f"model written to {out} ({weights['dtype']} weights, {weights['weights_bytes'] / 1e6:.1f} MB)")
    return out
