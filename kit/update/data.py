"""An update's training rows and eval set: the new documents' pairs split (by document, or around the real
questions given for them), a replay sample of the rows the deployed model learnt from, the chunks training may see.

What never trains: an eval question (frozen or new, by normalised text) and a passage any eval set holds out (its
``heldout.json``: the new set's held-out documents or gold passages, and each frozen set's). The rows of documents
that are gone or changed leave the replay pool; the replay rows lose their old negatives (mining draws new ones
from the current corpus).
"""
from __future__ import annotations

import random
from dataclasses import replace
from pathlib import Path

from ..formats import load_eval, norm_text, read_corpus, read_training_rows, write_corpus, write_training_rows
from ..io import KitError, ReadReport, iter_jsonl, read_json, write_json
from ..versions.register import norm_key

OLD_NEGATIVES = ("neg", "neg_ids", "pos_scores", "neg_scores")


def check_questions(path) -> int:
    """Real questions given for the new documents, read before anything runs: how many; one line when the file is
    empty, unreadable or holds no question."""
    path = Path(path)
    if path.is_dir():
        qfile = next((path / n for n in ("queries.jsonl", "test_queries.jsonl") if (path / n).is_file()), None)
        if qfile is None:
            raise KitError(f"{path}: a questions folder needs queries.jsonl and qrels (BEIR layout)")
        path = qfile
    report = ReadReport()
    n = sum(1 for _, o in iter_jsonl(path, report)
            if isinstance(o.get("query", o.get("question", o.get("text"))), str))
    if not n:
        why = f" ({report.errors[0]})" if report else " (an empty file)" if path.stat().st_size == 0 else ""
        raise KitError(f"{path}: holds no question{why}; give JSONL rows {{query, chunk_ids|source_ids|answer}}")
    return n


def eval_questions(eval_dirs) -> set[str]:
    return {norm_text(q) for d in eval_dirs for q in load_eval(d, passage_titles=False).query_texts}


def heldout(eval_dirs) -> set[str]:
    """The passages the frozen eval sets hold out of training (normalised-text hashes)."""
    out: set[str] = set()
    for d in eval_dirs:
        f = Path(d) / "heldout.json"
        if f.is_file():
            out |= set(read_json(f).get("heldout") or [])
    return out


def split_new(u: Path, split_options, o) -> dict:
    """The new documents' pairs -> u/data/new/{train.jsonl, train_corpus.jsonl, eval/}; one line when no eval
    question comes out of it."""
    from ..split import split

    opts = replace(split_options, eval_ratio=o.eval_ratio, eval_queries=o.questions, train_queries=None,
                   holdout="auto", seed=o.seed)
    res = split(u / "pairs.jsonl", u / "corpus.jsonl", u / "data" / "new", opts)
    if not res.stats["eval_queries"]:
        docs = len(set(res.stats["train_docs"]))
        raise KitError(f"the new documents ({docs}) gave no eval question at update.eval_ratio {o.eval_ratio}: too few "
                       f"to hold whole documents out; give real questions about them (kit update --questions FILE) "
                       f"or raise update.eval_ratio")
    return res.stats


def _pool(rows: list[dict], by_id: dict, stale: set[str], held: set[str], asked: set[str]) -> tuple[list, dict]:
    """The replay pool: rows of documents still there unchanged, no held-out passage, no eval question."""
    kept, dropped = [], {"stale_document": 0, "heldout_passage": 0, "eval_question": 0}
    for r in rows:
        ids = r.get("pos_ids") if isinstance(r.get("pos_ids"), list) else []
        docs = {str(r["doc"])} if r.get("doc") else {str(by_id[i].get("doc")) for i in ids if i in by_id}
        if docs & stale:
            dropped["stale_document"] += 1
        elif any(norm_key(t) in held for t in r["pos"]) or any(i in by_id and norm_key(by_id[i]["text"]) in held
                                                              for i in ids):
            dropped["heldout_passage"] += 1
        elif norm_text(r["query"]) in asked:
            dropped["eval_question"] += 1
        else:
            kept.append({k: v for k, v in r.items() if k not in OLD_NEGATIVES})
    return kept, dropped


def build(u: Path, base, frozen: list[Path], split_options, o, echo) -> dict:
    """Write u/data/{train.jsonl, train_corpus.jsonl, pool.jsonl, heldout.json, update_split.json}."""
    stats = split_new(u, split_options, o)
    data, new_eval = u / "data", u / "data" / "new" / "eval"
    chunks = read_corpus(u / "corpus.jsonl", ReadReport())
    seen = {norm_key(c["text"]) for c in read_corpus(data / "new" / "train_corpus.jsonl", ReadReport())}
    held_new = {norm_key(c["text"]) for c in chunks} - seen
    held = heldout(frozen) | held_new
    asked = eval_questions([*frozen, new_eval])
    base_chunks = read_corpus(base.material("corpus.jsonl"), ReadReport()) if base.material("corpus.jsonl") else []
    old_rows = [r for _, r in read_training_rows(base.material("pool.jsonl"), ReadReport())] \
        if base.material("pool.jsonl") else []
    stale = set(read_json(u / "documents.json").get("stale_documents") or [])
    pool, dropped = _pool(old_rows, {c["id"]: c for c in base_chunks}, stale, held, asked)
    new_rows = [r for _, r in read_training_rows(data / "new" / "train.jsonl", ReadReport())]
    s = o.replay_share
    n_replay = min(len(pool), round(len(new_rows) * s / (1 - s)))
    replay = random.Random(o.seed).sample(pool, n_replay)
    train_corpus = [c for c in chunks if norm_key(c["text"]) not in held]
    if not new_rows:
        raise KitError("no training row about the new documents is left once their eval questions are held out")
    write_corpus(data / "train_corpus.jsonl", train_corpus)
    write_training_rows(data / "pool.jsonl", pool + new_rows)
    write_json(data / "heldout.json", {"heldout": sorted(held_new), "frozen_heldout": len(held) - len(held_new)})
    summary = {"new_rows": len(new_rows), "replayed_rows": len(replay), "replay_share": s,
               "pool_rows": len(pool), "pool_dropped": dropped, "train_corpus_chunks": len(train_corpus),
               "corpus_chunks": len(chunks), "new_eval_questions": stats["eval_queries"],
               "new_eval_kind": stats["eval_questions"]}
    write_json(data / "update_split.json", summary)
    write_training_rows(data / "train.jsonl", new_rows + replay)   # last: its presence marks the step done
    echo(f"[split] {len(new_rows)} new rows + {len(replay)} replayed (of {len(pool)}; share {s:g}); "
         f"{stats['eval_queries']} new eval questions ({stats['eval_questions']})")
    return summary


def leakage(rows_path, u: Path, frozen: list[Path]) -> dict:
    """Eval questions among the training queries, held-out passages among the positives or negatives: all 0."""
    held = heldout(frozen) | set(read_json(u / "data" / "heldout.json").get("heldout") or [])
    asked = eval_questions([*frozen, u / "data" / "new" / "eval"])
    out = {"rows": 0, "eval_questions": 0, "heldout_negatives": 0, "heldout_positives": 0}
    for _, r in read_training_rows(rows_path, ReadReport()):
        out["rows"] += 1
        out["eval_questions"] += norm_text(r["query"]) in asked
        out["heldout_negatives"] += sum(norm_key(t) in held for t in r.get("neg") or [])
        out["heldout_positives"] += sum(norm_key(t) in held for t in r["pos"])
    return out
