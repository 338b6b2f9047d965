"""`kit adapter`: train a query adapter over any embedding provider (frozen corpus embeddings)."""
from __future__ import annotations

import click

from ..adapter import AdapterFiles, AdapterOptions
from ..encode.options import EncodeOptions
from ._common import stage_command


@stage_command("adapter", AdapterFiles, AdapterOptions, EncodeOptions, section="adapter", section_cls=AdapterOptions)
def adapter_cmd(files: AdapterFiles, options: AdapterOptions, encode: EncodeOptions):
    """Train a linear (or residual two-layer) map on query embeddings; documents stay frozen.

    The corpus is embedded once through the provider's cache, so "fine-tuning" an API model costs one
    corpus embedding. Use the result in `kit bench --model NAME=adapter:ADAPTER_DIR`.

    \b
    Example:
      kit adapter --provider openai:text-embedding-ada-002 --train work/data/train_hn.jsonl \\
          --corpus work/corpus.jsonl -o work/adapter-ada --epochs 30
      kit adapter --provider local:../shared/models/zh-e5-small --train work/data/train_hn.jsonl \\
          --corpus work/corpus.jsonl -o work/adapter-e5 --hidden 256
      kit adapter --provider local:BAAI/bge-large-zh-v1.5 --train train_hn.jsonl --corpus corpus.jsonl \
          -o adapter-bge --engine torchrun --workers 8      # the corpus encoded by 8 ranks (local models)
    """
    from ..adapter import train_adapter
    from ..encode.options import wanted

    res = train_adapter(files.provider, files.train, files.corpus, files.output, options, encode=wanted(encode))
    click.echo(f"adapter saved to {res.out_dir}: held-out MRR@10 {res.heldout_mrr10_base:.4f} -> "
               f"{res.heldout_mrr10_adapter:.4f} (best epoch {res.best_epoch}/{res.epochs_run})")
