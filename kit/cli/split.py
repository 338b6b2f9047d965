"""`kit split`: thin wrapper over kit.split.split."""
from __future__ import annotations

import click

from ._common import handle_errors, main


@main.command("split")
@click.argument("pairs", type=click.Path(dir_okay=False))
@click.option("--corpus", required=True, type=click.Path(dir_okay=False), help="prep's corpus.jsonl.")
@click.option("-o", "--output", "out_dir", required=True, type=click.Path(file_okay=False),
              help="DATA_DIR: train.jsonl, eval/ and split_stats.json are written here.")
@click.option("--eval-ratio", default=0.1, show_default=True, type=float,
              help="Share of pairs (whole documents) held out for evaluation.")
@click.option("--eval-queries", type=click.Path(dir_okay=False),
              help="Real user questions as the eval set: JSONL {\"query\" or \"question\", \"chunk_ids\": [...]} "
                   "or {\"query\", \"answer\": text}; their documents are left out of training.")
@click.option("--seed", default=42, show_default=True, help="Seed of the document shuffle.")
@handle_errors
def split_cmd(pairs, corpus, out_dir, eval_ratio, eval_queries, seed):
    """Split PAIRS (gen-queries output) by document into train.jsonl and a FlagEmbedding eval folder.

    Never splits by chunk. A leakage check (eval positives among train positives, by id and by
    normalised text) runs every time and is reported; duplicate queries across the sides too.

    \b
    Examples:
      kit split work/pairs.jsonl --corpus work/corpus.jsonl -o work/data
      kit split work/pairs.jsonl --corpus work/corpus.jsonl -o work/data --eval-queries real_questions.jsonl
    """
    from ..split import SplitOptions, split

    result = split(pairs, corpus, out_dir, SplitOptions(eval_ratio=eval_ratio, eval_queries=eval_queries, seed=seed))
    click.echo(result.summary())
