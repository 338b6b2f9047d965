"""The ``kit`` command: one click group; each subcommand parses options and calls one stage function.

Subcommands live one per stage module (kit/cli/<stage>.py) and register themselves on ``main``.
"""
from ._common import main  # noqa: F401

# Importing a module registers its subcommand(s) on `main`; the order is the pipeline's.
from . import prep, queries, split, mine, train, merge, adapter, bench, export, run  # noqa: E402,F401
from . import rerank_train  # noqa: E402,F401  (kit rerank-train)
from . import drift  # noqa: E402,F401  (kit drift)
from . import versions, update  # noqa: E402,F401  (kit versions, promote, rollback; kit update)
from . import index, publish  # noqa: E402,F401  (kit index, kit publish)
from . import logs  # noqa: E402,F401  (kit logs)
