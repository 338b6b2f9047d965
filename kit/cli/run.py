"""`kit run`: the whole pipeline from one YAML config."""
from __future__ import annotations

import sys
from dataclasses import dataclass

import click

from ..encode.options import EncodeOptions, flags_over_config
from ..options import cli_values, click_options, option, validated
from ..stages import REGISTRY
from ._common import CONTEXT, EXIT_CODES, handle_errors, main

STAGE_NAMES = tuple(s.name for s in REGISTRY)


@dataclass
class RunOptions:
    """`kit run`'s flags."""

    config: str = option(argument=True, yaml=False, help="Pipeline YAML.")
    from_stage: str | None = option(None, yaml=False, flag="from", choices=STAGE_NAMES,
                                    help="Re-run from this stage on, even if up to date.")
    until: str | None = option(None, yaml=False, choices=STAGE_NAMES, help="Stop after this stage.")
    force: bool = option(False, yaml=False, help="Re-run every stage (caches still spare paid calls).")


def _command(fn):
    cmd = handle_errors(fn)
    for cls in (EncodeOptions, RunOptions):
        cmd = click_options(cls)(cmd)
    command = main.command("run", context_settings=CONTEXT, epilog=EXIT_CODES)(cmd)
    command.kit_sources = (RunOptions, EncodeOptions)
    return command


@_command
def run_cmd(**kwargs) -> None:
    """Run prep -> gen-queries -> split -> mine -> train -> merge -> (adapter) -> bench from CONFIG.

    A stage whose outputs exist with the same inputs and settings is skipped, so re-running after a
    crash or a kill continues where it stopped; changing a setting or an input re-runs that stage and all
    after it. One run at a time per workdir. --engine/--workers (and the other encoding flags) override the
    config's `encode:` section for every stage that encodes a corpus; the vectors, so the outputs, are the same.

    \b
    Examples:
      KIT_MODEL=../shared/models/zh-e5-small kit run configs/demo.yaml
      kit run configs/bge-large-zh-v1.5.yaml --from train
      kit run configs/demo.yaml --until split
      kit run configs/bge-m3.yaml --engine torchrun --workers 8     # corpora encoded by 8 ranks
    """
    from ..pipeline import PartialFailure
    from ..stages import run_pipeline

    o = validated(RunOptions(**cli_values(RunOptions, kwargs)), "run")
    try:
        with flags_over_config(cli_values(EncodeOptions, kwargs)):
            summaries = run_pipeline(o.config, from_stage=o.from_stage, force=o.force, until=o.until)
    except PartialFailure as e:
        click.echo(f"error: {e}", err=True)
        sys.exit(1)
    report = (summaries.get("bench") or {}).get("report_html")
    click.echo(f"pipeline finished in {summaries.get('_seconds', 0):.0f}s")
    if report:
        click.echo(f"report: {report}")
    deployed = (summaries.get("deploy") or {}).get("report")
    if deployed:   # kit/deploy/: the pick refitted on every chunk, measured beside the held-out figure
        click.echo(f"deployed model (trained on every chunk): {deployed}")
