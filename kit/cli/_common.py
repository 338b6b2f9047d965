"""The click group and what every subcommand shares: error reporting and logging setup."""
from __future__ import annotations

import functools
import logging
import os
import sys

import click

from ..io import KitError

CONTEXT = dict(help_option_names=["-h", "--help"], max_content_width=110)


@click.group(context_settings=CONTEXT)
@click.version_option(package_name="kit")
@click.option("-v", "--verbose", is_flag=True, help="Debug logging.")
def main(verbose: bool) -> None:
    """kit: fine-tune Chinese embedding models on your own PDFs.

    \b
    Pipeline (each step is a subcommand; `kit run` does them all from one YAML):
      prep -> gen-queries -> split -> mine -> train -> merge -> (adapter) -> bench

    \b
    Example:
      kit run configs/demo.yaml
    """
    logging.basicConfig(level=logging.DEBUG if verbose else logging.INFO,
                        format="%(levelname)s %(name)s: %(message)s")
    # Third-party libraries are chatty at INFO; the kit's own progress is what users need.
    for noisy in ("httpx", "httpx2", "httpcore", "openai", "urllib3", "jieba", "pdfminer", "filelock", "datasets"):
        logging.getLogger(noisy).setLevel(logging.WARNING)
    os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")


def handle_errors(fn):
    """Print a KitError as one clear line (no traceback) and exit with status 2."""
    @functools.wraps(fn)
    def wrapper(*args, **kwargs):
        try:
            return fn(*args, **kwargs)
        except KitError as e:
            click.echo(f"error: {e}", err=True)
            sys.exit(2)
    return wrapper
