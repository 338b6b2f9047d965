"""Real user questions -> the chunks that answer them: by chunk id, by the id of a row of a JSONL corpus given
to prep (``source_id``), by answer text, or from a BEIR folder (queries.jsonl + qrels)."""
from __future__ import annotations

from collections import defaultdict
from pathlib import Path

from ..formats import norm_text, read_qrels
from ..io import ReadReport, iter_jsonl


def _char_bigrams(s: str) -> set[str]:
    return {s[i:i + 2] for i in range(len(s) - 1)} if len(s) > 1 else {s}


class ChunkIndex:
    """Look-ups from chunk ids, source ids and texts to chunks."""

    def __init__(self, chunks: list[dict]):
        self.by_id = {c["id"]: c for c in chunks}
        self.norm = {c["id"]: norm_text(c["text"]) for c in chunks}
        self.by_text: dict[str, list[str]] = defaultdict(list)
        self.by_source: dict[str, list[str]] = defaultdict(list)
        for cid, t in self.norm.items():
            self.by_text[t].append(cid)
        for c in chunks:
            if c.get("source_id") is not None:
                self.by_source[str(c["source_id"])].append(c["id"])
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


def _ids_of(o: dict, index: ChunkIndex, answer_overlap: float) -> tuple[list[str], str | None]:
    """(chunk ids, problem) of one question row."""
    for key, table in (("chunk_ids", None), ("source_ids", index.by_source)):
        if isinstance(o.get(key), list) and o[key]:
            given = [str(i) for i in o[key]]
            if table is None:
                ids, unknown = [i for i in given if i in index.by_id], [i for i in given if i not in index.by_id]
            else:
                ids = [c for i in given for c in table.get(i, [])]
                unknown = [i for i in given if i not in table]
            label = "chunk id(s)" if key == "chunk_ids" else "source id(s)"
            problem = f"{label} not in the corpus: {', '.join(unknown[:5])}" if unknown else None
            return ids, problem
    if isinstance(o.get("answer"), str):
        ids, how = index.match_answer(o["answer"], answer_overlap)
        return ids, None if ids else f"answer not found in any chunk ({how})"
    return [], "needs 'chunk_ids' or 'source_ids' (list) or 'answer' (text)"


def _beir_rows(folder: Path, report: ReadReport) -> list[tuple[int, dict]]:
    """A BEIR folder's questions as rows with ``source_ids`` (its qrels are keyed by the corpus rows' ids)."""
    qfile = folder / "queries.jsonl" if (folder / "queries.jsonl").exists() else folder / "test_queries.jsonl"
    texts = {str(o.get("_id", o.get("id"))): o.get("text") for _, o in iter_jsonl(qfile, report)}
    qrels = read_qrels(folder, report)
    return [(n, {"query": texts[q], "source_ids": [d for d, r in rel.items() if r > 0]})
            for n, (q, rel) in enumerate(sorted(qrels.items()), 1) if q in texts and texts[q]]


def read_questions(path, index: ChunkIndex, answer_overlap: float, report: ReadReport) -> tuple[list[dict], int]:
    """Real user questions -> [{"query", "pos_ids"}]; unmatched ones go to ``report`` with file:line."""
    path = Path(path)
    rows_in = _beir_rows(path, report) if path.is_dir() else iter_jsonl(path, report)
    return match_questions(rows_in, path, index, answer_overlap, report)


def match_questions(rows_in, path, index: ChunkIndex, answer_overlap: float,
                    report: ReadReport) -> tuple[list[dict], int]:
    """Question rows ``(line, {query|question, chunk_ids|source_ids|answer})`` -> [{"query", "pos_ids"}], problems
    named ``path:line`` (split from read_questions so that a list handed over in memory -- the question log's
    labelled questions, kit/questionlog/ -- is matched the same way)."""
    rows, unmatched = [], 0
    for n, o in rows_in:
        q = o.get("query", o.get("question"))
        if not isinstance(q, str) or not q.strip():
            report.add(path, n, "no 'query' or 'question' text")
            continue
        ids, problem = _ids_of(o, index, answer_overlap)
        if problem:
            report.add(path, n, problem)
        if not ids:
            unmatched += 1
            continue
        rows.append({"query": q.strip(), "pos_ids": list(dict.fromkeys(ids))})
    return rows, unmatched
