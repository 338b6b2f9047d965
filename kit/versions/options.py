"""What `kit versions`, `kit promote` and `kit rollback` take (no YAML section: they act on a workdir)."""
from __future__ import annotations

from dataclasses import dataclass

from ..options import option


@dataclass
class VersionsTarget:
    target: str = option(argument=True, yaml=False, required=True,
                         help="The config (its workdir) or the workdir itself.")


@dataclass
class ListOptions:
    as_json: bool = option(False, yaml=False, flag="json", help="Print the versions as JSON (one object per version).")


@dataclass
class PromoteTarget(VersionsTarget):
    version: str | None = option(None, argument=True, yaml=False,
                                 help="The version to deploy (v0002, or 2); none: keep today's deployed model as v0001.")
