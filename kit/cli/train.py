"""`kit train`: fine-tune with FlagEmbedding under torchrun."""
from __future__ import annotations

import click

from ..io import KitError
from ..train import TrainOptions, TrainRun
from ._common import stage_command


@stage_command("train", TrainRun, TrainOptions, section="train")
def train_cmd(run: TrainRun, options: TrainOptions):
    """Fine-tune an embedding model (FlagEmbedding under torchrun), resuming from the last checkpoint.

    The model folder loads in sentence-transformers, FlagEmbedding, transformers, LangChain and LlamaIndex;
    its README.md (model card) says how, and `kit bench` adds the measured results to it. Weights are saved in
    the training precision (--save-dtype auto); checkpoints stay for resuming.

    \b
    Example:
      kit train --config configs/cpu-small.yaml --data work/data/train_hn.jsonl -o work/model-ft
      kit train --config configs/bge-m3.yaml --nnodes 2 --node-rank 0 --master-addr 10.0.0.1 --dry-run
    """
    from ..train import train

    if not run.model:
        raise KitError("train: no model given (top-level `model:` in --config, or --model)")
    # progress and the trainer's output on stderr; the model folder (or a dry run's command) on stdout
    train(run.model, options, dry_run=run.dry_run, echo=lambda m: click.echo(m, err=True), result=click.echo)
