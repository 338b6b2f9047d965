"""`kit adapter`: train a query adapter over any embedding provider (frozen corpus embeddings)."""
from __future__ import annotations

import click

from ..adapter import AdapterFiles, AdapterOptions
from ._common import stage_command


@stage_command("adapter", AdapterFiles, AdapterOptions, section="adapter")
def adapter_cmd(files: AdapterFiles, options: AdapterOptions):
    """Train a linear (or residual two-layer) map on query embeddings; documents stay frozen.

    The corpus is embedded once through the provider's cache, so "fine-tuning" an API model costs one
    corpus embedding. Use the result in `kit bench --model NAME=adapter:ADAPTER_DIR`.

    \b
    Example:
      kit adapter --provider openai:text-embedding-ada-002 --train work/data/train_hn.jsonl \\
          --corpus work/corpus.jsonl -o work/adapter-ada --epochs 30
      kit adapter --provider local:../shared/models/zh-e5-small --train work/data/train_hn.jsonl \\
          --corpus work/corpus.jsonl -o work/adapter-e5 --hidden 256
    """
    from ..adapter import train_adapter

    res = train_adapter(files.provider, files.train, files.corpus, files.output, options)
    click.echo(f"adapter saved to {res.out_dir}: held-out MRR@10 {res.heldout_mrr10_base:.4f} -> "
               f"{res.heldout_mrr10_adapter:.4f} (best epoch {res.best_epoch}/{res.epochs_run})")
