"""Which questions are evaluated, which pairs train, and which chunks training may see.

Two ways to hold out (``holdout``):

- ``documents``: every document an eval question touches leaves training entirely -- its pairs, its chunks as
  negatives. Measures transfer to documents the model never saw.
- ``gold``: only the gold passages of the eval questions leave training -- every pair made from them, and the
  passages themselves as negatives. The user's usual case: one corpus, real questions about it.

In both, a training pair whose positive *text* equals an eval gold passage (the same paragraph in two documents)
is dropped: the check compares texts, not labels.
"""
from __future__ import annotations

import random
from collections import Counter

from ..formats import norm_text
from ..io import KitError, ReadReport, text_hash
from .questions import ChunkIndex


def choose_eval_docs(pairs_per_doc: dict[str, int], ratio: float, seed: int) -> set[str]:
    """Documents for the eval side: shuffled with ``seed``, each added while it brings the eval share
    of pairs closer to ``ratio``. With two or more documents each side gets at least one."""
    docs = sorted(pairs_per_doc)
    if len(docs) < 2 or ratio <= 0:
        return set()
    random.Random(seed).shuffle(docs)
    total = sum(pairs_per_doc.values())
    target = ratio * total
    chosen: set[str] = set()
    current = 0
    for d in docs:
        c = pairs_per_doc[d]
        if abs(current + c - target) < abs(current - target):
            chosen.add(d)
            current += c
    if not chosen:  # every document alone overshoots: take the one closest to the target
        chosen.add(min(docs, key=lambda d: (abs(pairs_per_doc[d] - target), docs.index(d))))
    if len(chosen) == len(docs):  # keep at least one training document
        chosen.remove(max(chosen, key=lambda d: (pairs_per_doc[d], d)))
    return chosen


def attach_chunks(pairs, pairs_path, index: ChunkIndex, report: ReadReport) -> tuple[list[dict], int]:
    """Pairs with their chunk ids and their document *from the corpus*; (pairs, mislabelled count)."""
    out, mislabelled = [], 0
    for n, p in pairs:
        ids = [p["chunk_id"]] if isinstance(p.get("chunk_id"), str) and p["chunk_id"] in index.by_id else []
        if not ids:
            for t in p["pos"]:
                ids += [i for i in index.ids_for_text(t) if i not in ids]
        if not ids:
            report.add(pairs_path, n, "cannot tell which document this pair comes from (its chunk_id and "
                                      "positive text are not in the corpus)")
            continue
        docs = {index.doc(i) for i in ids}
        label = p.get("doc")
        if isinstance(label, str) and label and label not in docs:
            mislabelled += 1
            report.add(pairs_path, n, f"pair says doc {label!r} but its chunk belongs to "
                                      f"{', '.join(sorted(docs))!r}; the corpus wins")
        out.append({"query": p["query"].strip(), "pos": list(p["pos"]), "neg": [], "pos_ids": ids,
                    "doc": sorted(docs)[0], "docs": docs, "generator": p.get("generator", "")})
    return out, mislabelled


def question_pairs(questions: list[dict], index: ChunkIndex) -> list[dict]:
    """Labelled real questions as training pairs (one per question; the gold passages are its positives)."""
    return [{"query": q["query"], "pos": [index.by_id[i]["text"] for i in q["pos_ids"]], "neg": [],
             "pos_ids": q["pos_ids"], "doc": index.doc(q["pos_ids"][0]),
             "docs": {index.doc(i) for i in q["pos_ids"]}, "generator": "real"} for q in questions]


def group_eval(eval_rows: list[dict]) -> tuple[list[dict], list[dict], dict]:
    """One eval query per distinct question text, its relevant chunks merged: (queries, qrels, grouped)."""
    grouped: dict[str, dict] = {}
    for r in eval_rows:
        g = grouped.setdefault(norm_text(r["query"]), {"query": r["query"], "pos_ids": [],
                                                       "generator": r.get("generator", "real")})
        g["pos_ids"] += [i for i in r["pos_ids"] if i not in g["pos_ids"]]
    queries, qrels = [], []
    for key, g in grouped.items():
        qid = "q" + text_hash(key, 12)
        queries.append({"id": qid, "text": g["query"]})
        qrels += [{"qid": qid, "docid": cid, "relevance": 1} for cid in g["pos_ids"]]
    return queries, qrels, grouped


def remove_leaks(train_rows: list[dict], qrels: list[dict], index: ChunkIndex) -> tuple[list[dict], dict]:
    """Drop generated train pairs whose positive is an eval gold passage, by id or by *text*; labelled real
    questions keep theirs (different questions about one passage are the point of learning from them) and are
    counted. Returns (kept, leakage stats); asserts zero leakage among generated pairs."""
    gold_ids = {q["docid"] for q in qrels}
    gold_texts = {index.norm[i] for i in gold_ids}

    def leaks(p: dict) -> tuple[bool, bool]:
        by_id = any(i in gold_ids for i in p["pos_ids"])
        by_text = any(norm_text(t) in gold_texts for t in p["pos"]) or any(index.norm[i] in gold_texts
                                                                           for i in p["pos_ids"])
        return by_id, by_text

    generated = [p for p in train_rows if p["generator"] != "real"]
    kept = [p for p in train_rows if p["generator"] == "real" or not any(leaks(p))]
    kept_generated = [p for p in kept if p["generator"] != "real"]
    pos_ids = {i for p in kept_generated for i in p["pos_ids"]}
    pos_texts = {norm_text(t) for p in kept_generated for t in p["pos"]} | {index.norm[i] for i in pos_ids}
    stats = {"train_pairs_with_eval_positive_id": sum(leaks(p)[0] for p in generated),
             "train_pairs_with_eval_positive_text": sum(leaks(p)[1] for p in generated),
             "train_pairs_dropped": len(train_rows) - len(kept),
             "eval_positive_ids_in_train": len(gold_ids & pos_ids),
             "eval_positive_texts_in_train": len(gold_texts & pos_texts),
             "real_train_questions_sharing_an_eval_passage": sum(any(leaks(p)) for p in kept
                                                                 if p["generator"] == "real")}
    assert stats["eval_positive_ids_in_train"] == 0 and stats["eval_positive_texts_in_train"] == 0, \
        "split left eval positives among train positives"
    return kept, stats


def train_corpus(chunks: list[dict], index: ChunkIndex, mode: str, eval_docs: set[str],
                 qrels: list[dict]) -> list[dict]:
    """The chunks training may see (mining draws negatives from these only)."""
    if mode == "documents":
        return [c for c in chunks if index.doc(c["id"]) not in eval_docs]
    gold_texts = {index.norm[q["docid"]] for q in qrels}
    return [c for c in chunks if index.norm[c["id"]] not in gold_texts]


def drop_eval_questions(rows: list[dict], eval_rows: list[dict]) -> tuple[list[dict], list[str]]:
    """Training rows without the eval questions themselves (compared as normalised text); (kept, the eval
    questions that were also training questions)."""
    asked = {norm_text(r["query"]): r["query"] for r in eval_rows}
    kept = [r for r in rows if norm_text(r["query"]) not in asked]
    dup = list(dict.fromkeys(asked[norm_text(r["query"])] for r in rows if norm_text(r["query"]) in asked))
    return kept, dup


def choose_sides(pairs: list[dict], real_eval: list[dict] | None, mode: str, ratio: float, seed: int):
    """(eval rows, train rows, eval documents, warnings) for generated pairs and, when given, real eval
    questions; ``mode`` is documents or gold."""
    warnings: list[str] = []
    if real_eval is not None:
        eval_docs = {d for r in real_eval for d in r["docs"]}
        train_rows = [p for p in pairs if not (p["docs"] & eval_docs)] if mode == "documents" else list(pairs)
        if not train_rows:
            raise KitError(f"every training pair comes from a document the eval questions point to "
                           f"({', '.join(sorted(eval_docs)[:5])}); nothing left to train on (holdout: gold keeps "
                           f"the rest of those documents)")
        return real_eval, train_rows, eval_docs, warnings
    per_doc = Counter(p["doc"] for p in pairs if p["generator"] != "real")
    eval_docs = choose_eval_docs(per_doc, ratio, seed)
    if len(per_doc) < 2 and ratio > 0:
        warnings.append("only one document has pairs: it cannot be split by document, so the eval set is empty "
                        "(add documents or pass eval_queries)")
    eval_rows = [{"query": p["query"], "pos_ids": p["pos_ids"], "generator": p["generator"]}
                 for p in pairs if p["docs"] & eval_docs and p["generator"] != "real"]
    train_rows = [p for p in pairs if not (p["docs"] & eval_docs)]
    return eval_rows, train_rows, eval_docs, warnings
