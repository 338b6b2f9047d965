"""`kit train`: fine-tune with FlagEmbedding under torchrun."""
from __future__ import annotations

import click

from ..io import KitError
from ..train import TrainOptions, TrainRun
from ._common import stage_command


@stage_command("train", TrainRun, TrainOptions, section="train")
def train_cmd(run: TrainRun, options: TrainOptions):
    """Fine-tune an embedding model (FlagEmbedding under torchrun), resuming from the last checkpoint.

    \b
    Example:
      kit train --config configs/cpu-small.yaml --data work/data/train_hn.jsonl -o work/model-ft
      kit train --config configs/bge-m3.yaml --nnodes 2 --node-rank 0 --master-addr 10.0.0.1 --dry-run
    """
    from ..train import train

    if not run.model:
        raise KitError("train: no model given (top-level `model:` in --config, or --model)")
    train(run.model, options, dry_run=run.dry_run, echo=click.echo)
