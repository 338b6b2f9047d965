"""The exact ``torchrun -m FlagEmbedding.finetune.reranker.encoder_only.base`` command line.

The launcher, process count, precision flags and the translation of what transformers 5 rejects are
`kit train`'s own (:mod:`kit.train.command`); what differs is the module and the arguments: a cross-encoder has
no pooling, instruction or temperature, so only the reranker trainer's own arguments are passed, and an unknown
one is refused here (FlagEmbedding's parser would stop torchrun with a traceback).
"""
from __future__ import annotations

import dataclasses
import difflib

from ..io import KitError
from ..train.command import cuda_available, launcher, precision_flags, processes, trainer_args
from .options import RerankTrainOptions

RERANK_MODULE = "FlagEmbedding.finetune.reranker.encoder_only.base"


def reranker_argument_names() -> set[str]:
    """Every argument FlagEmbedding's encoder-only reranker trainer parses (its three HfArgumentParser
    dataclasses)."""
    from FlagEmbedding.abc.finetune.reranker import (AbsRerankerDataArguments, AbsRerankerModelArguments,
                                                     AbsRerankerTrainingArguments)

    return {f.name for cls in (AbsRerankerModelArguments, AbsRerankerDataArguments, AbsRerankerTrainingArguments)
            for f in dataclasses.fields(cls)}


def check_args(args: dict) -> None:
    known = reranker_argument_names() | {"warmup_ratio", "overwrite_output_dir"}   # translated / dropped later
    bad = [k for k in args if k not in known]
    if bad:
        hints = [f"rerank_train.args.{k}: not an argument of FlagEmbedding's reranker trainer"
                 + (f"; did you mean {m[0]}?" if (m := difflib.get_close_matches(k, known, n=1)) else "")
                 for k in bad]
        raise KitError("\n".join(hints))


def _values(v) -> list[str]:
    return [str(x) for x in v] if isinstance(v, (list, tuple)) else [str(v)]


def build_rerank_command(model: str, options: RerankTrainOptions, data_path: str | None = None,
                         resume_from: str | None = None, cuda: bool | None = None, data_rows: int | None = None,
                         notes: list[str] | None = None) -> list[str]:
    notes = notes if notes is not None else []
    cuda = cuda_available() if cuda is None else cuda
    check_args(options.args or {})
    nproc = processes(options, cuda)
    args = trainer_args(options, nproc * int(options.nnodes or 1), data_rows, notes)
    cmd = launcher(options, nproc) + ["-m", RERANK_MODULE, "--model_name_or_path", str(model),
                                      "--train_data", str(data_path or options.data),
                                      "--output_dir", str(options.output_dir)]
    cmd += precision_flags(options, cuda, notes)
    for k, v in args.items():
        if v is not None:
            cmd += [f"--{k}", *_values(v)]
    if resume_from:
        cmd += ["--resume_from_checkpoint", str(resume_from)]
    return cmd
