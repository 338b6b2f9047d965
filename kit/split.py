"""`kit split`: (query, chunk) pairs -> a leak-free train file and a FlagEmbedding custom-eval folder.

The split is made by *document*, never by chunk: neighbouring chunks of one document share wording
(and, with sentence overlap, whole sentences), so a chunk-level split lets the model memorise its
way to a good eval score. Documents are shuffled with ``seed`` and added to the eval side greedily
while that brings the eval share of pairs closer to ``eval_ratio``.

With ``eval_queries`` the eval set is real user questions instead; every document such a question
points to is held out from training.

A pair's document is the document of the chunk it was made from, as the corpus says: a ``doc`` label in
the pair is never trusted over it (a mislabelled pair would otherwise put one document on both sides).

A leakage check runs every time: eval positives (by chunk id and by normalised text) that also
appear among train positives are counted. Train pairs whose positive text equals an eval positive
(the same boilerplate paragraph in two documents) are dropped, so the split this tool makes has
zero leakage; it is asserted before anything is written.

Outputs in ``out_dir``::

    train.jsonl             {"query", "pos": [text], "neg": [], "pos_ids", "doc", "generator"}
    eval/corpus.jsonl       {"id", "title", "text"}      every chunk of the corpus
    eval/test_queries.jsonl {"id", "text"}
    eval/test_qrels.jsonl   {"qid", "docid", "relevance": 1}
    split_stats.json        counts, the documents on each side, leakage and duplicate-query report
"""
from __future__ import annotations

import logging
import random
from collections import Counter, defaultdict
from dataclasses import asdict, dataclass, field
from pathlib import Path

from .formats import norm_text, read_corpus, read_pairs, write_eval, write_training_rows
from .io import KitError, ReadReport, iter_jsonl, text_hash, write_json
from .options import option

log = logging.getLogger("kit.split")


def _ratio(v) -> str | None:
    return None if 0 <= v < 1 else "must lie in [0, 1)"


@dataclass
class SplitOptions:
    """The ``split:`` section; field names equal its keys."""

    eval_ratio: float = option(0.1, check=_ratio, help="Share of pairs held out for evaluation (whole documents).")
    eval_queries: str | None = option(None, path=True, help="Real user questions as the eval set: JSONL "
                                      "{query|question, chunk_ids: [...]} or {query, answer: text}.")
    seed: int = option(42, help="Seed of the document shuffle.")
    answer_overlap: float = option(0.6, help="An eval `answer` no chunk contains verbatim is matched to the chunk "
                                   "holding the largest share of its character bigrams, if the share reaches this.")


@dataclass
class SplitFiles:
    """The files `kit split` reads and writes (`kit run` takes them from the workdir)."""

    pairs: str = option(argument=True, yaml=False, help="gen-queries' pairs.jsonl.")
    corpus: str = option(yaml=False, required=True, help="prep's corpus.jsonl.")
    output: str = option(yaml=False, required=True, short="o",
                         help="DATA_DIR: train.jsonl, eval/ and split_stats.json are written here.")

@dataclass
class SplitResult:
    train_path: Path
    eval_dir: Path
    stats_path: Path
    stats: dict = field(default_factory=dict)
    problems: list[str] = field(default_factory=list)   # "file:line: message"

    def summary(self) -> str:
        s = self.stats
        lines = [f"train: {s['train_pairs']} pairs from {len(s['train_docs'])} documents -> {self.train_path}",
                 f"eval:  {s['eval_queries']} queries ({s['eval_qrels']} qrels) from {len(s['eval_docs'])} "
                 f"documents, {s['corpus_chunks']} corpus chunks -> {self.eval_dir}",
                 f"leakage: {s['leakage']['eval_positive_ids_in_train']} eval positive ids and "
                 f"{s['leakage']['eval_positive_texts_in_train']} eval positive texts found among train positives"
                 f"; {s['leakage']['train_pairs_dropped']} train pairs dropped for sharing an eval positive text",
                 f"duplicate queries across train/eval: {s['duplicate_queries']['count']}"]
        if s.get("unmatched_eval_queries"):
            lines.append(f"eval questions not matched to any chunk: {s['unmatched_eval_queries']}")
        if self.problems:
            lines.append(f"{len(self.problems)} problem(s):")
            lines += ["  " + p for p in self.problems[:20]]
            if len(self.problems) > 20:
                lines.append(f"  ... and {len(self.problems) - 20} more (see {self.stats_path})")
        return "\n".join(lines)


def _char_bigrams(s: str) -> set[str]:
    return {s[i:i + 2] for i in range(len(s) - 1)} if len(s) > 1 else {s}


class _ChunkIndex:
    """Look-ups from chunk ids and texts to chunks (for pairs without ids and for answer matching)."""

    def __init__(self, chunks: list[dict]):
        self.by_id = {c["id"]: c for c in chunks}
        self.norm = {c["id"]: norm_text(c["text"]) for c in chunks}
        self.by_text: dict[str, list[str]] = defaultdict(list)
        for cid, t in self.norm.items():
            self.by_text[t].append(cid)
        self._bigrams: dict[str, set[str]] | None = None

    def doc(self, cid: str) -> str:
        return str(self.by_id[cid].get("doc") or "")

    def ids_for_text(self, text: str) -> list[str]:
        return list(self.by_text.get(norm_text(text), []))

    def match_answer(self, answer: str, threshold: float) -> tuple[list[str], str]:
        """Chunks an answer text points to. First every chunk that contains the normalised answer
        verbatim; failing that, the chunk holding the largest share of the answer's character bigrams
        (ties kept) if the share reaches ``threshold`` (answers copied from a PDF by a person differ
        from our extraction in punctuation and line breaks). Returns (ids, how)."""
        a = norm_text(answer)
        if not a:
            return [], "empty answer"
        hits = [cid for cid, t in self.norm.items() if a in t]
        if hits:
            return hits, "contained"
        if self._bigrams is None:
            self._bigrams = {cid: _char_bigrams(t) for cid, t in self.norm.items()}
        ag = _char_bigrams(a)
        best, best_ids = 0.0, []
        for cid, g in self._bigrams.items():
            share = len(ag & g) / len(ag)
            if share > best + 1e-12:
                best, best_ids = share, [cid]
            elif abs(share - best) <= 1e-12 and share > 0:
                best_ids.append(cid)
        if best >= threshold:
            return best_ids, f"bigram overlap {best:.2f}"
        return [], f"best bigram overlap {best:.2f} < {threshold}"


# --- the split -----------------------------------------------------------------------------------
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


def _read_eval_queries(path, index: _ChunkIndex, opts: SplitOptions, report: ReadReport) -> tuple[list[dict], int]:
    """Real user questions -> [{"query", "pos_ids"}]; unmatched ones go to ``report`` with file:line."""
    rows, unmatched = [], 0
    for n, o in iter_jsonl(path, report):
        q = o.get("query", o.get("question"))
        if not isinstance(q, str) or not q.strip():
            report.add(path, n, "no 'query' or 'question' text")
            continue
        if isinstance(o.get("chunk_ids"), list) and o["chunk_ids"]:
            ids = [str(i) for i in o["chunk_ids"]]
            unknown = [i for i in ids if i not in index.by_id]
            if unknown:
                report.add(path, n, f"chunk id(s) not in the corpus: {', '.join(unknown[:5])}")
            ids = [i for i in ids if i in index.by_id]
            if not ids:
                unmatched += 1
                continue
        elif isinstance(o.get("answer"), str):
            ids, how = index.match_answer(o["answer"], opts.answer_overlap)
            if not ids:
                report.add(path, n, f"answer not found in any chunk ({how})")
                unmatched += 1
                continue
        else:
            report.add(path, n, "needs 'chunk_ids' (list) or 'answer' (text)")
            unmatched += 1
            continue
        rows.append({"query": q.strip(), "pos_ids": ids})
    return rows, unmatched


def attach_chunks(pairs_path, index: _ChunkIndex, report: ReadReport) -> tuple[list[dict], int]:
    """Pairs with their chunk ids and their document *from the corpus*; (pairs, mislabelled count)."""
    pairs, mislabelled = [], 0
    for n, p in read_pairs(pairs_path, report):
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
        pairs.append({"query": p["query"].strip(), "pos": list(p["pos"]), "neg": [], "pos_ids": ids,
                      "doc": sorted(docs)[0], "docs": docs, "generator": p.get("generator", "")})
    if not pairs:
        raise KitError(f"{pairs_path}: no usable pair" + (f"\n{report.summary()}" if report else ""))
    return pairs, mislabelled


def group_eval(eval_rows: list[dict]) -> tuple[list[dict], list[dict], dict]:
    """One eval query per distinct question text, its relevant chunks merged: (queries, qrels, grouped)."""
    grouped: dict[str, dict] = {}
    for r in eval_rows:
        g = grouped.setdefault(norm_text(r["query"]), {"query": r["query"], "pos_ids": []})
        g["pos_ids"] += [i for i in r["pos_ids"] if i not in g["pos_ids"]]
    queries, qrels = [], []
    for key, g in grouped.items():
        qid = "q" + text_hash(key, 12)
        queries.append({"id": qid, "text": g["query"]})
        qrels += [{"qid": qid, "docid": cid, "relevance": 1} for cid in g["pos_ids"]]
    return queries, qrels, grouped


def remove_leaks(train_rows: list[dict], qrels: list[dict], index: _ChunkIndex) -> tuple[list[dict], dict]:
    """Drop train pairs whose positive *text* is an eval positive (identical paragraphs in two documents);
    the check compares texts, not labels. Returns (kept, leakage stats); asserts zero leakage left."""
    eval_pos_ids = {q["docid"] for q in qrels}
    eval_pos_texts = {index.norm[i] for i in eval_pos_ids}

    def leaks(p: dict) -> tuple[bool, bool]:
        by_id = any(i in eval_pos_ids for i in p["pos_ids"])
        by_text = any(norm_text(t) in eval_pos_texts for t in p["pos"]) or \
            any(index.norm[i] in eval_pos_texts for i in p["pos_ids"])
        return by_id, by_text

    ids_before = sum(leaks(p)[0] for p in train_rows)
    texts_before = sum(leaks(p)[1] for p in train_rows)
    kept = [p for p in train_rows if not any(leaks(p))]
    train_pos_ids = {i for p in kept for i in p["pos_ids"]}
    train_pos_texts = {norm_text(t) for p in kept for t in p["pos"]} | {index.norm[i] for i in train_pos_ids}
    stats = {"train_pairs_with_eval_positive_id": ids_before, "train_pairs_with_eval_positive_text": texts_before,
             "train_pairs_dropped": len(train_rows) - len(kept),
             "eval_positive_ids_in_train": len(eval_pos_ids & train_pos_ids),
             "eval_positive_texts_in_train": len(eval_pos_texts & train_pos_texts)}
    assert stats["eval_positive_ids_in_train"] == 0 and stats["eval_positive_texts_in_train"] == 0, \
        "split left eval positives among train positives"
    return kept, stats


def choose_sides(pairs: list[dict], index: _ChunkIndex, opts: SplitOptions, report: ReadReport):
    """(eval rows, train rows, eval documents, unmatched eval questions, warnings)."""
    warnings: list[str] = []
    if opts.eval_queries:
        imported, unmatched = _read_eval_queries(opts.eval_queries, index, opts, report)
        if not imported:
            raise KitError(f"{opts.eval_queries}: no eval question could be matched to the corpus"
                           + (f"\n{report.summary()}" if report else ""))
        eval_docs = {index.doc(i) for r in imported for i in r["pos_ids"]}
        train_rows = [p for p in pairs if not (p["docs"] & eval_docs)]
        if not train_rows:
            raise KitError(f"every training pair comes from a document the eval questions point to "
                           f"({', '.join(sorted(eval_docs)[:5])}); nothing left to train on")
        return imported, train_rows, eval_docs, unmatched, warnings
    per_doc = Counter(p["doc"] for p in pairs)
    eval_docs = choose_eval_docs(per_doc, opts.eval_ratio, opts.seed)
    if len(per_doc) < 2 and opts.eval_ratio > 0:
        warnings.append("only one document has pairs: it cannot be split by document, so the eval set is empty "
                        "(add documents or pass eval_queries)")
    eval_rows = [{"query": p["query"], "pos_ids": p["pos_ids"]} for p in pairs if p["docs"] & eval_docs]
    train_rows = [p for p in pairs if not (p["docs"] & eval_docs)]
    return eval_rows, train_rows, eval_docs, 0, warnings


def split(pairs_path, corpus_path, out_dir, options: SplitOptions | None = None) -> SplitResult:
    opts = options or SplitOptions()
    if not 0 <= opts.eval_ratio < 1:
        raise KitError(f"eval_ratio must be in [0, 1), got {opts.eval_ratio}")
    out_dir = Path(out_dir)
    report = ReadReport()
    chunks = read_corpus(corpus_path, report)
    index = _ChunkIndex(chunks)
    pairs, mislabelled = attach_chunks(pairs_path, index, report)
    eval_rows, train_rows, eval_docs, unmatched, warnings = choose_sides(pairs, index, opts, report)
    queries, qrels, grouped = group_eval(eval_rows)
    train_rows, leakage = remove_leaks(train_rows, qrels, index)
    if not train_rows:
        raise KitError("no training pair left after removing those that share an eval positive")
    train_queries = {norm_text(p["query"]) for p in train_rows}
    dup = [g["query"] for k, g in grouped.items() if k in train_queries]
    train_path, eval_dir = out_dir / "train.jsonl", out_dir / "eval"
    # Eval first, train last: train.jsonl's presence marks a finished split.
    write_eval(eval_dir, chunks, queries, qrels)
    write_training_rows(train_path, ({k: v for k, v in p.items() if k != "docs"} for p in train_rows))
    problems = [str(e) for e in report.errors] + warnings
    stats = {
        "pairs_read": len(pairs), "train_pairs": len(train_rows), "eval_queries": len(queries),
        "eval_qrels": len(qrels), "corpus_chunks": len(chunks),
        "eval_source": "eval_queries" if opts.eval_queries else "split",
        "eval_share_of_pairs": (round(sum(1 for p in pairs if p["docs"] & eval_docs) / len(pairs), 4)
                                if not opts.eval_queries else None),
        "train_docs": sorted({d for p in train_rows for d in p["docs"]}), "eval_docs": sorted(eval_docs),
        "pairs_with_wrong_doc_label": mislabelled,
        "leakage": leakage,
        "duplicate_queries": {"count": len(dup), "examples": dup[:20]},
        "unmatched_eval_queries": unmatched,
        "generators": dict(Counter(p["generator"] for p in train_rows)),
        "problems": problems,
        "options": asdict(opts),
    }
    stats_path = out_dir / "split_stats.json"
    write_json(stats_path, stats)
    return SplitResult(train_path, eval_dir, stats_path, stats, problems)
