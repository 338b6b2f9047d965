"""`kit run`: the whole pipeline from one YAML config."""
from __future__ import annotations

import click

from ..pipeline import STAGES
from ._common import handle_errors, main


@main.command("run")
@click.argument("config", type=click.Path(exists=True, dir_okay=False))
@click.option("--from", "from_stage", type=click.Choice(STAGES), help="Re-run from this stage on, even if up to date.")
@click.option("--until", type=click.Choice(STAGES), help="Stop after this stage.")
@click.option("--force", is_flag=True, help="Re-run every stage (caches still spare paid calls).")
@handle_errors
def run_cmd(config: str, from_stage: str | None, until: str | None, force: bool) -> None:
    """Run prep -> gen-queries -> split -> mine -> train -> merge -> (adapter) -> bench from CONFIG.

    A stage whose outputs exist with the same inputs and settings is skipped, so re-running after a
    crash or a kill continues where it stopped; changing a setting re-runs that stage and all after it.

    \b
    Examples:
      KIT_MODEL=../shared/models/zh-e5-small kit run configs/demo.yaml
      kit run configs/bge-large-zh-v1.5.yaml --from train
      kit run configs/demo.yaml --until split
    """
    from ..pipeline import run_pipeline

    summaries = run_pipeline(config, from_stage=from_stage, force=force, until=until)
    report = (summaries.get("bench") or {}).get("report_html")
    click.echo(f"pipeline finished in {summaries.get('_seconds', 0):.0f}s")
    if report:
        click.echo(f"report: {report}")
