"""`kit bench`: compare embedding models on your eval set; results.json + report.md + report.html."""
from __future__ import annotations

import click

from ._common import handle_errors, main


@main.command("bench")
@click.option("--eval", "eval_dir", required=True, type=click.Path(exists=True, file_okay=False),
              help="Eval folder (FlagEmbedding custom-eval or BEIR layout).")
@click.option("--model", "models", multiple=True, required=True,
              help="NAME=SPEC; SPEC is openai:MODEL, dashscope:MODEL, local:PATH_OR_ID, bm25 or adapter:DIR.")
@click.option("-o", "--output", required=True, type=click.Path(file_okay=False), help="Report folder.")
@click.option("--general", type=click.Path(exists=True, file_okay=False), help="General-ability eval folder.")
@click.option("--general-max-queries", default=500, show_default=True, help="Sample of general queries (0 = all).")
@click.option("--max-queries", default=0, help="Sample of domain queries (0 = all).")
@click.option("--k", default="1,3,5,10", show_default=True, help="Cut-offs.")
@click.option("--baseline", help="Model name fine-tuning is measured against (default: the first).")
@click.option("--base-url", help="OpenAI-compatible endpoint for openai:/dashscope: models.")
@click.option("--dimensions", type=int, help="Output dimensions for API models that support it.")
@click.option("--precision", default="auto", type=click.Choice(["auto", "fp32", "bf16", "fp16"]), show_default=True)
@handle_errors
def bench_cmd(eval_dir, models, output, general, general_max_queries, max_queries, k, baseline, base_url,
              dimensions, precision):
    """Benchmark embedding models on the same queries and passages.

    \b
    Example:
      kit bench --eval work/data/eval -o work/report \\
        --model base=local:BAAI/bge-large-zh-v1.5 --model ft=local:work/models/finetuned \\
        --model ada=openai:text-embedding-ada-002 --model ali=dashscope:text-embedding-v3 --model bm25=bm25 \\
        --general ../shared/data/retrieval/cmrc2018/beir
    """
    from ..bench.runner import BenchOptions, bench, parse_models

    opts = BenchOptions(k=[int(x) for x in k.split(",") if x.strip()], general=general,
                        general_max_queries=general_max_queries or None, max_queries=max_queries or None,
                        baseline=baseline, base_url=base_url, dimensions=dimensions, precision=precision)
    results = bench(eval_dir, parse_models(list(models)), output, opts)
    for line in results["recommendation"]["text"]:
        click.echo(line)
    click.echo(f"report: {output}/report.html")
