"""Corpus chunks as index rows: the text the model embeds, the payload the search service reads, and a hash of
both (a stored row whose hash matches is neither embedded nor written again: resume and incremental updates)."""
from __future__ import annotations

from dataclasses import asdict, dataclass

from ..formats import iter_corpus, titled
from ..io import KitError, ReadReport, stable_hash
from ..spool import RecordSpool

MAX_ID_BYTES = 512                        # Milvus VARCHAR primary key
MAX_BYTES = {"doc": 2048, "title": 4096, "text": 65535}


@dataclass
class IndexRow:
    id: str
    text: str          # what the model embeds (before its passage instruction)
    payload: dict      # chunk_id, doc, page_start, page_end, title (+ text)
    hash: str


def clip(value: str, limit: int) -> tuple[str, bool]:
    """``value`` cut to ``limit`` UTF-8 bytes at a character boundary; (text, whether it was cut)."""
    raw = value.encode("utf-8")
    if len(raw) <= limit:
        return value, False
    return raw[:limit].decode("utf-8", errors="ignore"), True


def _page(v) -> int:
    return int(v) if isinstance(v, (int, float)) and not isinstance(v, bool) else -1


def to_row(chunk: dict, passage_titles: bool, payload_text: bool) -> tuple[IndexRow, bool]:
    cid = chunk["id"]
    if len(cid.encode("utf-8")) > MAX_ID_BYTES:
        raise KitError(f"chunk id {cid[:40]!r}...: longer than {MAX_ID_BYTES} bytes, too long for a store key")
    title = chunk.get("title") or ""
    text = titled(title, chunk["text"]) if passage_titles else chunk["text"]
    payload = {"chunk_id": cid, "doc": str(chunk.get("doc") or ""), "page_start": _page(chunk.get("page_start")),
               "page_end": _page(chunk.get("page_end")), "title": title}
    if payload_text:
        payload["text"] = chunk["text"]
    cut = False
    for key, limit in MAX_BYTES.items():
        if key in payload:
            payload[key], was_cut = clip(payload[key], limit)
            cut = cut or was_cut
    return IndexRow(cid, text, payload, stable_hash({"text": text, "payload": payload})), cut


def read_rows(corpus, passage_titles: bool = True, payload_text: bool = True) -> tuple[RecordSpool, dict]:
    """Every usable chunk of ``corpus`` as a row; (rows, notes: bad lines skipped, payloads cut to the store's
    limits). The rows are spooled to a temp file (kit/spool.py) and rebuilt when read by number or in order: the
    corpus is read as a stream and its text never sits in memory whole (issue 25)."""
    report = ReadReport()
    rows, cut = RecordSpool(asdict, lambda d: IndexRow(**d), prefix="kit-index-"), 0
    for chunk in iter_corpus(corpus, report):
        row, was_cut = to_row(chunk, passage_titles, payload_text)
        rows.append(row)
        cut += was_cut
    return rows, {"bad_lines": len(report.errors), "problems": [str(e) for e in report.errors[:5]],
                  "payloads_cut": cut}
