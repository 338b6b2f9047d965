"""The record types the stages exchange, defined once, with their readers and writers.

Every file a stage reads goes through a reader here (validation with ``file:line`` errors collected in a
:class:`~kit.io.ReadReport`, so one bad line never stops a batch) and every file it writes through a writer
(atomic: temp file + rename). The formats are FlagEmbedding's own, so other tools read the kit's files:

=================  ==========================================================================================
chunk              prep's ``corpus.jsonl``: ``{id, doc, page_start, page_end, title, text}`` (+ ``source_id``,
                   ``ocr`` when present)
pair               gen-queries' ``pairs.jsonl``: ``{query, pos: [text], chunk_id, doc, generator}``
training row       FlagEmbedding's training JSONL: ``{query, pos, neg}`` (+ ``pos_ids``, ``neg_ids``,
                   ``pos_scores``, ``neg_scores``, ``doc``, ``generator``)
eval set           FlagEmbedding's custom-eval layout (``corpus.jsonl`` {id,title,text},
                   ``test_queries.jsonl`` {id,text}, ``test_qrels.jsonl`` {qid,docid,relevance}); BEIR's
                   (``_id``, ``queries.jsonl``, ``qrels/test.tsv`` or ``qrels.tsv``) is read too
model folder       see :mod:`kit.modelfolder`
=================  ==========================================================================================
"""
from __future__ import annotations

import random
import re
import unicodedata
from collections.abc import Sequence  # noqa: F401 (EvalSet.doc_texts)
from dataclasses import dataclass, field
from functools import cached_property
from pathlib import Path

from .io import KitError, ReadReport, iter_jsonl, write_jsonl

_SPACE = re.compile(r"\s+")


def norm_text(text: str) -> str:
    """Text as compared for leakage and matching: NFKC, lower case, no whitespace at all (Chinese text
    extracted from PDFs carries arbitrary spaces and line breaks)."""
    return _SPACE.sub("", unicodedata.normalize("NFKC", text)).lower()


def _texts(v) -> bool:
    return isinstance(v, list) and bool(v) and all(isinstance(p, str) and p.strip() for p in v)


# ---------------------------------------------------------------------------------------------- chunks

def check_chunk(o: dict) -> str | None:
    if not isinstance(o.get("id"), str) or not o["id"]:
        return "chunk has no string 'id'"
    if not isinstance(o.get("text"), str) or not o["text"].strip():
        return "chunk has no 'text'"
    if "title" in o and o["title"] is not None and not isinstance(o["title"], str):
        return "chunk 'title' must be a text"
    return None


def iter_corpus(path, report: ReadReport | None = None, required: bool = True):
    """prep's chunks one at a time, as the file is read (a stream: only the ids seen stay in memory); a duplicate
    id keeps the first chunk (pairs point at chunks by id)."""
    report = report if report is not None else ReadReport()
    first: dict[str, int] = {}
    for n, c in iter_jsonl(path, report, check_chunk):
        if c["id"] in first:
            report.add(path, n, f"duplicate id {c['id']!r} (first on line {first[c['id']]}); skipped")
            continue
        first[c["id"]] = n
        yield c
    if required and not first:
        raise KitError(f"{path}: no usable chunk" + (f"\n{report.summary()}" if report else ""))


def read_corpus(path, report: ReadReport | None = None, required: bool = True) -> list[dict]:
    """prep's chunks as a list (:func:`iter_corpus` where the corpus may be large)."""
    return list(iter_corpus(path, report, required))


def write_corpus(path, chunks) -> int:
    return write_jsonl(path, chunks)


# ----------------------------------------------------------------------------------------------- pairs

def check_pair(o: dict) -> str | None:
    if not isinstance(o.get("query"), str) or not o["query"].strip():
        return "pair has no 'query'"
    if not _texts(o.get("pos")):
        return "pair has no positive ('pos' must be a non-empty list of texts)"
    return None


def read_pairs(path, report: ReadReport | None = None) -> list[tuple[int, dict]]:
    """``(line, pair)`` for every valid pair (the line number lets later checks name it)."""
    return list(iter_jsonl(path, report, check_pair))


def write_pairs(path, pairs) -> int:
    return write_jsonl(path, pairs)


# --------------------------------------------------------------------------------------- training rows

def check_training_row(o: dict) -> str | None:
    """FlagEmbedding's training row: query, pos (non-empty list of texts), neg (list of texts), and the
    optional score lists matching their texts one to one (what knowledge distillation reads)."""
    q = o.get("query")
    if not isinstance(q, str) or not q.strip():
        return "row has no 'query'"
    if not _texts(o.get("pos")):
        return "row has no positive ('pos' must be a non-empty list of non-empty texts)"
    neg = o.get("neg", [])
    if not isinstance(neg, list) or not all(isinstance(n, str) for n in neg):
        return "'neg' must be a list of texts"
    for key, texts in (("pos_scores", o["pos"]), ("neg_scores", neg)):
        if key in o:
            s = o[key]
            if not isinstance(s, list) or len(s) != len(texts) or \
                    not all(isinstance(x, (int, float)) and not isinstance(x, bool) for x in s):
                return f"'{key}' must be a list of numbers, one per text of '{key.split('_')[0]}'"
    return None


def read_training_rows(path, report: ReadReport | None = None) -> list[tuple[int, dict]]:
    return list(iter_jsonl(path, report, check_training_row))


def write_training_rows(path, rows) -> int:
    return write_jsonl(path, rows)


# -------------------------------------------------------------------------------------------- eval set

@dataclass
class EvalSet:
    """Queries with their relevant passages, and the passages searched."""

    name: str
    path: str
    doc_ids: list[str]
    doc_texts: "Sequence[str]"   # a kit.spool.Spool from load_eval: on disk, read by number (issue 25)
    query_ids: list[str]
    query_texts: list[str]
    qrels: dict[str, dict[str, int]]
    problems: list[str] = field(default_factory=list)
    dropped: dict = field(default_factory=dict)      # reason -> count of questions not evaluated

    @cached_property
    def position(self) -> dict[str, int]:
        """Passage id -> its number in doc_ids / doc_texts (built once per set, shared by every model's scoring)."""
        return {d: i for i, d in enumerate(self.doc_ids)}

    def doc_text(self, doc_id: str) -> str:
        """One passage's text by its id (a position look-up: the texts stay where they are)."""
        return self.doc_texts[self.position[doc_id]]

    def docs_digest(self) -> str:
        """sha256 of the passage texts joined by U+001E, as ``text_hash("\x1e".join(doc_texts), 32)`` (a cache
        key), without joining them."""
        from .io import text_hash
        digest = getattr(self.doc_texts, "digest", None)
        return digest(32) if digest is not None else text_hash("\x1e".join(self.doc_texts), 32)


def _id_of(o: dict):
    v = o.get("id", o.get("_id"))
    return None if v is None or isinstance(v, (dict, list, bool)) else str(v)


def _check_text_row(o: dict) -> str | None:
    return None if _id_of(o) is not None and isinstance(o.get("text"), str) else "needs 'id' (or '_id') and 'text'"


def _relevance(v, where: str, report: ReadReport, n: int) -> int | None:
    try:
        if isinstance(v, bool) or (isinstance(v, float) and not v.is_integer()):
            raise ValueError
        return int(str(v).strip()) if not isinstance(v, int) else v
    except (ValueError, TypeError):
        report.add(where, n, f"relevance must be an integer, got {v!r}")
        return None


def read_qrels(path: Path, report: ReadReport) -> dict[str, dict[str, int]]:
    """{query id: {passage id: relevance}} from test_qrels.jsonl, qrels.tsv or qrels/test.tsv in ``path``."""
    qrels: dict[str, dict[str, int]] = {}
    if (path / "test_qrels.jsonl").exists():
        f = path / "test_qrels.jsonl"
        for n, o in iter_jsonl(f, report, lambda o: None if {"qid", "docid"} <= set(o) else "needs 'qid' and 'docid'"):
            rel = _relevance(o.get("relevance", 1), str(f), report, n)
            if rel is not None:
                qrels.setdefault(str(o["qid"]), {})[str(o["docid"])] = rel
        return qrels
    tsv = path / "qrels.tsv" if (path / "qrels.tsv").exists() else path / "qrels" / "test.tsv"
    if not tsv.exists():
        raise KitError(f"{path}: no test_qrels.jsonl, qrels.tsv or qrels/test.tsv")
    with open(tsv, encoding="utf-8-sig", errors="replace") as fh:
        for n, line in enumerate(fh, 1):
            parts = line.rstrip("\n").split("\t")
            if not line.strip() or (n == 1 and not parts[-1].strip().lstrip("-").isdigit()):
                continue  # blank or header
            if len(parts) < 3:
                report.add(tsv, n, "expected query-id<TAB>corpus-id<TAB>integer score")
                continue
            rel = _relevance(parts[2], str(tsv), report, n)
            if rel is not None:
                qrels.setdefault(parts[0], {})[parts[1]] = rel
    return qrels


def titled(title, text: str) -> str:
    """A passage as the kit embeds it for retrieval: its title (the 编/章/节 path, a law's name) before its text, as
    FlagEmbedding's evaluation does. Training (``train.passage_titles``) and the benchmark both use this, so a
    model is trained on passages in the form it is scored on."""
    title = title.strip() if isinstance(title, str) else ""
    return f"{title} {text}".strip() if title else text


def load_eval(path, max_queries: int | None = None, seed: int = 0, passage_titles: bool = True) -> EvalSet:
    """Read a custom-eval or BEIR folder. Bad lines are reported with file:line and skipped; questions that
    cannot be evaluated (no relevant passage in the corpus) are counted by reason in ``dropped``."""
    path = Path(path)
    report = ReadReport()
    if not (path / "corpus.jsonl").exists():
        raise KitError(f"{path}: no corpus.jsonl (expected FlagEmbedding's custom-eval or BEIR layout)")
    from .spool import Spool

    # The passages' texts go to a spool (a temp file read by number): what stays in memory per passage is its id
    # and an offset, so a bench over millions of chunks holds their vectors, not their text.
    doc_ids, doc_texts = [], Spool(prefix="kit-eval-")
    for _, o in iter_jsonl(path / "corpus.jsonl", report, _check_text_row):
        doc_ids.append(_id_of(o))
        doc_texts.append(titled(o.get("title"), o["text"]) if passage_titles else o["text"])
    qfile = path / "test_queries.jsonl" if (path / "test_queries.jsonl").exists() else path / "queries.jsonl"
    queries = {_id_of(o): o["text"] for _, o in iter_jsonl(qfile, report, _check_text_row)}
    qrels = read_qrels(path, report)
    known = set(doc_ids)
    dropped: dict[str, int] = {}
    kept: dict[str, dict[str, int]] = {}
    for q, rel in qrels.items():
        if q not in queries:
            dropped["qrels for an unknown query id"] = dropped.get("qrels for an unknown query id", 0) + 1
            continue
        good = {d: r for d, r in rel.items() if d in known and r > 0}
        if len(good) < sum(1 for r in rel.values() if r > 0):
            report.add(path / "corpus.jsonl", 0, f"query {q}: relevant passage(s) "
                       f"{', '.join(sorted(d for d in rel if d not in known)[:3])} not in the corpus")
        if good:
            kept[q] = good
        else:
            why = "no relevant passage in the corpus" if rel else "no relevance above 0"
            dropped[why] = dropped.get(why, 0) + 1
    qids = sorted(kept)
    if max_queries and len(qids) > max_queries:
        qids = sorted(random.Random(seed).sample(qids, max_queries))
    if not qids:
        raise KitError(f"{path}: no query with a relevant passage in the corpus"
                       + (f"\n{report.summary()}" if report else ""))
    return EvalSet(name=path.name, path=str(path), doc_ids=doc_ids, doc_texts=doc_texts, query_ids=qids,
                   query_texts=[queries[q] for q in qids], qrels={q: kept[q] for q in qids},
                   problems=[str(e) for e in report.errors], dropped=dropped)


EVAL_INFO = "kit_eval.json"   # beside an eval set: where its questions come from (read by the report)


def read_eval_info(eval_dir) -> dict:
    """kit split's note on an eval set's questions: {questions: real|generated, generators, holdout, source}."""
    from .io import read_json

    path = Path(eval_dir) / EVAL_INFO
    return read_json(path) if path.exists() else {"questions": "unknown"}


def write_eval(out_dir, chunks, queries: list[dict], qrels: list[dict], info: dict | None = None) -> Path:
    """FlagEmbedding's custom-eval layout (+ ``kit_eval.json``, ``info``); ``test_qrels.jsonl`` last, so its
    presence marks a whole set."""
    out_dir = Path(out_dir)
    if info is not None:
        from .io import write_json
        write_json(out_dir / EVAL_INFO, info)
    write_jsonl(out_dir / "corpus.jsonl",
                ({"id": c["id"], "title": c.get("title") or "", "text": c["text"]} for c in chunks))
    write_jsonl(out_dir / "test_queries.jsonl", queries)
    write_jsonl(out_dir / "test_qrels.jsonl", qrels)
    return out_dir
