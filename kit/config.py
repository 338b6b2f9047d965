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


def path_resolver(config_path):
    """How every path in a config is read, by `kit run` and by any command's `--config` alike: relative to the config
    file's folder; a path that exists only relative to the current directory (typically one given through an
    environment variable such as KIT_MODEL=../models/x) is taken from there."""
    base = Path(config_path).resolve().parent

    def resolve(p) -> Path:
        p = Path(str(p)).expanduser()
        if p.is_absolute():
            return p
        from_config = (base / p).resolve()
        if not from_config.exists() and p.exists():
            return p.resolve()
        return from_config
    return resolve


def resolve_model(config_path, model: str) -> str:
    """The top-level `model:` the same way for every command: a folder when one exists there, else a hub id."""
    p = path_resolver(config_path)(model)
    return str(p) if p.exists() else str(model)
