"""`kit prep`: documents -> corpus.jsonl."""
from __future__ import annotations

import sys

import click

from ..prep import PrepFiles, PrepOptions
from ._common import stage_command


@stage_command("prep", PrepFiles, PrepOptions, section="prep")
def prep_cmd(files: PrepFiles, options: PrepOptions):
    """Extract, clean and chunk documents (PDF, TXT, MD, DOCX, or a JSONL corpus) into corpus.jsonl.

    Each line: {"id", "doc", "page_start", "page_end", "title", "text"} (+ "source_id" for JSONL rows, "ocr"
    for OCR'd text). Per file, the share of the text layer found in the chunks (fidelity) goes to
    <output>.stats.json and the summary; below 99% is a warning. Image-only pages are OCR'd (--ocr auto).
    Bad files and garbage pages are reported one line each; the others are processed. Exit status 1 when any
    file failed or nothing was produced (an old output is then removed).

    \b
    Example:
      kit prep examples/data -o work/corpus.jsonl --max-tokens 480 --tokenizer BAAI/bge-large-zh-v1.5
      kit prep scans/ -o work/corpus.jsonl --ocr force
      kit prep ../shared/data/retrieval/stard_dev/corpus.jsonl -o work/corpus.jsonl
    """
    from ..prep import prep

    result = prep(options.inputs, files.output, options)
    click.echo(result.summary())
    if result.chunks:
        click.echo(f"wrote {files.output}")
    sys.exit(1 if result.files_failed or not result.chunks else 0)
