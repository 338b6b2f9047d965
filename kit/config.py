"""Pipeline YAML loading with ``${VAR}`` / ``${VAR:-default}`` environment substitution.

PyYAML has no env substitution and os.path.expandvars knows no ``:-default`` form, hence this small helper.
"""
from __future__ import annotations

import os
import re
from pathlib import Path

import yaml

from .io import KitError

_VAR = re.compile(r"\$\{([A-Za-z_][A-Za-z0-9_]*)(?::-([^}]*))?\}")


def substitute_env(value, source: str = "config"):
    """Replace ``${VAR}`` and ``${VAR:-default}`` in every string inside ``value`` (dicts/lists walked)."""
    if isinstance(value, dict):
        return {k: substitute_env(v, source) for k, v in value.items()}
    if isinstance(value, list):
        return [substitute_env(v, source) for v in value]
    if not isinstance(value, str):
        return value

    def repl(m: re.Match) -> str:
        name, default = m.group(1), m.group(2)
        if name in os.environ and (os.environ[name] != "" or default is None):
            return os.environ[name]
        if default is not None:
            return default
        raise KitError(f"{source}: environment variable {name} is not set (write ${{{name}:-default}} to give one)")

    return _VAR.sub(repl, value)


def load_config(path) -> dict:
    """Read a pipeline YAML file; errors name the file."""
    path = Path(path)
    if not path.exists():
        raise KitError(f"{path}: config file not found")
    try:
        data = yaml.safe_load(path.read_text(encoding="utf-8")) or {}
    except yaml.YAMLError as e:
        raise KitError(f"{path}: not valid YAML: {e}") from None
    if not isinstance(data, dict):
        raise KitError(f"{path}: expected a mapping at the top level, got {type(data).__name__}")
    return substitute_env(data, str(path))
