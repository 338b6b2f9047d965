"""Streaming the trainer's output live, with a one-line summary per logged step.

Without -v the console gets what a user follows (the training bar, the kit's step/loss lines, warnings, errors and
any line it does not know) and the log everything: the argument dump (~150 lines), the model config, the trainer's
other INFO lines, the loading bars and torchrun's own report of a failed child stay in the log only."""
from __future__ import annotations

import codecs
import os
import re
import subprocess
import sys
from collections import deque

from ..procs import popen_tied, terminate_on_signals

_LOSS = re.compile(r"\{'loss': '?([0-9.eE+-]+)'?.*?'learning_rate': '?([0-9.eE+-]+)'?.*?'epoch': '?([0-9.]+)'?")
_STEP = re.compile(r"(\d+)/(\d+) \[")

_ANSI = re.compile(r"\x1b\[[0-9;?]*[A-Za-z]")
_BAR_END = re.compile(r"\[\d+:\d+(?::\d+)?(?:<[^,\]]*)?,[^\]]*\]")    # a tqdm bar's "[elapsed<left, rate]"
_TRAIN_BAR = re.compile(r"^\s*\d+%\|")                                   # the bar without a title: the steps
# "12/06/2026 22:29:12 - INFO - name -   msg" (FlagEmbedding, transformers' examples), "INFO:name:msg", "INFO name: msg"
_HEADER = re.compile(r"^\S.*? - (DEBUG|INFO|WARNING|WARN|ERROR|CRITICAL|FATAL) - "
                     r"|^(DEBUG|INFO|WARNING|WARN|ERROR|CRITICAL|FATAL)(?::|\s+[\w.]+: )")
_QUIET_LEVELS = ("DEBUG", "INFO")
_GLOG = re.compile(r"^[IWEF]\d{4} \d\d:\d\d:\d\d\.\d+\s+\d+ \S+\] ")  # torchrun's own lines ("E1206 ... api.py:1002] ")
_CONTINUED = re.compile(r"^\s|^[\w.]+=|^[)}\]]")       # an indented line, "key=value," of a dump, a closing bracket
_METRICS = re.compile(r"^\{'[\w/]+': .*\}\s*$")        # the trainer's metrics dicts (the loss one is summarised)
_WARN_CALL = re.compile(r"^\s+warnings\.warn\(\s*$")   # the source line Python prints under a warning


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


class TrainerOutput:
    """The trainer's output, split. ``log`` (anything with ``line(text)``) gets every line, a tqdm bar as its last
    state. ``echo`` gets everything as it arrives when ``verbose``; otherwise the training bar (redrawn with \\r),
    the step/loss summaries, warnings and errors with their indented lines (tracebacks), and any line of no known
    kind, but not the INFO records with their dumps, the other bars, the metrics dicts, nor what torchrun prints
    after its child failed. A failed run whose last line was not shown gets the child's last lines at the end."""

    def __init__(self, echo, log=None, verbose: bool = True, counter: StepCounter | None = None):
        self.echo, self.log, self.verbose = echo, log, verbose
        self.counter = counter or StepCounter(None)
        self.buf, self.text, self.rest = "", "", ""   # unfinished piece; the line's last segment, with/without bar
        self.mode = None                # "show" / "hide": what a continuation line follows
        self.bar_open = False           # the console's cursor stands after a drawn bar
        self.child_done = False         # torchrun reported its child's failure: the rest is its own report
        self.recent: deque = deque(maxlen=12)   # (line, shown) of the child's last lines

    def feed(self, text: str) -> None:
        if self.verbose:
            self.echo(text)
        pieces = re.split(r"(\r|\n)", self.buf + text)
        self.buf = pieces.pop()
        for segment, sep in zip(pieces[::2], pieces[1::2]):
            self._segment(_ANSI.sub("", segment), sep == "\n")

    def close(self, failed: bool = False) -> None:
        """End of output: the last unfinished line; after a failure, the last lines if the last was not shown."""
        if self.buf:
            self._segment(_ANSI.sub("", self.buf), True)
            self.buf = ""
        if failed and not self.verbose and self.recent and not self.recent[-1][1]:
            self._show(f"[{self.counter.label}] the trainer's last lines:")
            for line, _ in self.recent:
                self._show(f"  {line}")
        if self.bar_open:
            self.echo("\n")
            self.bar_open = False

    def _segment(self, segment: str, end_of_line: bool) -> None:
        summary = self.counter.line(segment)
        rest = segment if self.verbose else self._draw_bar(segment)
        if segment.strip():
            self.text = segment
        if rest.strip():
            self.rest = rest
        if end_of_line:
            self._end_line()
        if summary:
            if self.log is not None:
                self.log.line(summary.strip())
            if self.verbose:
                self.echo(summary)
            else:
                self._show(summary.strip())

    def _draw_bar(self, segment: str) -> str:
        """Draws the training bar (only) on the console; returns what follows the bar in the segment."""
        m = _BAR_END.search(segment)
        if not m:
            return segment
        if _TRAIN_BAR.match(segment) and not self.child_done:
            self.echo("\r" + segment[:m.end()])
            self.bar_open = True
        return segment[m.end():]

    def _end_line(self) -> None:
        text, rest, self.text, self.rest = self.text, self.rest, "", ""
        if self.log is not None:
            self.log.line(text)
        if self.verbose or not rest.strip() or self.child_done:
            return
        shown = self._shows(rest)
        if shown:
            self._show(rest)
        if not self.child_done:
            self.recent.append((rest, shown))

    def _shows(self, line: str) -> bool:
        """Whether a finished line goes to the console (without -v); keeps track of multi-line records."""
        header = _HEADER.match(line)
        if _GLOG.match(line):
            self.child_done = self.child_done or "failed (exitcode" in line
            self.mode = "hide"
        elif header:
            self.mode = "hide" if (header.group(1) or header.group(2)) in _QUIET_LEVELS else "show"
        elif line.startswith("usage: "):      # argparse's usage block: its error line comes after it
            self.mode = "hide"
        elif _METRICS.match(line) or _WARN_CALL.match(line):
            return False
        elif not (_CONTINUED.match(line) and self.mode):
            self.mode = "show"
        return self.mode == "show"

    def _show(self, line: str) -> None:
        if self.bar_open:
            self.echo("\n")
            self.bar_open = False
        self.echo(line + "\n")


def run_streaming(cmd: list[str], env: dict | None = None, echo=None, logging_steps=None,
                  start_step: int = 0, label: str = "kit train", log=None, verbose: bool = True) -> int:
    """Run ``cmd`` (tied to this process: it dies with it), passing its output through live: all of it to
    ``echo`` when ``verbose``, else what :class:`TrainerOutput` shows; all of it to ``log`` when given."""
    echo = echo or (lambda s: (sys.stdout.write(s), sys.stdout.flush()))
    out = TrainerOutput(echo, log, verbose, StepCounter(logging_steps, start_step, label))
    decoder = codecs.getincrementaldecoder("utf-8")(errors="replace")   # a character split across two reads
    proc = popen_tied(cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, env=env)
    try:
        with terminate_on_signals(proc):
            try:
                while True:
                    chunk = os.read(proc.stdout.fileno(), 65536)
                    if not chunk:
                        break
                    out.feed(decoder.decode(chunk))
                out.feed(decoder.decode(b"", final=True))
            finally:
                rc = proc.wait()
    except BaseException:
        out.close()
        raise
    out.close(failed=rc != 0)
    return rc
