"""`kit bench`: compare embedding models on your eval set; results.json + report.md + report.html."""
from __future__ import annotations

import click

from ..bench.options import BenchFiles, BenchOptions
from ..encode.options import EncodeOptions
from ._common import stage_command


@stage_command("bench", BenchFiles, BenchOptions, EncodeOptions, section="bench", section_cls=BenchOptions)
def bench_cmd(files: BenchFiles, options: BenchOptions, encode: EncodeOptions):
    """Benchmark embedding models on the same queries and passages.

    \b
    Example:
      kit bench --eval work/data/eval -o work/report \\
        --model base=local:BAAI/bge-large-zh-v1.5 --model ft=local:work/models/finetuned \\
        --model ada=openai:text-embedding-ada-002 --model ali=dashscope:text-embedding-v3 --model bm25=bm25 \\
        --general ../shared/data/retrieval/cmrc2018/beir
      kit bench --eval big_eval -o report --model ft=local:work/models/merged-0.5 --engine torchrun --workers 8
    """
    from ..bench.stage import bench
    from ..encode.options import wanted

    results = bench(files.eval, options.models, files.output, options, encode=wanted(encode))
    for line in results["recommendation"]["text"]:
        click.echo(line)
    click.echo(f"report: {files.output}/report.html")
