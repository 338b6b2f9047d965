"""The click group and what every subcommand shares: flags generated from the stage's dataclasses, `--config`,
error reporting and logging setup."""
from __future__ import annotations

import dataclasses
import functools
import logging
import os
import signal
import sys
import threading
from dataclasses import dataclass

import click

from ..io import KitError
from ..options import click_options, cli_values, from_section, option, validated

CONTEXT = dict(help_option_names=["-h", "--help"], max_content_width=110)

EXIT_CODES = """\b
Exit status:
  0    done
  1    done in part: some inputs failed (each named on its own line) or nothing could be produced
  2    bad usage, config or input (one line says what and where)
  130  interrupted (Ctrl-C / SIGTERM); what was paid for is cached, re-run to resume"""


@click.group(context_settings=CONTEXT, epilog=EXIT_CODES)
@click.version_option(package_name="kit")
@click.option("-v", "--verbose", is_flag=True,
              help="Debug logging, and on stderr everything otherwise kept in the stage's log (WORKDIR/logs/"
                   "<stage>.log): the trainer's whole output, other libraries' INFO lines.")
def main(verbose: bool) -> None:
    """kit: fine-tune Chinese embedding models on your own documents, and choose a model from numbers.

    \b
    Pipeline (each step is a subcommand; `kit run` does them all from one YAML):
      prep -> gen-queries -> split -> mine -> train -> merge -> (adapter) -> bench

    Results go to stdout; progress bars and logs go to stderr.

    \b
    Example:
      kit run configs/demo.yaml
    """
    from ..logs import setup_logging

    setup_logging(verbose)
    os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
    # SIGTERM (a supervisor's `kill`, a CI timeout) takes the same path as Ctrl-C: stop sending paid requests,
    # keep what was paid for, exit at once.
    if threading.current_thread() is threading.main_thread():   # (click's test runner may call from a thread)
        signal.signal(signal.SIGTERM, _sigterm)


class Terminated(KeyboardInterrupt):
    """SIGTERM, raised in the main thread like Ctrl-C."""


def _sigterm(signum, frame):
    raise Terminated()


@dataclass
class FromConfig:
    """`--config`, shared by the stage subcommands."""

    config: str | None = option(None, yaml=False, help="Pipeline YAML: this stage's section (and the top-level "
                                "`model:`) are read from it, paths relative to the file; flags override them.")


def handle_errors(fn):
    """Print a KitError as one clear line (no traceback, no secret) and exit with status 2; Ctrl-C or SIGTERM
    exits with 130 at once."""
    @functools.wraps(fn)
    def wrapper(*args, **kwargs):
        from ..secrets import redact_text

        try:
            return fn(*args, **kwargs)
        except KitError as e:
            click.echo(f"error: {redact_text(e)}", err=True)
            sys.exit(2)
        except KeyboardInterrupt as e:
            what = "terminated (SIGTERM)" if isinstance(e, Terminated) else "interrupted"
            click.echo(f"{what}: finished work is kept (caches, checkpoints); run the same command to resume",
                       err=True)
            _exit_now(130)
    return wrapper


def _exit_now(code: int) -> None:
    """Exit without waiting for worker threads: one blocked on a hanging server would otherwise keep the
    process alive for a whole request timeout (the interpreter joins pool threads at exit). Everything worth
    keeping is already on disk (SQLite commits each answer and embedding as it arrives; outputs are written
    atomically), and the workdir lock was released when the stack unwound."""
    for stream in (sys.stdout, sys.stderr):
        try:
            stream.flush()
        except (OSError, ValueError):
            pass
    os._exit(code)


def _config_section(path: str, section: str, cls):
    """(options from the YAML section or None, the config's top-level model or None)."""
    from ..config import load_config, path_resolver, resolve_model

    cfg = load_config(path)   # paths and the model read exactly as `kit run` reads them (kit/config.py)
    opts = from_section(cls, cfg.get(section), f"{path}: {section}", resolve_path=path_resolver(path)) \
        if section in cfg else None
    return opts, (resolve_model(path, cfg["model"]) if cfg.get("model") else None)


def build_sources(sources: tuple, kwargs: dict, section: str | None, section_cls) -> list:
    """One instance per dataclass: defaults < the `--config` section < the flags the user typed."""
    config = kwargs.pop("config", None) if section else None
    base, top_model = (_config_section(config, section, section_cls) if config else (None, None))
    out = []
    for cls in sources:
        values = cli_values(cls, kwargs)
        shared = getattr(cls, "SECTION", None)   # a section several commands read (encode:, search:)
        if cls is section_cls and base is not None:
            obj = dataclasses.replace(base, **values)
        elif config and shared and cls is not section_cls:
            from_yaml, _ = _config_section(config, shared, cls)
            obj = dataclasses.replace(from_yaml, **values) if from_yaml is not None else cls(**values)
        else:
            obj = cls(**values)
        if top_model and hasattr(obj, "model") and getattr(obj, "model") is None:
            obj.model = top_model
        out.append(validated(obj, section or cls.__name__))
    return out


def stage_command(name: str, *sources: type, section: str | None = None, section_cls: type | None = None):
    """A subcommand of ``kit`` whose flags are generated from the dataclasses ``sources`` (the files it reads
    and writes, the stage's options, run flags): a flag exists only for a field. With ``section``, `--config`
    reads that YAML section into ``section_cls`` first. The function gets one instance per source."""
    section_cls = section_cls or (sources[-1] if section else None)

    def deco(fn):
        @functools.wraps(fn)
        def callback(**kwargs):
            return fn(*build_sources(sources, kwargs, section, section_cls))

        cmd = handle_errors(callback)
        all_sources = sources + ((FromConfig,) if section else ())
        for cls in reversed(all_sources):
            cmd = click_options(cls)(cmd)
        command = main.command(name, context_settings=CONTEXT, epilog=EXIT_CODES)(cmd)
        command.kit_sources = all_sources
        return command
    return deco
