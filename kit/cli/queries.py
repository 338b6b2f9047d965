"""`kit gen-queries`: thin wrapper over kit.queries.gen_queries."""
from __future__ import annotations

import sys

import click

from ._common import handle_errors, main


@main.command("gen-queries")
@click.argument("corpus", type=click.Path(dir_okay=False))
@click.option("-o", "--output", required=True, type=click.Path(dir_okay=False), help="pairs.jsonl to write.")
@click.option("-g", "--generator", multiple=True, default=["llm"], show_default=True,
              help="llm | ict | keywords | headings; repeat or comma-separate to combine.")
@click.option("-n", "--per-chunk", default=3, show_default=True, help="Questions per chunk.")
@click.option("--preset", type=click.Choice(["openai", "dashscope", "deepseek"]), help="Known LLM endpoint.")
@click.option("--base-url", help="Any OpenAI-compatible endpoint (vLLM, Ollama, a proxy...).")
@click.option("--model", help="Chat model (default: the preset's, e.g. qwen-plus for dashscope).")
@click.option("--api-key-env", help="Environment variable holding the API key (default: the preset's, "
              "or OPENAI_API_KEY). The key itself is never accepted on the command line.")
@click.option("--concurrency", default=8, show_default=True, help="LLM requests in flight.")
@click.option("--timeout", default=60.0, show_default=True, help="Seconds per LLM request.")
@click.option("--max-retries", default=5, show_default=True, help="Retries per request on 429/5xx/timeouts.")
@click.option("--temperature", default=0.7, show_default=True)
@click.option("--seed", default=0, show_default=True, help="Seed of the offline generators.")
@click.option("--ict-keep", default=0.5, show_default=True, type=click.FloatRange(0, 1),
              help="ict: share of pairs whose positive keeps the query sentence (see kit/queries/offline.py).")
@click.option("--cache-path", type=click.Path(dir_okay=False),
              help="SQLite cache of LLM answers (default $KIT_CACHE_DIR/llm.sqlite).")
@click.option("--no-progress", is_flag=True, help="No progress bar.")
@handle_errors
def gen_queries_cmd(corpus, output, generator, per_chunk, preset, base_url, model, api_key_env, concurrency,
                    timeout, max_retries, temperature, seed, ict_keep, cache_path, no_progress):
    """Generate (query, chunk) training pairs from CORPUS (prep's corpus.jsonl).

    LLM answers are cached on disk: re-running after a crash or Ctrl-C repeats no successful call.
    Exits non-zero only when no pair at all could be generated.

    \b
    Examples:
      export DASHSCOPE_API_KEY=...
      kit gen-queries work/corpus.jsonl -o work/pairs.jsonl --preset dashscope --model qwen-plus \\
          --per-chunk 3 --concurrency 16
      kit gen-queries work/corpus.jsonl -o work/pairs.jsonl --generator ict,keywords,headings
      kit gen-queries corpus.jsonl -o pairs.jsonl --base-url http://localhost:8000/v1 --model Qwen2.5-7B-Instruct
    """
    from ..queries import QueryOptions, gen_queries

    opts = QueryOptions(generator=list(generator), per_chunk=per_chunk, preset=preset, base_url=base_url,
                        model=model, api_key_env=api_key_env, concurrency=concurrency, timeout=timeout,
                        max_retries=max_retries, seed=seed, ict_keep=ict_keep, cache_path=cache_path,
                        temperature=temperature, progress=not no_progress)
    result = gen_queries(corpus, output, opts)
    click.echo(result.summary())
    if result.pairs == 0:
        click.echo(f"error: no query could be generated from {corpus}", err=True)
        sys.exit(1)
