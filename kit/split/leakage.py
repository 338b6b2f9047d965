"""The leakage check after mining: no eval passage, and nothing outside the chunks training may see, among
the training rows' negatives (or generated positives). Compares normalised texts, never labels."""
from __future__ import annotations

from pathlib import Path

from ..formats import load_eval, norm_text, read_corpus, read_training_rows
from ..io import ReadReport


def training_leakage(rows_path, eval_dir, train_corpus_path=None) -> dict:
    es = load_eval(eval_dir, passage_titles=False)
    gold = {norm_text(es.doc_text(d)) for rel in es.qrels.values() for d in rel}
    allowed = None
    if train_corpus_path and Path(train_corpus_path).exists():
        allowed = {norm_text(c["text"]) for c in read_corpus(train_corpus_path, ReadReport(), required=False)}
    out = {"rows_checked": 0, "eval_passages_among_negatives": 0, "eval_passages_among_generated_positives": 0,
           "negatives_outside_training_corpus": 0}
    for _, r in read_training_rows(rows_path, ReadReport()):
        out["rows_checked"] += 1
        negs = [norm_text(t) for t in r.get("neg") or []]
        out["eval_passages_among_negatives"] += sum(t in gold for t in negs)
        if r.get("generator") != "real":
            out["eval_passages_among_generated_positives"] += sum(norm_text(t) in gold for t in r["pos"])
        if allowed is not None:
            out["negatives_outside_training_corpus"] += sum(t not in allowed for t in negs)
    return out


def leaked(report: dict) -> int:
    return sum(v for k, v in report.items() if k != "rows_checked")
