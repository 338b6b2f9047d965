"""`kit logs`: a question log -> labelled training questions (log_labels.jsonl) and the weak-spot report."""
from __future__ import annotations

import click

from ..questionlog import LogFiles, LogOptions
from ._common import stage_command


@stage_command("logs", LogFiles, LogOptions, section="logs")
def logs_cmd(files: LogFiles, options: LogOptions):
    """Label the questions of a search log without labellers, and report where the model serves them worst.

    Each question gets candidates from the model and BM25; a judge (offline: the two agree; or an LLM through any
    OpenAI-compatible endpoint) accepts the passages that answer it. Phone numbers, ID numbers and e-mails are
    masked as rows are read; eval questions (and near copies) are never labelled. A person's edits of `label` in an
    existing labels file are kept. `kit split --log-labels LABELS` (or `kit run` with a `logs:` section) trains on
    the result.

    \b
    Examples:
      kit logs --log search_log.jsonl --corpus work/corpus.jsonl --model work/models/merged-0.5 \\
               --labels work/data/log_labels.jsonl --report work/data/log_report.json
      kit logs --config kit.yaml --corpus work/corpus.jsonl --model BAAI/bge-large-zh-v1.5 \\
               --labels labels.jsonl --report report.json --judge llm --preset deepseek
    """
    from ..questionlog import run

    if not options.path:
        raise click.UsageError("no question log: give --log FILE (or a `logs: {path: ...}` section with --config)")
    click.echo(run(files, options, progress=options.progress).summary())
