"""`kit gen-queries`: corpus.jsonl -> pairs.jsonl."""
from __future__ import annotations

import sys

import click

from ..queries import QueryFiles, QueryOptions
from ._common import stage_command


@stage_command("gen-queries", QueryFiles, QueryOptions, section="queries")
def gen_queries_cmd(files: QueryFiles, options: QueryOptions):
    """Generate (query, chunk) training pairs from CORPUS (prep's corpus.jsonl).

    LLM answers are cached on disk: re-running after a crash or Ctrl-C repeats no successful call.
    The API key comes from the environment only (--api-key-env names the variable).

    \b
    Examples:
      export DASHSCOPE_API_KEY=...
      kit gen-queries work/corpus.jsonl -o work/pairs.jsonl --preset dashscope --model qwen-plus \\
          --per-chunk 3 --concurrency 16
      kit gen-queries work/corpus.jsonl -o work/pairs.jsonl --generator ict,keywords,headings
      kit gen-queries corpus.jsonl -o pairs.jsonl --base-url http://localhost:8000/v1 --model Qwen2.5-7B-Instruct
    """
    from ..queries import gen_queries

    result = gen_queries(files.corpus, files.output, options)
    click.echo(result.summary())
    if result.pairs == 0:
        click.echo(f"error: no query could be generated from {files.corpus}", err=True)
        sys.exit(1)
    if result.failures:
        sys.exit(1)   # some chunks failed: run again to retry exactly those (answers so far are cached)
