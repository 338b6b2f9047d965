"""`kit versions`, `kit promote`, `kit rollback`: the numbered versions of the deployed model and the switch of
models/current (kit/versions/)."""
from __future__ import annotations

import json

import click

from ..options import cli_values, click_options
from ..versions.options import ListOptions, PromoteTarget, VersionsTarget
from ._common import CONTEXT, handle_errors, main

EXIT_CODES = """\b
Exit status:
  0    done
  2    bad usage or input: no such config, workdir or version, nothing to roll back to, a version whose
       weights changed since it was stored (one line says what and where)
  130  interrupted (Ctrl-C / SIGTERM); models/current is switched in one rename, so it names a whole version"""


def _command(name: str, *sources):
    """A subcommand whose arguments and flags come from ``sources`` (kit/versions/options.py), as every kit command's."""
    def deco(fn):
        cmd = handle_errors(fn)
        for cls in reversed(sources):
            cmd = click_options(cls)(cmd)
        command = main.command(name, context_settings=CONTEXT, epilog=EXIT_CODES)(cmd)
        command.kit_sources = sources
        return command
    return deco


def _values(kwargs: dict, *sources):
    return [cls(**cli_values(cls, kwargs)) for cls in sources]


def _store(target: str):
    from ..update.config import open_target
    from ..versions import Store

    root, p = open_target(target)
    return Store(root), p


@_command("versions", VersionsTarget, ListOptions)
def versions_cmd(**kwargs) -> None:
    """List the versions of the deployed model kept in CONFIG's workdir (or WORKDIR): where each came from, its
    documents and training rows, its eval figures with 95% intervals; `*` marks the deployed one (models/current).

    \b
    Examples:
      kit versions configs/demo.yaml
      kit versions runs/demo --json
    """
    from ..versions.listing import rows, table

    target, opts = _values(kwargs, VersionsTarget, ListOptions)
    store, _ = _store(target.target)
    click.echo(json.dumps(rows(store), ensure_ascii=False, indent=2) if opts.as_json else table(store))


@_command("promote", PromoteTarget)
def promote_cmd(**kwargs) -> None:
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

    (args,) = _values(kwargs, PromoteTarget)
    store, p = _store(args.target)
    if args.version is None:
        v = register_deployed(p or workdir_pipeline(store.root), store, echo=lambda m: click.echo(m, err=True))
        click.echo(f"deployed: {v.name} ({v.model})")
        return
    v, before = store.promote(args.version)
    if before is not None and before.name == v.name:
        click.echo(f"deployed: {v.name} (already)")
    else:
        click.echo(f"deployed: {v.name} (was {before.name if before else 'no version'})")


@_command("rollback", VersionsTarget)
def rollback_cmd(**kwargs) -> None:
    """Deploy again the version promoted before the deployed one (models/current switched in one rename).
    Repeated, it goes further back.

    \b
    Example:
      kit rollback configs/demo.yaml
    """
    (args,) = _values(kwargs, VersionsTarget)
    store, _ = _store(args.target)
    v, was = store.rollback()
    click.echo(f"deployed: {v.name} (rolled back from {was.name})")
