"""Streaming the trainer's output live, with a one-line summary per logged step."""
from __future__ import annotations

import os
import re
import subprocess
import sys

from ..procs import popen_tied, terminate_on_signals

_LOSS = re.compile(r"\{'loss': '?([0-9.eE+-]+)'?.*?'learning_rate': '?([0-9.eE+-]+)'?.*?'epoch': '?([0-9.]+)'?")
_STEP = re.compile(r"(\d+)/(\d+) \[")


class StepCounter:
    """The trainer's loss dict carries no step number and tqdm redraws at most every 0.1 s (so its counter
    can lag the log), hence the step is counted from ``logging_steps`` when that is a whole number."""

    def __init__(self, logging_steps, start_step: int = 0, label: str = "kit train"):
        self.label = label
        try:
            self.every = int(logging_steps) if logging_steps is not None and float(logging_steps) >= 1 else None
        except (TypeError, ValueError):
            self.every = None
        self.start, self.logs, self.step, self.total = start_step, 0, None, None

    def line(self, part: str) -> str | None:
        """The summary line for one output line, when it is a loss log."""
        for m in _STEP.finditer(part):
            self.step, self.total = int(m.group(1)), int(m.group(2))
        m = _LOSS.search(part)
        if not m:
            return None
        self.logs += 1
        if self.every:
            self.step = self.start + self.logs * self.every
        where = f"step {self.step}/{self.total} " if self.total else ""
        return f"\n[{self.label}] {where}loss {m.group(1)} lr {m.group(2)} epoch {m.group(3)}\n"


def run_streaming(cmd: list[str], env: dict | None = None, echo=None, logging_steps=None,
                  start_step: int = 0, label: str = "kit train") -> int:
    """Run ``cmd`` (tied to this process: it dies with it), passing its output through live."""
    echo = echo or (lambda s: (sys.stdout.write(s), sys.stdout.flush()))
    counter = StepCounter(logging_steps, start_step, label)
    proc = popen_tied(cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, env=env)
    buf = ""
    with terminate_on_signals(proc):
        try:
            while True:
                chunk = os.read(proc.stdout.fileno(), 65536)
                if not chunk:
                    break
                text = chunk.decode("utf-8", errors="replace")
                echo(text)
                parts = re.split(r"[\r\n]", buf + text)
                buf = parts.pop()
                for part in parts:
                    summary = counter.line(part)
                    if summary:
                        echo(summary)
        finally:
            rc = proc.wait()
    return rc
