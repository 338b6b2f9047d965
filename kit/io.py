"""JSONL and file I/O shared by every stage: atomic writes, line-numbered errors, stable hashes.

Every stage reads and writes files through this module so that (a) a killed run never leaves a
half-written output that a later run would mistake for a finished one, and (b) a bad line is
reported as ``file:line: what is wrong`` while the rest of the file is still processed.
"""
from __future__ import annotations

import contextlib
import hashlib
import json
import os
import tempfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Iterable, Iterator


class KitError(Exception):
    """An error a user can act on; the CLI prints it without a traceback."""


@dataclass
class LineError:
    path: str
    line: int
    message: str

    def __str__(self) -> str:
        return f"{self.path}:{self.line}: {self.message}"


@dataclass
class ReadReport:
    """Collects per-line problems while a file is read, so one bad line does not stop a batch."""

    errors: list[LineError] = field(default_factory=list)

    def add(self, path, line: int, message: str) -> None:
        self.errors.append(LineError(str(path), line, message))

    def __bool__(self) -> bool:  # truthy when something went wrong
        return bool(self.errors)

    def summary(self, limit: int = 20) -> str:
        lines = [str(e) for e in self.errors[:limit]]
        if len(self.errors) > limit:
            lines.append(f"... and {len(self.errors) - limit} more")
        return "\n".join(lines)


def iter_jsonl(path, report: ReadReport | None = None,
               validate: Callable[[dict], str | None] | None = None) -> Iterator[tuple[int, dict]]:
    """Yield ``(line_number, record)`` for each valid JSON object line of ``path``.

    Blank lines are skipped; a UTF-8 byte-order mark on the first line is ignored (editors on Windows write
    one). Lines that are not UTF-8, not JSON objects, or that ``validate`` rejects (it returns a message) are
    recorded in ``report`` (or raise :class:`KitError` if no report is given); the other lines still count.
    """
    path = Path(path)
    if not path.exists():
        raise KitError(f"{path}: file not found")
    if path.is_dir():
        raise KitError(f"{path}: is a folder, expected a JSONL file")

    def problem(n: int, msg: str) -> None:
        if report is None:
            raise KitError(f"{path}:{n}: {msg}")
        report.add(path, n, msg)

    try:
        f = open(path, "rb")
    except OSError as e:
        raise KitError(f"{path}: cannot read ({e.strerror})") from None
    with f:
        for n, raw_bytes in enumerate(f, start=1):
            if n == 1 and raw_bytes.startswith(b"\xef\xbb\xbf"):
                raw_bytes = raw_bytes[3:]
            try:
                raw = raw_bytes.decode("utf-8")
            except UnicodeDecodeError as e:
                problem(n, f"not UTF-8 text (byte {e.start + 1} of the line); save the file as UTF-8")
                continue
            if not raw.strip():
                continue
            try:
                obj = json.loads(raw)
            except json.JSONDecodeError as e:
                problem(n, f"not valid JSON ({e.msg} at column {e.colno})")
                continue
            if not isinstance(obj, dict):
                problem(n, f"expected a JSON object, got {type(obj).__name__}")
                continue
            if validate is not None:
                why = validate(obj)
                if why:
                    problem(n, why)
                    continue
            yield n, obj


def read_jsonl(path, report: ReadReport | None = None,
               validate: Callable[[dict], str | None] | None = None) -> list[dict]:
    return [obj for _, obj in iter_jsonl(path, report, validate)]


@contextlib.contextmanager
def atomic_open(path, mode: str = "w", encoding: str | None = "utf-8"):
    """Open a temp file beside ``path``; rename it over ``path`` only if the block succeeds. A disk that is
    full or read-only is one clear line naming the file (the old file, if any, is left as it was)."""
    path = Path(path)
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    except OSError as e:
        raise KitError(f"{path}: cannot write ({e.strerror or e})") from None
    os.close(fd)
    try:
        kwargs = {} if "b" in mode else {"encoding": encoding}
        with open(tmp, mode, **kwargs) as f:
            yield f
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except OSError as e:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp)
        raise KitError(f"{path}: cannot write ({e.strerror or e})") from None
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp)
        raise


def write_jsonl(path, records: Iterable[dict]) -> int:
    """Write records atomically, one JSON object per line (UTF-8, not ASCII-escaped). Returns the count."""
    n = 0
    with atomic_open(path) as f:
        for r in records:
            f.write(json.dumps(r, ensure_ascii=False))
            f.write("\n")
            n += 1
    return n


def write_json(path, obj: Any, indent: int = 2) -> None:
    with atomic_open(path) as f:
        json.dump(obj, f, ensure_ascii=False, indent=indent, default=_json_default)
        f.write("\n")


def write_text(path, text: str) -> None:
    with atomic_open(path) as f:
        f.write(text)


def read_json(path) -> Any:
    path = Path(path)
    try:
        with open(path, encoding="utf-8") as f:
            return json.load(f)
    except FileNotFoundError:
        raise KitError(f"{path}: file not found") from None
    except json.JSONDecodeError as e:
        raise KitError(f"{path}:{e.lineno}: not valid JSON ({e.msg})") from None


def _json_default(o):
    try:
        import numpy as np
        if isinstance(o, np.generic):
            return o.item()
        if isinstance(o, np.ndarray):
            return o.tolist()
    except ImportError:  # pragma: no cover
        pass
    if isinstance(o, Path):
        return str(o)
    raise TypeError(f"not JSON serialisable: {type(o).__name__}")


def cache_dir() -> Path:
    """Where the kit keeps what must never be computed or paid for twice (LLM answers, embeddings, rankings):
    $KIT_CACHE_DIR, else $XDG_CACHE_HOME/kit, else ~/.cache/kit."""
    if os.environ.get("KIT_CACHE_DIR"):
        return Path(os.environ["KIT_CACHE_DIR"])
    base = os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
    return Path(base) / "kit"


def text_hash(text: str, n: int = 16) -> str:
    """Stable short hash of a text (hex)."""
    return hashlib.sha256(text.encode("utf-8")).hexdigest()[:n]


def stable_hash(obj: Any, n: int = 16) -> str:
    """Stable hash of a JSON-able object (key order independent)."""
    data = json.dumps(obj, ensure_ascii=False, sort_keys=True, default=_json_default)
    return text_hash(data, n)


def file_hash(path, n: int = 16, chunk: int = 1 << 20) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(chunk), b""):
            h.update(block)
    return h.hexdigest()[:n]
