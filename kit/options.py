"""Options defined once: each stage's settings are one dataclass whose fields carry their help text, type,
default and whether they are paths. Everything else is generated from those fields:

- the YAML section of `kit run` (:func:`from_section`): unknown keys are named first, with a suggestion
  (``prep.inptus: unknown key; did you mean inputs?``), then wrongly typed values with the key's path
  (``prep.max_tokens: expected an integer, got 'lots'``); paths are resolved relative to the config file;
- the click options of the stage's subcommand (:func:`click_options`), so a flag exists only for a field;
- the README's config table (:func:`config_table`), checked against the code by a test.

Why not a library: click knows nothing of dataclasses, and pydantic/omegaconf would bring a second schema
language (and their own error texts) for what is ~250 lines over the standard library's ``dataclasses``.
"""
from __future__ import annotations

import dataclasses
import difflib
import types
import typing
from dataclasses import MISSING, fields
from pathlib import Path
from typing import Any, Callable, Union

from .io import KitError

_TRUE = {"true", "yes", "on", "1"}
_FALSE = {"false", "no", "off", "0"}


class OptionError(KitError):
    """One or more settings are wrong; ``problems`` holds one line each."""

    def __init__(self, problems: list[str]):
        self.problems = list(problems)
        super().__init__("\n".join(self.problems))


def option(default: Any = MISSING, *, help: str, path: bool = False, choices=None, default_factory=MISSING,
           check: Callable[[Any], str | None] | None = None, yaml: bool = True, cli: bool = True,
           short: str | None = None, argument: bool = False, required: bool = False, flag: str | None = None):
    """A dataclass field with what the CLI, the YAML validation and the README need to know.

    ``path``: resolved relative to the config file (a list of paths: each item). ``check``: returns a
    message when a value is out of range. ``yaml=False``: a command-line-only field (the files a subcommand
    reads and writes); ``cli=False``: YAML only. ``argument``: a positional argument of the subcommand.
    ``flag``: the command-line name when it differs from the field name (``--output`` for ``output_path``).
    """
    md = {"help": help, "path": path, "choices": tuple(choices) if choices else None, "check": check,
          "yaml": yaml, "cli": cli, "short": short, "argument": argument, "required": required, "flag": flag}
    if default_factory is not MISSING:
        return dataclasses.field(default_factory=default_factory, metadata=md)
    return dataclasses.field(default=default, metadata=md)


# --------------------------------------------------------------------------------------------- types

def type_hints(cls) -> dict[str, Any]:
    return typing.get_type_hints(cls)


def _is_union(tp) -> bool:
    return typing.get_origin(tp) in (Union, types.UnionType)


def describe(tp) -> str:
    """A type as a user reads it: 'an integer', 'a list of numbers', 'a text or a list of texts'."""
    if _is_union(tp):
        parts = [describe(a) for a in typing.get_args(tp) if a is not type(None)]
        return " or ".join(parts)
    origin = typing.get_origin(tp)
    if origin is list:
        (item,) = typing.get_args(tp) or (Any,)
        return "a list of " + {int: "integers", float: "numbers", str: "texts"}.get(item, "values")
    if origin is dict or tp is dict:
        return "a mapping"
    return {int: "an integer", float: "a number", str: "a text", bool: "true or false"}.get(tp, "a value")


def type_name(tp) -> str:
    """Compact type for the README table: int, float, str, bool, list[int], str | list[str], ..."""
    if _is_union(tp):
        return " \\| ".join(type_name(a) for a in typing.get_args(tp) if a is not type(None))
    origin = typing.get_origin(tp)
    if origin is list:
        return f"list[{type_name((typing.get_args(tp) or (Any,))[0])}]"
    if origin is dict or tp is dict:
        return "mapping"
    return getattr(tp, "__name__", str(tp))


def _exact(v, tp) -> bool:
    origin = typing.get_origin(tp)
    if tp is bool:
        return isinstance(v, bool)
    if tp is int:
        return isinstance(v, int) and not isinstance(v, bool)
    if tp is float:
        return isinstance(v, float)
    if tp is str:
        return isinstance(v, str)
    if origin is list:
        return isinstance(v, list)
    if origin is dict or tp is dict:
        return isinstance(v, dict)
    return False


def _scalar(v, tp):
    """``v`` as bool/int/float/str, or raise ValueError."""
    if tp is bool:
        if isinstance(v, bool):
            return v
        if isinstance(v, (str, int)) and str(v).strip().lower() in _TRUE | _FALSE:
            return str(v).strip().lower() in _TRUE
    elif tp is int:
        if isinstance(v, int) and not isinstance(v, bool):
            return v
        if isinstance(v, float) and v.is_integer():
            return int(v)
        if isinstance(v, str):
            return int(v.strip().replace("_", ""))
    elif tp is float:
        if isinstance(v, (int, float)) and not isinstance(v, bool):
            return float(v)
        if isinstance(v, str):
            return float(v.strip())
    elif tp is str:
        if isinstance(v, str):
            return v
        if isinstance(v, (int, float)) and not isinstance(v, bool):
            return str(v)
    raise ValueError


def _union(v, tp, where: str):
    args = typing.get_args(tp)
    if v is None and type(None) in args:
        return None
    members = [a for a in args if a is not type(None)]
    for a in members:          # a value that already has one of the types keeps it ("2" stays a text)
        if _exact(v, a):
            return coerce(v, a, where)
    for a in members:
        try:
            return coerce(v, a, where)
        except OptionError:
            continue
    raise OptionError([f"{where}: expected {describe(tp)}, got {v!r}"])


def coerce(v, tp, where: str):
    """``v`` (from YAML, an environment variable or the command line) as type ``tp``, or OptionError."""
    if tp is Any or tp is object:
        return v
    if _is_union(tp):
        return _union(v, tp, where)
    if v is None:
        raise OptionError([f"{where}: expected {describe(tp)}, got nothing (null)"])
    origin = typing.get_origin(tp)
    if tp in (bool, int, float, str):
        try:
            return _scalar(v, tp)
        except ValueError:
            pass
    elif origin is list:
        (item,) = typing.get_args(tp) or (Any,)
        if isinstance(v, str):   # "0.3,0.5" from the command line or an environment variable
            v = [x.strip() for x in v.split(",") if x.strip()]
        elif not isinstance(v, (list, tuple)):
            v = [v]
        return [coerce(x, item, f"{where}[{i}]") for i, x in enumerate(v)]
    elif origin is dict or tp is dict:
        if isinstance(v, dict):
            args = typing.get_args(tp)
            return {str(k): coerce(x, args[1], f"{where}.{k}") for k, x in v.items()} if len(args) == 2 else dict(v)
    else:
        return v
    raise OptionError([f"{where}: expected {describe(tp)}, got {v!r}"])


def suggestion(name: str, known) -> str:
    close = difflib.get_close_matches(name, list(known), n=1, cutoff=0.6)
    return f"; did you mean {close[0]}?" if close else f"; known keys: {', '.join(sorted(known))}"


def yaml_fields(cls) -> list[dataclasses.Field]:
    return [f for f in fields(cls) if f.metadata.get("yaml", True)]


def cli_fields(cls) -> list[dataclasses.Field]:
    return [f for f in fields(cls) if f.metadata.get("cli", True)]


def _check(f: dataclasses.Field, value, where: str) -> list[str]:
    choices = f.metadata.get("choices")
    if choices and value is not None:
        items = value if isinstance(value, list) else [value]
        bad = [x for x in items if x not in choices]
        if bad:
            close = difflib.get_close_matches(str(bad[0]), [str(c) for c in choices], n=1, cutoff=0.6)
            return [f"{where}: {bad[0]!r} is not one of {', '.join(map(str, choices))}"
                    + (f"; did you mean {close[0]}?" if close else "")]
    check = f.metadata.get("check")
    if check and value is not None:
        why = check(value)
        if why:
            return [f"{where} {value!r}: {why}"]
    return []


# ---------------------------------------------------------------------------------------------- YAML

def from_section(cls, section, where: str, resolve_path: Callable[[str], Path] | None = None, **fixed):
    """Build ``cls`` from a YAML section. Unknown keys are reported first (all of them, by name, with a
    suggestion), then every wrongly typed or out-of-range value with its key path; path fields are
    resolved with ``resolve_path`` (relative to the config file). ``fixed`` values bypass the section."""
    if section is None:
        section = {}
    if not isinstance(section, dict):
        raise OptionError([f"{where}: expected a mapping of settings, got {type(section).__name__} {section!r}"])
    known = {f.name: f for f in yaml_fields(cls)}
    unknown = [k for k in section if k not in known]
    if unknown:
        raise OptionError([f"{where}.{k}: unknown key{suggestion(str(k), known)}" for k in unknown])
    hints = type_hints(cls)
    values, problems = {}, []
    for name, raw in section.items():
        f = known[name]
        try:
            v = coerce(raw, hints[name], f"{where}.{name}")
        except OptionError as e:
            problems += e.problems
            continue
        problems += _check(f, v, f"{where}.{name}")
        if f.metadata.get("path") and resolve_path is not None and v is not None:
            v = [str(resolve_path(x)) for x in v] if isinstance(v, list) else str(resolve_path(v))
        values[name] = v
    if problems:
        raise OptionError(problems)
    values.update(fixed)
    return cls(**values)


def to_section(obj) -> dict:
    """The YAML-visible settings of an options object (for manifests and fingerprints)."""
    return {f.name: getattr(obj, f.name) for f in yaml_fields(type(obj))}


_CHECKED = "_kit_checked"


def _values_key(obj) -> str:
    return repr([getattr(obj, f.name) for f in fields(obj)])


def validated(obj, where: str):
    """Check an options object (types and ranges), so a bad value from any caller is one clear line rather than a
    traceback deep inside a stage. Checked once: the object remembers the values it was checked with, so a stage
    entry point re-validating what the CLI or the pipeline already checked costs nothing, while an object changed
    since (or built in code) is checked again."""
    if getattr(obj, _CHECKED, None) == _values_key(obj):
        return obj
    hints = type_hints(type(obj))
    problems = []
    for f in fields(obj):
        v = getattr(obj, f.name)
        try:
            v = coerce(v, hints[f.name], f"{where}.{f.name}")
        except OptionError as e:
            problems += e.problems
            continue
        problems += _check(f, v, f"{where}.{f.name}")
        object.__setattr__(obj, f.name, v)
    if problems:
        raise OptionError(problems)
    object.__setattr__(obj, _CHECKED, _values_key(obj))
    return obj


# ---------------------------------------------------------------------------------------------- click

def flag_name(f: dataclasses.Field) -> str:
    return f.metadata.get("flag") or f.name.replace("_", "-")


def _default_text(f: dataclasses.Field) -> str:
    if f.default is not MISSING:
        d = f.default
    elif f.default_factory is not MISSING:  # type: ignore[misc]
        d = f.default_factory()  # type: ignore[misc]
    else:
        return ""
    if d is None or d == {} or d == []:
        return ""
    if isinstance(d, list):
        d = ",".join(map(str, d))
    return f" [default: {d}]"


def click_options(cls, exclude: tuple[str, ...] = ()):
    """Decorator adding one click option (or argument) per command-line field of ``cls``. Options default
    to None so that only what the user typed overrides the dataclass (and the YAML): the defaults live in
    one place. Lists and mappings take repeated flags or comma-separated values (``--k 1,3,5``)."""
    import click

    hints = type_hints(cls)

    def deco(fn):
        for f in reversed(cli_fields(cls)):
            if f.name in exclude:
                continue
            tp = hints[f.name]
            help_text = f.metadata["help"] + ("" if f.metadata.get("argument") else _default_text(f))
            if f.metadata.get("argument"):
                nargs = -1 if typing.get_origin(tp) is list else 1
                needed = f.default is MISSING and f.default_factory is MISSING  # type: ignore[misc]
                fn = click.argument(f.name, nargs=nargs, required=needed or f.metadata.get("required"))(fn)
                continue
            names = [f"--{flag_name(f)}"] + ([f"-{f.metadata['short']}"] if f.metadata.get("short") else [])
            plain = [a for a in typing.get_args(tp) if a is not type(None)] if _is_union(tp) else [tp]
            if plain == [bool]:
                fn = click.option(f"--{flag_name(f)}/--no-{flag_name(f)}", f.name, default=None,
                                  help=help_text)(fn)
                continue
            many = any(typing.get_origin(a) in (list, dict) or a is dict for a in plain)
            choices = f.metadata.get("choices")
            metavar = ("[" + "|".join(map(str, choices)) + "]") if choices else \
                ("KEY=VALUE" if any(typing.get_origin(a) is dict or a is dict for a in plain) else
                 "PATH" if f.metadata.get("path") else
                 {int: "INTEGER", float: "NUMBER"}.get(plain[0], "TEXT"))
            fn = click.option(*names, f.name, default=None, multiple=many, metavar=metavar,
                              required=f.metadata.get("required", False), help=help_text)(fn)
        return fn
    return deco


def cli_values(cls, kwargs: dict, where: str = "command line") -> dict:
    """The fields of ``cls`` the user set on the command line, typed and checked (names: --flag)."""
    hints = type_hints(cls)
    out, problems = {}, []
    for f in cli_fields(cls):
        if f.name not in kwargs:
            continue
        v = kwargs.pop(f.name)
        if v is None or (isinstance(v, tuple) and not v and not f.metadata.get("argument")):
            continue
        tp = hints[f.name]
        plain = [a for a in typing.get_args(tp) if a is not type(None)] if _is_union(tp) else [tp]
        if isinstance(v, tuple):
            if any(typing.get_origin(a) is dict or a is dict for a in plain):
                pairs = {}
                for item in v:
                    k, sep, val = str(item).partition("=")
                    if not sep:
                        problems.append(f"--{flag_name(f)} {item!r}: expected KEY=VALUE")
                        continue
                    pairs[k.strip()] = val.strip()
                v = pairs
            else:
                v = [x.strip() for item in v for x in str(item).split(",") if x.strip()] \
                    if not f.metadata.get("argument") else list(v)
        try:
            v = coerce(v, tp, f"--{flag_name(f)}")
        except OptionError as e:
            problems += e.problems
            continue
        problems += _check(f, v, f"--{flag_name(f)}")
        out[f.name] = v
    if problems:
        raise OptionError(problems)
    return out


# --------------------------------------------------------------------------------------------- README

def config_table(sections: dict[str, type]) -> str:
    """The README's config reference: one row per YAML key of every section, from the dataclasses."""
    lines = ["| section | key | type | default | what it does |", "|---|---|---|---|---|"]
    for section, cls in sections.items():
        hints = type_hints(cls)
        for f in yaml_fields(cls):
            default = _default_text(f)[len(" [default: "):-1] if _default_text(f) else ""
            kind = type_name(hints[f.name]) + (" (path)" if f.metadata.get("path") else "")
            text = f.metadata["help"].replace("|", "\\|").replace("\n", " ")
            if f.metadata.get("choices"):
                text += " One of: " + ", ".join(f"`{c}`" for c in f.metadata["choices"]) + "."
            lines.append(f"| `{section}` | `{f.name}` | {kind} | {('`' + default + '`') if default else ''} | {text} |")
    return "\n".join(lines)
