"""`kit prep`: PDFs -> corpus.jsonl."""
from __future__ import annotations

import sys

import click

from ._common import handle_errors, main


@main.command("prep")
@click.argument("inputs", nargs=-1, required=True, type=click.Path(exists=True))
@click.option("-o", "--output", required=True, type=click.Path(dir_okay=False), help="corpus.jsonl to write.")
@click.option("--max-tokens", default=480, show_default=True, help="Chunk budget in tokens (characters without --tokenizer).")
@click.option("--overlap", default=0, show_default=True, help="Sentences repeated when running text is cut.")
@click.option("--tokenizer", default=None, help="Target model (hub id or folder) whose tokenizer counts tokens.")
@click.option("--min-chars", default=10, show_default=True, help="Drop chunks shorter than this.")
@click.option("--workers", default=0, show_default=True, help="Parallel processes (0 = one per core).")
@handle_errors
def prep_cmd(inputs, output, max_tokens, overlap, tokenizer, min_chars, workers):
    """Extract, clean and chunk PDFs (files or folders) into corpus.jsonl.

    Each line: {"id", "doc", "page_start", "page_end", "title", "text"}. Bad files and garbage pages are
    reported one line each; the others are processed. Exit status 1 when any file failed.

    \b
    Example:
      kit prep examples/data -o work/corpus.jsonl --max-tokens 480 --tokenizer BAAI/bge-large-zh-v1.5
    """
    from ..prep import PrepOptions, prep

    result = prep(list(inputs), output, PrepOptions(max_tokens=max_tokens, overlap=overlap, tokenizer=tokenizer,
                                                  min_chars=min_chars, workers=workers))
    click.echo(result.summary())
    if result.chunks:
        click.echo(f"wrote {output}")
    sys.exit(1 if result.files_failed else 0)
