"""A question log -> rows: JSONL (objects, or bare JSON strings), CSV/TSV with a header, or plain text (one
question a line), in UTF-8 or GB18030 (what Chinese Excel and many Windows tools save).

Column names are matched case-insensitively against the synonyms below. A bad row is one ``file:line`` line in
the :class:`~kit.io.ReadReport` and the rest is read; a CSV without a question column is one line naming the
columns it has, and the other files still count. Personal data is masked here, as each question is read, so
nothing later -- the merged rows, the labels file, the embedding cache, an LLM prompt -- ever sees it; problem
lines never quote a question.
"""
from __future__ import annotations

import csv
import io
import json
from collections import Counter
from dataclasses import dataclass
from pathlib import Path

from ..io import KitError, ReadReport
from .privacy import mask

QUESTION = ("question", "query", "text", "q", "问题", "提问", "搜索词", "query_text")
PASSAGE_ID = ("passage_id", "clicked_id", "accepted_id", "chunk_id", "doc_id", "source_id", "clicked", "点击")
PASSAGE_TEXT = ("passage", "passage_text", "clicked_text", "accepted_text", "answer", "答案")
TIMESTAMP = ("timestamp", "time", "ts", "date", "datetime", "时间")
COUNT = ("count", "n", "freq", "frequency", "times", "次数")
SUFFIXES = (".jsonl", ".ndjson", ".json", ".csv", ".tsv", ".txt")


@dataclass
class LogRow:
    query: str                      # masked
    where: str                      # file:line
    count: int = 1
    passage_id: str | None = None
    passage_text: str | None = None  # only matched against the corpus, never stored
    timestamp: str | None = None


def log_files(paths: list[str]) -> list[Path]:
    """The files named, and the log files inside the folders named (sorted)."""
    out: list[Path] = []
    for p in map(Path, paths):
        if p.is_dir():
            out += sorted(f for f in p.rglob("*") if f.is_file() and f.suffix.lower() in SUFFIXES)
        elif p.is_file():
            out.append(p)
        else:
            raise KitError(f"{p}: question log not found")
    if not out:
        raise KitError(f"{', '.join(paths)}: no question log (.jsonl, .csv, .tsv or .txt) found")
    return out


def decode(path: Path, report: ReadReport) -> tuple[str | None, str]:
    """(text, encoding): UTF-8 (a BOM is dropped), else GB18030; None when neither reads the file."""
    data = path.read_bytes()
    try:
        return data.removeprefix(b"\xef\xbb\xbf").decode("utf-8"), "utf-8"
    except UnicodeDecodeError as e:
        first_bad = data[:e.start].count(b"\n") + 1
    try:
        return data.decode("gb18030"), "gb18030"
    except UnicodeDecodeError:
        report.add(path, first_bad, "neither UTF-8 nor GB18030 text; save the log as UTF-8 (file skipped)")
        return None, ""


def _pick(keys, names: tuple[str, ...]) -> str | None:
    low = {str(k).strip().lower(): k for k in keys}
    return next((low[n] for n in names if n in low), None)


class _Builder:
    """Turns one record (a dict of the file's own column names) into a LogRow, or one problem line."""

    def __init__(self, path: Path, opts, report: ReadReport, masked: Counter):
        self.path, self.opts, self.report, self.masked = path, opts, report, masked

    def row(self, n: int, rec: dict) -> LogRow | None:
        qkey = _pick(rec, QUESTION)
        q = rec.get(qkey) if qkey is not None else None
        if q is not None and not isinstance(q, str):
            q = str(q)
        if not q or not q.strip():
            self.report.add(self.path, n, "empty question" if qkey is not None else
                            f"no question field (expected one of {', '.join(QUESTION[:4])})")
            return None
        q = " ".join(q.split())
        if len(q) > self.opts.max_chars:
            self.report.add(self.path, n, f"question of {len(q):,} characters (more than max_chars "
                                          f"{self.opts.max_chars}): skipped")
            return None
        q, counts = mask(q, self.opts.mask)
        self.masked.update(counts)
        return LogRow(query=q, where=f"{self.path}:{n}", count=self._count(n, rec),
                      passage_id=_text(rec, PASSAGE_ID), passage_text=_text(rec, PASSAGE_TEXT),
                      timestamp=_text(rec, TIMESTAMP))

    def _count(self, n: int, rec: dict) -> int:
        key = _pick(rec, COUNT)
        v = rec.get(key) if key is not None else None
        if v is None or v == "":
            return 1
        try:
            c = int(float(str(v).strip()))
            if c >= 1:
                return c
        except ValueError:
            pass
        self.report.add(self.path, n, f"count {str(v)[:20]!r} is not a whole number >= 1; counted once")
        return 1


def _text(rec: dict, names: tuple[str, ...]) -> str | None:
    key = _pick(rec, names)
    v = rec.get(key) if key is not None else None
    if v is None or isinstance(v, (dict, list, bool)):
        return None
    s = str(v).strip()
    return s or None


def _jsonl_records(path: Path, text: str, report: ReadReport):
    for n, line in enumerate(text.splitlines(), 1):
        if not line.strip():
            continue
        try:
            obj = json.loads(line)
        except json.JSONDecodeError as e:
            report.add(path, n, f"not valid JSON ({e.msg} at column {e.colno})")
            continue
        if isinstance(obj, str):
            obj = {"question": obj}
        if not isinstance(obj, dict):
            report.add(path, n, f"expected a JSON object or string, got {type(obj).__name__}")
            continue
        yield n, obj


def _csv_records(path: Path, text: str, report: ReadReport):
    delimiter = "\t" if path.suffix.lower() == ".tsv" else None
    if delimiter is None:
        try:
            delimiter = csv.Sniffer().sniff(text[:4096], delimiters=",\t;").delimiter
        except csv.Error:
            delimiter = ","
    reader = csv.reader(io.StringIO(text), delimiter=delimiter)
    header = next(reader, None)
    if not header or _pick(header, QUESTION) is None:
        found = ", ".join(h.strip() for h in header or []) or "none"
        report.add(path, 1, f"no question column (columns: {found[:200]}; expected one of "
                            f"{', '.join(QUESTION[:5])}); file skipped")
        return
    names = [h.strip() for h in header]
    try:
        for cells in reader:
            n = reader.line_num
            if not any(c.strip() for c in cells):
                continue
            if len(cells) > len(names):
                report.add(path, n, f"{len(cells)} cells for {len(names)} columns (an unquoted delimiter?); skipped")
                continue
            yield n, dict(zip(names, cells))
    except csv.Error as e:   # a field past the csv module's size limit, a NUL byte: the file cannot be read on
        report.add(path, reader.line_num, f"unreadable CSV ({e}); the rest of the file skipped")


def _text_records(text: str):
    for n, line in enumerate(text.splitlines(), 1):
        if line.strip():
            yield n, {"question": line}


def read_log(paths: list[str], opts, report: ReadReport) -> tuple[list[LogRow], dict]:
    """Every usable row of every log file, and what was noticed on the way ({files, encodings, masked})."""
    rows: list[LogRow] = []
    masked: Counter = Counter()
    info = {"files": [], "encodings": {}, "masked": masked}
    for path in log_files(paths):
        text, encoding = decode(path, report)
        if text is None:
            continue
        info["files"].append(str(path))
        info["encodings"][str(path)] = encoding
        suffix = path.suffix.lower()
        records = (_jsonl_records(path, text, report) if suffix in (".jsonl", ".ndjson", ".json") else
                   _csv_records(path, text, report) if suffix in (".csv", ".tsv") else _text_records(text))
        build = _Builder(path, opts, report, masked)
        rows += [r for n, rec in records if (r := build.row(n, rec)) is not None]
    info["masked"] = dict(masked)
    return rows, info
