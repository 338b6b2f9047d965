"""`kit rerank-train`: validate the data, build and run torchrun with FlagEmbedding's reranker trainer, resume from
the last checkpoint, then finish the folder so it loads in FlagReranker, CrossEncoder and the kit's local reranker.

The plan/run/finish story is `kit train`'s, through its public pieces: data validation (group size fitted to the
negatives, a clean copy when rows must be dropped), the transformers-5 resume view, live output with step
summaries, and the manifest.
"""
from __future__ import annotations

import shutil
from dataclasses import replace
from pathlib import Path

from ..formats import read_training_rows
from ..io import KitError, ReadReport, write_json
from ..modelfolder import cast_weights, now, save_dtype_for
from ..providers.rerankers import RERANKER_FILE
from ..registry import ModelSpec, ensure_available
from ..train.stage import Plan, default_save_dtype, execute, fp32_start, prepare_run, start_copy, write_manifest
from .command import RERANK_MODULE, build_rerank_command, check_args
from .options import RerankTrainOptions
from ..logs import note

FAMILY = "cross-encoder"


def _check_inputs(o: RerankTrainOptions) -> None:
    for value, what in ((o.model, "no base model given (rerank_train.model, the top-level `model:`, or --model)"),
                        (o.data, "no training data given (rerank_train.data in the config, or --data)"),
                        (o.output_dir, "no output folder given (rerank_train.output_dir in the config, or --output)")):
        if not value:
            raise KitError(f"rerank-train: {what}")


def check_distillation(path: str, args: dict) -> None:
    """knowledge_distillation needs pos_scores/neg_scores on every row (FlagEmbedding fails deep inside)."""
    if not str(args.get("knowledge_distillation", "")).lower() in ("true", "1", "yes"):
        return
    rows = read_training_rows(path, ReadReport())
    missing = sum(1 for _, r in rows if "pos_scores" not in r or "neg_scores" not in r)
    if missing:
        raise KitError(f"{path}: knowledge_distillation needs pos_scores/neg_scores on every row; {missing} of "
                       f"{len(rows)} rows have none (mine with a reranker: `kit mine --reranker ...`)")


def plan(o: RerankTrainOptions, dry_run: bool, echo) -> Plan:
    _check_inputs(o)
    # one line, not a traceback from inside torchrun; a dry run (a command for another machine) only warns when a
    # hub id's weights are not on this one
    warning = ensure_available(o.model, "reranker base model", dry_run=dry_run)
    if warning:
        echo(f"[kit rerank-train] {warning}")
    check_args(o.args or {})
    check_distillation(o.data, dict(o.args or {}))
    o, report, resume, resume_arg, cuda = prepare_run(o, FAMILY, dry_run, echo, "kit rerank-train")
    notes: list[str] = []
    start = fp32_start(str(o.model), Path(o.output_dir), dry_run, notes)   # a kit-made (bf16) reranker trains too
    cmd = build_rerank_command(start, o, data_path=report.path, resume_from=resume_arg, cuda=cuda,
                               data_rows=report.rows, notes=notes)
    spec = ModelSpec(name_or_path=str(o.model), family=FAMILY, finetune_module=RERANK_MODULE)
    return Plan(spec, o, report, resume, cmd, notes)


def finish_reranker(out: Path, o: RerankTrainOptions) -> None:
    """kit_reranker.json: the length the model was trained on, which the kit's local reranker scores with."""
    args = o.args or {}
    write_json(out / RERANKER_FILE, {
        "kind": FAMILY, "base_model": str(o.model),
        "max_length": int(args.get("query_max_len", 32)) + int(args.get("passage_max_len", 128)),
        "score": "logit (FlagReranker compute_score; sigmoid = CrossEncoder.predict)"})


def rerank_train(o: RerankTrainOptions, dry_run: bool = False, echo=None, result=None) -> Path:
    """Fine-tune a cross-encoder; returns the output folder. ``dry_run`` prints the command and writes nothing.
    ``echo`` gets progress and the trainer's output (default: stderr), ``result`` the outcome (default: stdout)."""
    echo = echo or (note)
    result = result or print
    p = plan(o, dry_run, echo)
    out = Path(o.output_dir)
    started = now()
    if not execute(p, out, dry_run, echo, result, "kit rerank-train", "reranker training"):
        return out
    finish_reranker(out, p.options)
    weights = cast_weights(out, save_dtype_for(o.save_dtype, default_save_dtype(p)))   # as `kit train` does
    shutil.rmtree(start_copy(out), ignore_errors=True)
    write_manifest(out, str(o.model), p, started, weights, stage="rerank_train")
    result(f"cross-encoder written to {out} ({weights['dtype']} weights, {weights['weights_bytes'] / 1e6:.1f} MB)")
    return out


def run_in_pipeline(p, o: RerankTrainOptions, data: Path) -> dict:
    """`kit run`'s rerank_train stage: the run's training rows -> <workdir>/models/reranker. The base model is
    the section's own (resolved like the top-level one: relative to the config file) or the top-level model."""
    model = o.model or p.model
    if model != p.model and p.resolve_path(model).exists():
        model = str(p.resolve_path(model))
    out = p.wd.root / "models" / "reranker"
    o = replace(o, model=model, data=str(data), output_dir=str(out))
    rerank_train(o, echo=note,
                 result=note)
    return {"reranker": str(out), "base_model": model}
