"""`kit mine`: hard negatives with faiss."""
from __future__ import annotations

import sys

import click

from ..encode.options import EncodeOptions
from ..mine import MineFiles, MineOptions
from ..search import SearchOptions
from ._common import stage_command


@stage_command("mine", MineFiles, MineOptions, EncodeOptions, SearchOptions, section="mine", section_cls=MineOptions)
def mine_cmd(files: MineFiles, options: MineOptions, encode: EncodeOptions, search: SearchOptions):
    """Add hard negatives to TRAIN (split's train.jsonl) from the corpus, with faiss.

    Positives, the query itself, neighbouring chunks of a positive and chunks sharing most of its
    text are never negatives. Embeddings are cached: mining again with the same model re-embeds nothing.

    \b
    Examples:
      kit mine work/data/train.jsonl --corpus work/corpus.jsonl --model BAAI/bge-large-zh-v1.5 \\
          -o work/data/train_hn.jsonl
      kit mine train.jsonl --corpus corpus.jsonl --model ../shared/models/zh-e5-small -o train_hn.jsonl \\
          --range 10-100 --negatives 7 --min-score 0.3 --max-score 0.7
      kit mine train.jsonl --corpus corpus.jsonl --model BAAI/bge-m3 -o train_hn.jsonl --engine torchrun --workers 8
    """
    from ..mine import mine

    result = mine(files.train, files.corpus, files.output, options, encode, search)
    click.echo(result.summary().splitlines()[0])   # the result line on stdout; the statistics went to stderr
    if result.stats["rows_written"] == 0:
        click.echo(f"error: no row of {files.train} could be mined", err=True)
        sys.exit(1)
