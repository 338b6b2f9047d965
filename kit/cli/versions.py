"""`kit versions`, `kit promote`, `kit rollback`: the numbered versions of the deployed model and the switch of
models/current (kit/versions/)."""
from __future__ import annotations

import json

import click

from ._common import CONTEXT, handle_errors, main

EXIT_CODES = """\b
Exit status:
  0    done
  2    bad usage or input: no such config, workdir or version, nothing to roll back to, a version whose
       weights changed since it was stored (one line says what and where)
  130  interrupted (Ctrl-C / SIGTERM); models/current is switched in one rename, so it names a whole version"""

TARGET = click.argument("target", metavar="CONFIG|WORKDIR")


def _store(target: str):
    from ..update.config import open_target
    from ..versions import Store

    root, p = open_target(target)
    return Store(root), p


@main.command("versions", context_settings=CONTEXT, epilog=EXIT_CODES)
@TARGET
@click.option("--json", "as_json", is_flag=True, help="Print the versions as JSON (one object per version).")
@handle_errors
def versions_cmd(target: str, as_json: bool) -> None:
    """List the versions of the deployed model kept in CONFIG's workdir (or WORKDIR): where each came from, its
    documents and training rows, its eval figures with 95% intervals; `*` marks the deployed one (models/current).

    \b
    Examples:
      kit versions configs/demo.yaml
      kit versions runs/demo --json
    """
    from ..versions.listing import rows, table

    store, _ = _store(target)
    click.echo(json.dumps(rows(store), ensure_ascii=False, indent=2) if as_json else table(store))


@main.command("promote", context_settings=CONTEXT, epilog=EXIT_CODES)
@TARGET
@click.argument("version", required=False)
@handle_errors
def promote_cmd(target: str, version: str | None) -> None:
    """Deploy VERSION (v0002, or 2): models/current is switched to it in one rename, and the switch is recorded
    (`kit rollback` undoes it). Without VERSION: keep the model the workdir deploys today (deploy/'s refitted model,
    else the report's recommendation) as the first version, v0001, and deploy it.

    \b
    Examples:
      kit promote configs/demo.yaml            # the deployed model becomes v0001
      kit promote configs/demo.yaml v0002
    """
    from ..update.config import workdir_pipeline
    from ..versions.register import register_deployed

    store, p = _store(target)
    if version is None:
        v = register_deployed(p or workdir_pipeline(store.root), store, echo=lambda m: click.echo(m, err=True))
        click.echo(f"deployed: {v.name} ({v.model})")
        return
    v, before = store.promote(version)
    if before is not None and before.name == v.name:
        click.echo(f"deployed: {v.name} (already)")
    else:
        click.echo(f"deployed: {v.name} (was {before.name if before else 'no version'})")


@main.command("rollback", context_settings=CONTEXT, epilog=EXIT_CODES)
@TARGET
@handle_errors
def rollback_cmd(target: str) -> None:
    """Deploy again the version promoted before the deployed one (models/current switched in one rename).
    Repeated, it goes further back.

    \b
    Example:
      kit rollback configs/demo.yaml
    """
    store, _ = _store(target)
    v, was = store.rollback()
    click.echo(f"deployed: {v.name} (rolled back from {was.name})")
