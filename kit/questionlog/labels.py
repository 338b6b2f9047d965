"""``WORKDIR/data/log_labels.jsonl``: one row per merged log question, what the judge saw and decided, and the
``label`` training takes -- the one field a person edits.

A row::

    {"id", "query", "count", "variants", "first_seen", "last_seen",
     "status": labelled | no_answer | eval_question | failed,
     "label": [chunk ids]          what trains (edit this: [] rejects, ids of corpus.jsonl accept)
     "judged": [chunk ids]         what the judge (or a click) decided; a label that differs is a correction
     "by": judge | click | human,  "judge", "score", "threshold", "reason",
     "top1", "margin": the model's top-1 score and its lead over the next candidate,
     "found": whether the judge found an answer among the candidates (null: not judged), "clicked": [chunk ids],
     "candidates": [{"id", "title", "text", "model_rank", "bm25_rank", "score", "clicked"}]}

Corrections are taken back two ways: split reads this file (its fingerprint covers it), so an edited label
re-runs split and what follows; and when the logs stage itself runs again (a new log, a new model), a row whose
``label`` differs from its ``judged`` -- or that says ``"by": "human"`` -- keeps its label over the judge's.
"""
from __future__ import annotations

from pathlib import Path

from ..io import ReadReport, iter_jsonl, write_jsonl
from ..queries.parse import normalise
from .judges import Verdict
from .merge import LogQuestion

STATUSES = ("labelled", "no_answer", "eval_question", "failed")


def _candidate(chunks: list[dict], j: int, ranks: tuple[dict, dict], verdict: Verdict | None, clicked: set[int]
               ) -> dict:
    c = chunks[j]
    return {"id": c["id"], "title": c.get("title") or "", "text": c["text"][:160],
            "model_rank": ranks[0].get(j), "bm25_rank": ranks[1].get(j),
            "score": round(verdict.scores.get(j, 0.0), 4) if verdict else None, "clicked": j in clicked}


def label_row(q: LogQuestion, chunks: list[dict], shown: list[int], ranks: tuple[dict, dict],
              verdict: Verdict | None, status: str, signals: dict, clicked: set[int]) -> dict:
    """One row of log_labels.jsonl. ``signals``: top1, margin, judge, threshold."""
    ids = [chunks[j]["id"] for j in (verdict.accepted if verdict and status == "labelled" else [])]
    reason = (verdict.failed or verdict.reason) if verdict else "an eval question: never trains, not judged"
    return {"id": q.id, "query": q.query, "count": q.count, "variants": q.variants, "first_seen": q.first_seen,
            "last_seen": q.last_seen, "status": status, "label": ids, "judged": list(ids),
            "by": verdict.by if verdict else "judge", "judge": signals["judge"],
            "score": round(verdict.score, 4) if verdict else None, "threshold": signals["threshold"],
            "reason": reason, "top1": round(signals["top1"], 4), "margin": round(signals["margin"], 4),
            "found": status == "labelled" if status in ("labelled", "no_answer") else None,
            "clicked": [chunks[j]["id"] for j in sorted(clicked)],
            "candidates": [_candidate(chunks, j, ranks, verdict, clicked) for j in shown]}


def _corrected(row: dict) -> bool:
    label, judged = row.get("label"), row.get("judged")
    return row.get("by") == "human" or sorted(map(str, label or [])) != sorted(map(str, judged or []))


def read_corrections(path, known_ids: set[str], report: ReadReport) -> dict[str, list[str]]:
    """{question id and normalised question: label} of the rows a person corrected in an existing labels file."""
    path = Path(path)
    out: dict[str, list[str]] = {}
    if not path.is_file():
        return out
    for n, row in iter_jsonl(path, report):
        label = row.get("label")
        if not isinstance(label, list) or not isinstance(row.get("query"), str):
            report.add(path, n, "'label' must be a list of passage ids (and 'query' a text); row ignored")
            continue
        if not _corrected(row):
            continue
        unknown = [str(i) for i in label if str(i) not in known_ids]
        if unknown:
            report.add(path, n, f"label id(s) not in the corpus: {', '.join(unknown[:5])}; dropped")
        keep = [str(i) for i in label if str(i) in known_ids]
        out[str(row.get("id"))] = keep
        out["q:" + normalise(row["query"])] = keep
    return out


def apply_corrections(rows: list[dict], corrections: dict[str, list[str]]) -> int:
    """A person's label wins over the judge's (never on an eval question); returns how many rows it changed."""
    changed = 0
    for row in rows:
        label = corrections.get(row["id"], corrections.get("q:" + normalise(row["query"])))
        if label is None or row["status"] == "eval_question":
            continue
        row.update(label=label, by="human", status="labelled" if label else "no_answer")
        changed += 1
    return changed


def write_labels(path, rows: list[dict]) -> int:
    return write_jsonl(path, rows)


def training_questions(path, report: ReadReport | None = None) -> list[dict]:
    """The labelled log questions as split takes them: {query, chunk_ids, line}; rows without a label and eval
    questions are left out (whatever their label says)."""
    report = report if report is not None else ReadReport()
    out = []
    for n, row in iter_jsonl(path, report):
        label, q = row.get("label"), row.get("query")
        if not isinstance(q, str) or not q.strip() or not isinstance(label, list):
            report.add(path, n, "needs 'query' (text) and 'label' (list of passage ids); row ignored")
            continue
        if label and row.get("status") != "eval_question":
            out.append({"query": q, "chunk_ids": [str(i) for i in label], "line": n})
    return out


def log_questions(p, where: str) -> list[dict] | None:
    """The workdir's labelled log questions for a step that trains (split, deploy's refit): None when the config
    has no ``logs:`` section; a bad row is one ``file:line`` note and the rest goes on."""
    if not p.configured("logs"):
        return None
    from ..logs import note

    report = ReadReport()
    out = training_questions(p.wd.log_labels, report)
    for e in report.errors[:20]:
        note(f"[{where}] {e}")
    return out
