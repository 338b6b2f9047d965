"""Starting a kit command that a test will interrupt as a user at a terminal would."""
from __future__ import annotations

import signal


def ctrl_c_default() -> None:
    """``preexec_fn`` for a child the test sends SIGINT: a shell starts background jobs with SIGINT ignored (POSIX, for
    non-interactive shells: `make test &`, `nohup`, CI runners), children inherit that, and Python then never turns
    Ctrl-C into KeyboardInterrupt. A user pressing Ctrl-C at a terminal has SIGINT delivered; so must the test."""
    signal.signal(signal.SIGINT, signal.SIG_DFL)
