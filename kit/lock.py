"""One run per workdir: an exclusive lock that names its holder and can never go stale.

``fcntl.flock`` is released by the kernel when the holding process dies (even by SIGKILL), so a lock left by
a killed run never blocks the next one; the file's content (pid, host, start time, command) only tells the
second run *who* holds it. A file whose writer is gone is reported as a stale lock and taken over.
"""
from __future__ import annotations

import fcntl
import json
import os
import socket
import sys
import time
from pathlib import Path

from .io import KitError
from .secrets import redact_text
from .logs import note


def _holder_text(info: dict) -> str:
    started = time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(info.get("started", 0)))
    return f"pid {info.get('pid')} on {info.get('host')}, started {started}: {info.get('command', '')}"


class WorkdirLock:
    def __init__(self, path, echo=None):
        self.path = Path(path)
        self.echo = echo or note
        self._fd: int | None = None

    def _read(self) -> dict:
        try:
            return json.loads(self.path.read_text(encoding="utf-8") or "{}")
        except (OSError, ValueError):
            return {}

    def acquire(self) -> None:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o644)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            os.close(fd)
            info = self._read()
            raise KitError(f"{self.path.parent}: another kit run is using this workdir ({_holder_text(info)}); "
                           f"wait for it to finish or stop it, or use another workdir") from None
        previous = self._read()
        if previous.get("pid") and previous.get("pid") != os.getpid():
            self.echo(f"[kit] taking over a stale lock ({_holder_text(previous)}; that run is gone)")
        info = {"pid": os.getpid(), "host": socket.gethostname(), "started": time.time(),
                "command": redact_text(" ".join(sys.argv))[:300]}   # a --base-url may carry a key
        os.ftruncate(fd, 0)
        os.pwrite(fd, json.dumps(info).encode("utf-8"), 0)
        self._fd = fd

    def release(self) -> None:
        if self._fd is None:
            return
        try:
            os.ftruncate(self._fd, 0)   # an empty file: nobody holds it
            fcntl.flock(self._fd, fcntl.LOCK_UN)
        finally:
            os.close(self._fd)
            self._fd = None

    def __enter__(self):
        self.acquire()
        return self

    def __exit__(self, *exc):
        self.release()
        return False
