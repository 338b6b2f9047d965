"""`kit split`: (query, chunk) pairs -> a leak-free train file and a FlagEmbedding custom-eval folder.

The split is made by *document*, never by chunk: neighbouring chunks of one document share wording
(and, with sentence overlap, whole sentences), so a chunk-level split lets the model memorise its
way to a good eval score. Documents are shuffled with ``seed`` and added to the eval side greedily
while that brings the eval share of pairs closer to ``eval_ratio``.

With ``eval_queries`` the eval set is real user questions instead; every document such a question
points to is held out from training.

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
import re
import unicodedata
from collections import Counter, defaultdict
from dataclasses import asdict, dataclass, field
from pathlib import Path

from .io import KitError, ReadReport, iter_jsonl, text_hash, write_json, write_jsonl

log = logging.getLogger("kit.split")

_SPACE = re.compile(r"\s+")


def norm_text(text: str) -> str:
    """Text as compared for leakage and matching: NFKC, lower case, no whitespace at all (Chinese text
    extracted from PDFs carries arbitrary spaces and line breaks)."""
    return _SPACE.sub("", unicodedata.normalize("NFKC", text)).lower()


@dataclass
class SplitOptions:
    eval_ratio: float = 0.1
    eval_queries: str | None = None       # JSONL of real user questions to use as the eval set
    seed: int = 42
    # An ``answer`` that no chunk contains verbatim is matched to the chunk holding the largest share of
    # its character bigrams, if that share reaches this value.
    answer_overlap: float = 0.6


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


# --- reading -----------------------------------------------------------------------------------
def _valid_chunk(o: dict) -> str | None:
    if not isinstance(o.get("id"), str) or not o["id"]:
        return "chunk has no string 'id'"
    if not isinstance(o.get("text"), str) or not o["text"].strip():
        return "chunk has no 'text'"
    return None


def _valid_pair(o: dict) -> str | None:
    if not isinstance(o.get("query"), str) or not o["query"].strip():
        return "pair has no 'query'"
    pos = o.get("pos")
    if not isinstance(pos, list) or not pos or not all(isinstance(p, str) and p.strip() for p in pos):
        return "pair has no positive ('pos' must be a non-empty list of texts)"
    return None


def read_corpus(path, report: ReadReport) -> list[dict]:
    chunks, seen = [], set()
    for n, c in iter_jsonl(path, report, _valid_chunk):
        if c["id"] in seen:
            report.add(path, n, f"duplicate chunk id {c['id']!r} (first one kept)")
            continue
        seen.add(c["id"])
        chunks.append(c)
    if not chunks:
        raise KitError(f"{path}: no usable chunk")
    return chunks


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


def split(pairs_path, corpus_path, out_dir, options: SplitOptions | None = None) -> SplitResult:
    opts = options or SplitOptions()
    if not 0 <= opts.eval_ratio < 1:
        raise KitError(f"eval_ratio must be in [0, 1), got {opts.eval_ratio}")
    out_dir = Path(out_dir)
    report = ReadReport()
    chunks = read_corpus(corpus_path, report)
    index = _ChunkIndex(chunks)

    # Pairs: attach chunk ids and the document (from the chunk when the pair lacks them).
    pairs: list[dict] = []
    for n, p in iter_jsonl(pairs_path, report, _valid_pair):
        ids = [p["chunk_id"]] if isinstance(p.get("chunk_id"), str) and p["chunk_id"] in index.by_id else []
        if not ids:
            for t in p["pos"]:
                ids += [i for i in index.ids_for_text(t) if i not in ids]
        doc = p.get("doc") if isinstance(p.get("doc"), str) and p.get("doc") else (index.doc(ids[0]) if ids else "")
        if not doc:
            report.add(pairs_path, n, "cannot tell which document this pair comes from (no 'doc', and its "
                                      "chunk_id/positive text is not in the corpus)")
            continue
        pairs.append({"query": p["query"].strip(), "pos": list(p["pos"]), "neg": [], "pos_ids": ids,
                      "doc": doc, "generator": p.get("generator", "")})
    if not pairs:
        raise KitError(f"{pairs_path}: no usable pair" + (f"\n{report.summary()}" if report else ""))

    pairs_per_doc = Counter(p["doc"] for p in pairs)
    unmatched = 0
    warnings: list[str] = []
    eval_rows: list[dict]
    if opts.eval_queries:
        imported, unmatched = _read_eval_queries(opts.eval_queries, index, opts, report)
        if not imported:
            raise KitError(f"{opts.eval_queries}: no eval question could be matched to the corpus"
                           + (f"\n{report.summary()}" if report else ""))
        eval_docs = {index.doc(i) for r in imported for i in r["pos_ids"]}
        eval_rows = imported
        train_rows = [p for p in pairs if p["doc"] not in eval_docs]
        if not train_rows:
            raise KitError(f"every training pair comes from a document the eval questions point to "
                           f"({', '.join(sorted(eval_docs)[:5])}); nothing left to train on")
    else:
        eval_docs = choose_eval_docs(pairs_per_doc, opts.eval_ratio, opts.seed)
        if len(pairs_per_doc) < 2 and opts.eval_ratio > 0:
            warnings.append(f"{pairs_path}: only one document has pairs: it cannot be split by document, so "
                            "the eval set is empty (add documents or pass eval_queries)")
        eval_rows = [{"query": p["query"], "pos_ids": p["pos_ids"]} for p in pairs if p["doc"] in eval_docs]
        train_rows = [p for p in pairs if p["doc"] not in eval_docs]

    # Eval queries: one per distinct query text, its relevant chunks merged.
    grouped: dict[str, dict] = {}
    for r in eval_rows:
        g = grouped.setdefault(norm_text(r["query"]), {"query": r["query"], "pos_ids": []})
        g["pos_ids"] += [i for i in r["pos_ids"] if i not in g["pos_ids"]]
    queries, qrels = [], []
    for key, g in grouped.items():
        qid = "q" + text_hash(key, 12)
        queries.append({"id": qid, "text": g["query"]})
        qrels += [{"qid": qid, "docid": cid, "relevance": 1} for cid in g["pos_ids"]]

    # Leakage: eval positives (ids, normalised texts) among train positives. Pairs whose positive text
    # is an eval positive are dropped from train (identical paragraphs in two documents).
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
    dropped = len(train_rows) - len(kept)
    train_rows = kept
    train_pos_ids = {i for p in train_rows for i in p["pos_ids"]}
    train_pos_texts = {norm_text(t) for p in train_rows for t in p["pos"]} | {index.norm[i] for i in train_pos_ids}
    leak_ids = len(eval_pos_ids & train_pos_ids)
    leak_texts = len(eval_pos_texts & train_pos_texts)
    assert leak_ids == 0 and leak_texts == 0, "split left eval positives among train positives"
    if not train_rows:
        raise KitError("no training pair left after removing those that share an eval positive")

    train_queries = {norm_text(p["query"]) for p in train_rows}
    dup = [g["query"] for k, g in grouped.items() if k in train_queries]

    train_path = out_dir / "train.jsonl"
    eval_dir = out_dir / "eval"
    # Eval first, train last: train.jsonl's presence marks a finished split.
    write_jsonl(eval_dir / "corpus.jsonl",
                ({"id": c["id"], "title": c.get("title") or "", "text": c["text"]} for c in chunks))
    write_jsonl(eval_dir / "test_queries.jsonl", queries)
    write_jsonl(eval_dir / "test_qrels.jsonl", qrels)
    write_jsonl(train_path, train_rows)

    problems = [str(e) for e in report.errors] + warnings
    stats = {
        "pairs_read": len(pairs), "train_pairs": len(train_rows), "eval_queries": len(queries),
        "eval_qrels": len(qrels), "corpus_chunks": len(chunks),
        "eval_source": "eval_queries" if opts.eval_queries else "split",
        "eval_share_of_pairs": (round(sum(pairs_per_doc[d] for d in eval_docs) / len(pairs), 4)
                                if not opts.eval_queries else None),
        "train_docs": sorted({p["doc"] for p in train_rows}), "eval_docs": sorted(eval_docs),
        "leakage": {"train_pairs_with_eval_positive_id": ids_before,
                    "train_pairs_with_eval_positive_text": texts_before,
                    "train_pairs_dropped": dropped,
                    "eval_positive_ids_in_train": leak_ids, "eval_positive_texts_in_train": leak_texts},
        "duplicate_queries": {"count": len(dup), "examples": dup[:20]},
        "unmatched_eval_queries": unmatched,
        "generators": dict(Counter(p["generator"] for p in train_rows)),
        "problems": problems,
        "options": asdict(opts),
    }
    stats_path = out_dir / "split_stats.json"
    write_json(stats_path, stats)
    return SplitResult(train_path, eval_dir, stats_path, stats, problems)
