"""Child processes that never outlive the kit: a killed ``kit`` (even by SIGKILL) takes its children along.

Linux's ``prctl(PR_SET_PDEATHSIG)`` makes the kernel send the child a signal when its parent dies; the
standard library does not expose it, hence ctypes. Elsewhere it is a no-op and only the signal handlers of
:func:`terminate_on_signals` apply.
"""
from __future__ import annotations

import contextlib
import ctypes
import os
import signal
import subprocess
import sys

PR_SET_PDEATHSIG = 1


def die_with_parent(sig: int = signal.SIGTERM) -> None:
    """Call in a child (preexec_fn, pool initializer): the kernel signals it when the parent dies."""
    if sys.platform.startswith("linux"):
        try:
            ctypes.CDLL("libc.so.6", use_errno=True).prctl(PR_SET_PDEATHSIG, int(sig), 0, 0, 0)
        except OSError:  # no libc.so.6 (musl): the signal handlers still stop children on SIGTERM/SIGINT
            pass


def popen_tied(cmd: list[str], **kw) -> subprocess.Popen:
    """``subprocess.Popen`` whose process receives SIGTERM when this process dies."""
    return subprocess.Popen(cmd, preexec_fn=die_with_parent, **kw)


@contextlib.contextmanager
def terminate_on_signals(proc: subprocess.Popen, grace: float = 10.0):
    """While the block runs, SIGTERM to this process terminates ``proc`` first (then exits as usual), so a
    supervisor's ``kill`` stops training at once instead of leaving torchrun running."""
    def handler(signum, frame):
        stop(proc, grace)
        signal.signal(signum, signal.SIG_DFL)
        os.kill(os.getpid(), signum)

    old = signal.signal(signal.SIGTERM, handler)
    try:
        yield proc
    except BaseException:   # Ctrl-C (KeyboardInterrupt) or an error: the child must not go on alone
        stop(proc, grace)
        raise
    finally:
        signal.signal(signal.SIGTERM, old)


def stop(proc: subprocess.Popen, grace: float = 10.0) -> None:
    """SIGTERM, then SIGKILL after ``grace`` seconds."""
    if proc.poll() is not None:
        return
    proc.terminate()
    try:
        proc.wait(timeout=grace)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait()
