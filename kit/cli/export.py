"""`kit export`: training rows and eval set in the layouts sentence-transformers and BEIR tools read."""
from __future__ import annotations

import click

from ..export import ExportFiles, ExportOptions
from ._common import stage_command


@stage_command("export", ExportFiles, ExportOptions)
def export_cmd(files: ExportFiles, options: ExportOptions):
    """Write training rows for sentence-transformers and the eval set as BEIR and for ST's evaluator.

    OUT/sentence-transformers/ holds (anchor, positive, negative_1..N) rows as JSONL and as a datasets folder;
    OUT/beir/ holds corpus.jsonl, queries.jsonl and qrels/test.tsv; OUT/ir-evaluator/ir_evaluator.json holds
    the queries, corpus and relevant_docs of InformationRetrievalEvaluator. OUT/README.md says how to load each.

    \b
    Example:
      kit export --train work/data/train_hn.jsonl --eval work/data/eval -o work/export
      kit export --eval work/data/eval -o work/export --model ../shared/models/zh-e5-small
    """
    from ..export import export

    click.echo(export(files, options).summary())
