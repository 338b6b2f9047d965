"""`kit split`: pairs -> train.jsonl + a FlagEmbedding eval folder, by document."""
from __future__ import annotations

import click

from ..split import SplitFiles, SplitOptions
from ._common import stage_command


@stage_command("split", SplitFiles, SplitOptions, section="split")
def split_cmd(files: SplitFiles, options: SplitOptions):
    """Split PAIRS (gen-queries output) by document into train.jsonl and a FlagEmbedding eval folder.

    Never splits by chunk; a pair's document is taken from the corpus. A leakage check (eval positives
    among train positives, by id and by normalised text) runs every time and is reported.

    \b
    Examples:
      kit split work/pairs.jsonl --corpus work/corpus.jsonl -o work/data
      kit split work/pairs.jsonl --corpus work/corpus.jsonl -o work/data --eval-queries real_questions.jsonl
      kit split work/pairs.jsonl --corpus work/corpus.jsonl -o work/data --log-labels work/data/log_labels.jsonl
    """
    from ..split import split

    extra = None
    if files.log_labels:   # kit logs' labelled questions (kit/questionlog/)
        from ..io import ReadReport
        from ..questionlog import training_questions

        report = ReadReport()
        extra = training_questions(files.log_labels, report)
        for e in report.errors[:20]:
            click.echo(str(e), err=True)
    click.echo(split(files.pairs, files.corpus, files.output, options, extra_questions=extra,
                     extra_source=files.log_labels or "extra questions").summary())
