"""`kit rerank-train`: fine-tune a cross-encoder (reranker) with FlagEmbedding under torchrun."""
from __future__ import annotations

import click

from ..rerank_train import RerankTrainOptions, RerankTrainRun
from ._common import stage_command


@stage_command("rerank-train", RerankTrainRun, RerankTrainOptions, section="rerank_train")
def rerank_train_cmd(run: RerankTrainRun, options: RerankTrainOptions):
    """Fine-tune a cross-encoder on training rows (query, pos, neg), resuming from the last checkpoint.

    The result loads in FlagEmbedding's FlagReranker, sentence-transformers' CrossEncoder and as a kit
    reranker (local:FOLDER in `kit mine --reranker` and `bench.rerankers`).

    \b
    Examples:
      kit rerank-train --model ../shared/models/zh-e5-small --data work/data/train_hn.jsonl -o work/reranker
      kit rerank-train --config configs/bge-reranker-base.yaml --data work/data/train_hn.jsonl -o work/rr --dry-run
    """
    from ..rerank_train import rerank_train

    rerank_train(options, dry_run=run.dry_run, echo=lambda m: click.echo(m, err=True), result=click.echo)
