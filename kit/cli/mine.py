"""`kit mine`: thin wrapper over kit.mine.mine."""
from __future__ import annotations

import sys

import click

from ._common import handle_errors, main


@main.command("mine")
@click.argument("train", type=click.Path(dir_okay=False))
@click.option("--corpus", required=True, type=click.Path(dir_okay=False), help="prep's corpus.jsonl (candidates).")
@click.option("--model", required=True, help="Hub id or local folder of the embedding model.")
@click.option("-o", "--output", required=True, type=click.Path(dir_okay=False),
              help="Rows with hard negatives; statistics go beside it as <stem>.stats.json.")
@click.option("--range", "range_", default="2-200", show_default=True,
              help="1-based ranks FIRST-LAST of the search results to sample negatives from.")
@click.option("--negatives", default=15, show_default=True, help="Negatives per row.")
@click.option("--seed", default=42, show_default=True)
@click.option("--relative-margin", default=0.05, show_default=True, type=float,
              help="Drop candidates scoring above (1 - m) x the positive's score; 0 turns it off.")
@click.option("--min-score", type=float, help="Drop candidates scoring below this.")
@click.option("--max-score", type=float, help="Drop candidates scoring above this.")
@click.option("--keep-existing", is_flag=True, help="Add to existing 'neg' lists instead of replacing them.")
@click.option("--batch-size", default=64, show_default=True)
@click.option("--precision", default="auto", show_default=True, type=click.Choice(["auto", "fp32", "bf16", "fp16"]))
@click.option("--max-length", type=int, help="Token limit (default: the model's).")
@click.option("--overlap-threshold", default=0.5, show_default=True,
              help="Character 5-gram containment above which a candidate counts as the positive's text.")
@click.option("--no-progress", is_flag=True)
@handle_errors
def mine_cmd(train, corpus, model, output, range_, negatives, seed, relative_margin, min_score, max_score,
             keep_existing, batch_size, precision, max_length, overlap_threshold, no_progress):
    """Add hard negatives to TRAIN (split's train.jsonl) from the corpus, with faiss.

    Positives, the query itself, neighbouring chunks of a positive and chunks sharing most of its
    text are never negatives. Embeddings are cached: mining again with the same model re-embeds nothing.

    \b
    Examples:
      kit mine work/data/train.jsonl --corpus work/corpus.jsonl --model BAAI/bge-large-zh-v1.5 \\
          -o work/data/train_hn.jsonl
      kit mine train.jsonl --corpus corpus.jsonl --model ../shared/models/zh-e5-small -o train_hn.jsonl \\
          --range 10-100 --negatives 7 --min-score 0.3 --max-score 0.7
    """
    from ..mine import MineOptions, mine

    opts = MineOptions(model=model, range=range_, negatives=negatives, seed=seed,
                       relative_margin=relative_margin or None, min_score=min_score, max_score=max_score,
                       keep_existing=keep_existing, batch_size=batch_size, precision=precision,
                       max_length=max_length, overlap_threshold=overlap_threshold, progress=not no_progress)
    result = mine(train, corpus, output, opts)
    if result.stats["rows_written"] == 0:
        click.echo(f"error: no row of {train} could be mined", err=True)
        sys.exit(1)
