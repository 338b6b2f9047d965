"""`kit adapter`: train a query adapter over any embedding provider (frozen corpus embeddings)."""
from __future__ import annotations

import click

from ..adapter import AdapterOptions
from ._common import handle_errors, main

_DEFAULTS = AdapterOptions()


@main.command("adapter")
@click.option("--provider", required=True, help="Base provider spec: openai:MODEL, dashscope:MODEL, local:PATH.")
@click.option("--train", "train_path", required=True, type=click.Path(exists=True, dir_okay=False),
              help="train.jsonl / train_hn.jsonl rows (query, pos, neg, pos_ids).")
@click.option("--corpus", required=True, type=click.Path(exists=True, dir_okay=False), help="corpus.jsonl (id, text).")
@click.option("--output", "-o", required=True, help="Adapter folder (adapter.json + adapter.npz).")
@click.option("--epochs", default=_DEFAULTS.epochs, show_default=True, type=int)
@click.option("--lr", default=_DEFAULTS.lr, show_default=True, type=float)
@click.option("--hidden", default=_DEFAULTS.hidden, show_default=True, type=int,
              help="> 0: two-layer residual adapter.")
@click.option("--temperature", default=_DEFAULTS.temperature, show_default=True, type=float)
@click.option("--batch-size", default=_DEFAULTS.batch_size, show_default=True, type=int)
@click.option("--heldout-by", type=click.Choice(["query", "doc"]), default=_DEFAULTS.heldout_by, show_default=True,
              help="Early-stopping slice: random queries, or whole documents.")
@click.option("--base-url", default=None, help="OpenAI-compatible server for API providers.")
@click.option("--dimensions", default=None, type=int, help="Embedding dimensions (text-embedding-3, dashscope v3/v4).")
@handle_errors
def adapter_cmd(provider, train_path, corpus, output, epochs, lr, hidden, temperature, batch_size, heldout_by,
                base_url, dimensions):
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

    res = train_adapter(provider, train_path, corpus, output, AdapterOptions(
        epochs=epochs, lr=lr, hidden=hidden, temperature=temperature, batch_size=batch_size, heldout_by=heldout_by,
        base_url=base_url, dimensions=dimensions))
    click.echo(f"adapter saved to {res.out_dir}: held-out MRR@10 {res.heldout_mrr10_base:.4f} -> "
               f"{res.heldout_mrr10_adapter:.4f} (best epoch {res.best_epoch}/{res.epochs_run})")
