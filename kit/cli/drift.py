"""`kit drift`: compare the deployed model's training material with the documents now; exit 0 / 3 for a scheduler."""
from __future__ import annotations

import dataclasses
import sys

import click

from ..drift.options import DriftFiles, DriftOptions
from ..encode.options import EncodeOptions, flags_over_config
from ..options import cli_values, click_options, validated
from ._common import CONTEXT, handle_errors, main

EXIT_CODES = """\b
Exit status:
  0    no_retrain: the deployed model still fits the documents (and the questions)
  3    retrain: re-training is worth it (the reasons are printed above the verdict)
  2    bad usage, config or input: an empty or unreadable question log, documents that are all gone, a
       workdir from another model or config (one line says what and where)
  130  interrupted (Ctrl-C / SIGTERM); embeddings already computed are cached, re-run to resume"""


def _command(fn):
    cmd = handle_errors(fn)
    for cls in (EncodeOptions, DriftOptions, DriftFiles):
        cmd = click_options(cls)(cmd)
    command = main.command("drift", context_settings=CONTEXT, epilog=EXIT_CODES)(cmd)
    command.kit_sources = (DriftFiles, DriftOptions, EncodeOptions)
    return command


@_command
def drift_cmd(**kwargs):
    """Is re-training worth it? Compare what the deployed model of CONFIG's workdir was trained on (its corpus,
    training rows, eval questions, chosen model) with the documents CONFIG's prep.inputs name now.

    Writes WORKDIR/drift/report.json ("verdict": "retrain" | "no_retrain") and report.md: the documents that are
    new, changed or gone (by content hash); coverage (the share of new chunks further from the training corpus
    than its own chunks are from each other); a distribution test (MMD permutation test, domain-classifier
    AUC); with --log, how well the logged questions are served against the eval questions. Settings come from
    CONFIG's `drift:` section; flags override them. The verdict is printed last.

    \b
    Examples:
      kit drift configs/demo.yaml
      kit drift configs/demo.yaml --log questions.jsonl       # one question per line, no labels
      kit drift configs/demo.yaml; [ $? -eq 3 ] && kit run configs/demo.yaml --force
      kit drift configs/demo.yaml --engine torchrun --workers 8   # the corpora encoded by 8 ranks
    """
    from ..drift import run
    from ..drift.workdir import load_pipeline

    files = validated(DriftFiles(**cli_values(DriftFiles, kwargs)), "drift")
    typed = cli_values(DriftOptions, kwargs)
    base = load_pipeline(files.config).options["drift"]
    options = validated(dataclasses.replace(base, **typed), "drift")
    with flags_over_config(cli_values(EncodeOptions, kwargs)):    # --engine/--workers over the config's encode:
        result = run(files, options, progress=options.progress)
    click.echo(result.summary())
    sys.exit(result.exit_code)
