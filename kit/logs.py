"""Logging for the CLI: the kit's own progress at INFO on stderr, third-party chatter at WARNING, and no secret
in any log line at any verbosity.

Redaction happens where a record is *made* (``logging.setLogRecordFactory``), not in one handler: the OpenAI
SDK (``OPENAI_LOG=debug``) and other libraries may add handlers of their own, and a handler-level filter would
miss them. Each record's message is rendered once, redacted (:func:`kit.secrets.redact_text`), and its
traceback and stack pre-rendered redacted too, so every formatter reuses the clean text. Python warnings and
uncaught exceptions (main thread and worker threads) go through the same redaction.

Other libraries' INFO lines (faiss' loader, ...) reach stderr only with ``-v``; while a stage of `kit run` runs,
:func:`stage_log` keeps them, the kit's own lines and a trainer's whole output in ``WORKDIR/logs/<stage>.log``.
"""
from __future__ import annotations

import contextlib
import logging
import sys
import threading
import time
import traceback
from pathlib import Path

from .secrets import redact_text

NOISY = ("httpx", "httpx2", "httpcore", "httpcore2", "openai", "urllib3", "jieba", "bm25s", "pdfminer", "filelock",
         "datasets")
# With -v the HTTP clients' own lines (request URLs, retries) are shown too: redaction makes that safe.
API_LOGGERS = ("openai", "httpx", "httpx2")

_installed = False


class RedactFilter(logging.Filter):
    """Rewrites a record in place so no formatter can reveal a key: message, traceback and stack redacted."""

    def filter(self, record: logging.LogRecord) -> bool:
        redact_record(record)
        return True


def redact_record(record: logging.LogRecord) -> logging.LogRecord:
    if getattr(record, "_kit_redacted", False):
        return record
    try:
        message = record.getMessage()
    except Exception:  # noqa: BLE001 - a malformed record must still be logged, never crash the caller
        message = f"{record.msg} {record.args}"
    record.msg, record.args = redact_text(message), None
    if record.exc_info and not record.exc_text:
        record.exc_text = redact_text("".join(traceback.format_exception(*record.exc_info)).rstrip("\n"))
    elif record.exc_text:
        record.exc_text = redact_text(record.exc_text)
    if record.stack_info:
        record.stack_info = redact_text(record.stack_info)
    record._kit_redacted = True
    return record


def install_redaction() -> None:
    """Redact every log record made from now on, whatever logger or handler it goes to (idempotent)."""
    global _installed
    if _installed:
        return
    _installed = True
    make = logging.getLogRecordFactory()

    def factory(*args, **kwargs):
        return redact_record(make(*args, **kwargs))

    logging.setLogRecordFactory(factory)
    logging.captureWarnings(True)   # warnings.warn(...) texts (a URL in an SSL warning) become records too
    sys.excepthook = _excepthook
    threading.excepthook = _thread_excepthook


def _excepthook(exc_type, exc, tb) -> None:
    sys.stderr.write(redact_text("".join(traceback.format_exception(exc_type, exc, tb))))


def _thread_excepthook(args) -> None:
    if args.exc_type is SystemExit:
        return
    name = args.thread.name if args.thread is not None else "?"
    text = "".join(traceback.format_exception(args.exc_type, args.exc_value, args.exc_traceback))
    sys.stderr.write(redact_text(f"Exception in thread {name}:\n{text}"))


def setup_logging(verbose: bool = False) -> None:
    global _verbose
    install_redaction()
    _verbose = _CONSOLE.verbose = verbose
    logging.basicConfig(level=logging.DEBUG if verbose else logging.INFO,
                        format="%(levelname)s %(name)s: %(message)s")
    for handler in logging.getLogger().handlers:
        handler.addFilter(RedactFilter())   # records made before install_redaction, or by another factory
        if type(handler) is logging.StreamHandler:   # the console (not a test harness's capture handler)
            handler.addFilter(_CONSOLE)
    # jieba sets its logger to DEBUG on import ("Building prefix dict ... Loading model cost"), undoing the level
    # given here whenever it is imported later; importing it now (27 ms, the dictionary loads lazily) makes the
    # level below stick. bm25s does the same but costs 0.3 s to import: see quiet_after_import.
    import jieba  # noqa: F401
    for noisy in NOISY:
        _LEVELS[noisy] = logging.DEBUG if verbose and noisy in API_LOGGERS else logging.WARNING
        logging.getLogger(noisy).setLevel(_LEVELS[noisy])
    if not verbose:
        # pdfminer warns once per font it cannot measure ("Could not get FontBBox ..."): dozens of lines per
        # statute that change nothing in the text; prep's own fidelity figure is what says whether text was lost.
        _LEVELS["pdfminer"] = logging.ERROR
        logging.getLogger("pdfminer").setLevel(logging.ERROR)


_LEVELS: dict[str, int] = {}


def quiet_after_import(name: str) -> None:
    """Give back the level setup_logging chose to a library that set its own logger to DEBUG on import."""
    if name in _LEVELS:
        logging.getLogger(name).setLevel(_LEVELS[name])


# --- the console, and a stage's log -------------------------------------------------------------------------------
def note(text) -> None:
    """The one way library code reports progress and notes: a line on stderr (results go to stdout, from the CLI
    only) and in the running stage's log. Library modules never print: they call this, or return a summary."""
    import click

    click.echo(text, err=True)
    log = current_log()
    if log is not None:
        log.line(text)



OWN_LOGGERS = ("kit", "__main__", "root")
LOG_FORMAT = "%(asctime)s %(levelname)s %(name)s: %(message)s"

_verbose = False


def is_verbose() -> bool:
    """Whether the CLI was given -v: everything on stderr too (third-party INFO lines, the trainer's whole output)."""
    return _verbose


class ConsoleFilter(logging.Filter):
    """What stderr shows of the log records: the kit's own, and every warning or error; other libraries' INFO
    lines (faiss' "Loading faiss with AVX2 support.", ...) only with -v. A running stage's log keeps them all."""

    verbose = False

    def filter(self, record: logging.LogRecord) -> bool:
        return self.verbose or record.levelno >= logging.WARNING or record.name.split(".")[0] in OWN_LOGGERS


_CONSOLE = ConsoleFilter()


class StageLog:
    """A log file the kit appends to line by line, from any thread, every line redacted: a stage's
    ``WORKDIR/logs/<stage>.log``, or the log beside a standalone `kit train`'s output folder."""

    def __init__(self, path, title: str | None = None):
        self.path = Path(path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._lock = threading.Lock()
        self._file = open(self.path, "a", encoding="utf-8")
        if title:
            self.line(f"===== {title} ({time.strftime('%Y-%m-%d %H:%M:%S')}) =====")

    def write(self, text: str) -> None:
        with self._lock:
            if not self._file.closed:
                self._file.write(redact_text(text))
                self._file.flush()

    def line(self, text) -> None:
        self.write(str(text).rstrip("\n") + "\n")

    def close(self) -> None:
        with self._lock:
            self._file.close()


class StageLogHandler(logging.Handler):
    """Every log record that reaches the root logger, whatever its library, into a :class:`StageLog`."""

    def __init__(self, log: StageLog):
        super().__init__(logging.DEBUG)
        self.log = log
        self.setFormatter(logging.Formatter(LOG_FORMAT))
        self.addFilter(RedactFilter())

    def emit(self, record: logging.LogRecord) -> None:
        try:
            self.log.line(self.format(record))
        except Exception:  # noqa: BLE001 - logging must never break the stage
            self.handleError(record)


_stage_logs: list[StageLog] = []


def current_log() -> StageLog | None:
    """The log of the stage running now (None outside `kit run`)."""
    return _stage_logs[-1] if _stage_logs else None


@contextlib.contextmanager
def stage_log(path, title: str):
    """While the block runs, ``path`` (appended to, one header per run) gets every log record the loggers let
    through (other libraries' INFO lines included, which stderr shows only with -v), what is written to
    :func:`current_log` (the kit's progress lines, a trainer's whole output), and the error that ended the block."""
    log = StageLog(path, title)
    handler = StageLogHandler(log)
    root = logging.getLogger()
    root.addHandler(handler)
    _stage_logs.append(log)
    try:
        yield log
    except BaseException as e:
        log.line(f"===== stopped: {type(e).__name__}{': ' if str(e) else ''}{e}")
        raise
    finally:
        _stage_logs.remove(log)
        root.removeHandler(handler)
        log.close()
