"""`kit update`: the deployed model brought up to the documents now; exit 0 (promoted or nothing to do) / 3 (kept)."""
from __future__ import annotations

import dataclasses
import sys

import click

from ..encode.options import EncodeOptions, flags_over_config
from ..options import cli_values, click_options, validated
from ..update.options import UpdateFiles, UpdateOptions
from ._common import CONTEXT, handle_errors, main

EXIT_CODES = """\b
Exit status:
  0    promoted: the candidate is the deployed version now (or nothing was new: the deployed model stays)
  3    kept: the gate refused the candidate; the deployed model stays (the reasons are printed above the verdict)
  1    done in part: some LLM calls failed; run again to retry only those
  2    bad usage, config or input: a workdir from another model or config, an empty or unreadable questions file,
       documents that are all gone (one line says what and where); the deployed model stays
  130  interrupted (Ctrl-C / SIGTERM); models/current is untouched, run the same command to resume"""


def _command(fn):
    cmd = handle_errors(fn)
    for cls in (EncodeOptions, UpdateOptions, UpdateFiles):
        cmd = click_options(cls)(cmd)
    command = main.command("update", context_settings=CONTEXT, epilog=EXIT_CODES)(cmd)
    command.kit_sources = (UpdateFiles, UpdateOptions, EncodeOptions)
    return command


@_command
def update_cmd(**kwargs):
    """Bring the deployed model of CONFIG's workdir up to the documents CONFIG's prep.inputs name now, without
    starting over: prep and questions for new or changed documents only (gone documents leave the corpus and the
    training rows), mining over the whole current corpus, training from the deployed model (or --from) on the new
    rows plus a replay sample of the old ones, merge, then a benchmark of the candidate beside the deployed model on
    the frozen eval sets and on the new documents' questions. The candidate is deployed (a new version; models/current
    switched) only when it is significantly better on the new documents' questions and not significantly worse on
    the frozen ones. WORKDIR/promotion.json holds the verdict, its figures and reasons; the verdict is printed last.

    \b
    Examples:
      kit update configs/demo.yaml
      kit update configs/demo.yaml --questions new_questions.jsonl     # real questions about the new documents
      kit update configs/demo.yaml --from v0001 --replay-share 0.5
      kit update configs/demo.yaml --engine ray --workers 4   # corpora encoded by 4 Ray actors ($RAY_ADDRESS)
    """
    from ..pipeline import PartialFailure
    from ..update import run
    from ..update.config import load_pipeline

    files = validated(UpdateFiles(**cli_values(UpdateFiles, kwargs)), "update")
    typed = cli_values(UpdateOptions, kwargs)
    base = load_pipeline(files.config).options["update"]
    options = validated(dataclasses.replace(base, **typed), "update")
    try:
        with flags_over_config(cli_values(EncodeOptions, kwargs)):    # --engine/--workers over the config's encode:
            result = run(files, options, progress=options.progress)
    except PartialFailure as e:
        click.echo(f"error: {e}", err=True)
        sys.exit(1)
    click.echo(result.summary())
    sys.exit(result.exit_code)
