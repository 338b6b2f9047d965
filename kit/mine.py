"""`kit mine`: hard negatives for FlagEmbedding training rows, from the corpus, with faiss.

Window semantics follow FlagEmbedding's ``scripts/hn_mine.py``: every query is searched against the
corpus (unique chunk texts), the results ranked ``a..b`` of ``range="a-b"`` (1-based, inclusive, as
hn_mine documents "2-200": top-2 .. top-200) are the window, positives and the query's own text are
never negatives but still occupy their rank (the window is not shifted past them), and ``negatives``
are drawn from what survives with ``random.sample`` seeded per row (same seed, same output; a row's
negatives do not depend on the other rows). Unlike hn_mine, a row that is short is never padded with
random corpus text.

Filters, applied in this order to each window candidate (each counts what it drops):

1. ``positive``: a chunk id of a positive (``pos_ids``, or chunks whose text equals a positive when a
   plain FlagEmbedding row has no ids), a text equal to a positive, or the query itself.
2. ``adjacent``: a chunk of the same document within ``adjacent`` positions of a positive chunk in
   corpus order (chunks overlap by sentences, and the next chunk often finishes the answer).
3. ``relative_margin``: score above ``pos - |pos| * m`` ((1 - m) x pos for positive scores, NV-Retriever's
   TopK-PercPos), where pos is the row's *lowest* positive score (the safe side with several positives).
4. ``max_score`` / ``min_score``: the absolute window (e.g. the 0.3-0.7 recipe).
5. ``overlap``: shares most of a positive's text: character 5-gram containment
   |G(c) & G(p)| / min(|G(c)|, |G(p)|) above ``overlap_threshold`` (catches ICT positives, which are a
   chunk minus one sentence, and near-duplicate paragraphs). Last because it is the costly one: it is
   tested lazily, on the survivors of 1-4 visited in seeded random order until the row is full (a uniform
   sample of what passes every filter, like testing all then sampling), so its count in the statistics
   is "dropped among the ``overlap_tests`` candidates tested".

Widening: a row left with fewer than ``negatives`` candidates has its window's upper end doubled
(b -> 2b -> 4b ..., ranks b+1.. are searched and filtered the same way) until it has enough or the
whole corpus was ranked; such rows are counted (``rows_widened``), rows still short after that are
counted (``rows_short``) and keep what they have. A row left with no negative at all is not written
(FlagEmbedding cannot train on it) and is counted.

Speed: every unique text is embedded once through :class:`kit.embed.LocalEncoder` (disk cache keyed by
the weights' fingerprint, length-sorted batches, bf16 on CPUs that have it); the corpus is searched
with an exact ``IndexFlatIP`` up to ``exact_max`` (200,000) unique chunks, where one query batch costs
well under a second per thousand queries; past that an HNSW graph (M=32, efConstruction=200,
efSearch=max(2k, 256)), which needs no training and keeps recall@200 near exact at a fraction of the
cost. Statistics are printed and written next to the output as ``<output stem>.stats.json``.
"""
from __future__ import annotations

import logging
import random
import time
from collections import Counter, defaultdict
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np

from .io import KitError, ReadReport, iter_jsonl, stable_hash, write_json, write_jsonl
from .split import norm_text, read_corpus

log = logging.getLogger("kit.mine")

FILTERS = ["positive", "adjacent", "relative_margin", "max_score", "min_score", "overlap"]


@dataclass
class MineOptions:
    model: str | None = None               # hub id or local folder (kit.registry decides how it embeds)
    range: str = "2-200"                   # 1-based ranks a-b of the search results to sample from
    negatives: int = 15
    seed: int = 42
    relative_margin: float | None = 0.05   # None or 0: off
    min_score: float | None = None
    max_score: float | None = None
    keep_existing: bool = False            # add to existing "neg" lists instead of replacing them
    batch_size: int = 64
    precision: str = "auto"                # auto | fp32 | bf16 | fp16
    max_length: int | None = None
    adjacent: int = 1                      # same-document neighbours (corpus order) of a positive excluded
    overlap_threshold: float = 0.5         # character 5-gram containment above which a text "is" the positive
    exact_max: int = 200_000               # unique chunks up to which the search is exact (IndexFlatIP)
    widen: bool = True
    cache_path: str | None = None          # embedding cache (default $KIT_CACHE_DIR/embeddings.sqlite)
    progress: bool = True
    print_stats: bool = True


@dataclass
class MineResult:
    output_path: Path
    stats_path: Path
    stats: dict = field(default_factory=dict)
    problems: list[str] = field(default_factory=list)

    def summary(self) -> str:
        return format_stats(self.stats)


def parse_range(r: str) -> tuple[int, int]:
    try:
        a, b = (int(x) for x in str(r).split("-"))
    except ValueError:
        raise KitError(f"range {r!r}: expected FIRST-LAST ranks, e.g. 2-200") from None
    if a < 1 or b < a:
        raise KitError(f"range {r!r}: ranks are 1-based and FIRST <= LAST")
    return a, b


def _valid_row(o: dict) -> str | None:
    if not isinstance(o.get("query"), str) or not o["query"].strip():
        return "row has no 'query'"
    pos = o.get("pos")
    if not isinstance(pos, list) or not pos or not all(isinstance(p, str) and p.strip() for p in pos):
        return "row has no positive ('pos' must be a non-empty list of texts)"
    if "neg" in o and not (isinstance(o["neg"], list) and all(isinstance(t, str) for t in o["neg"])):
        return "'neg' must be a list of texts"
    return None


def grams(text: str, n: int = 5) -> frozenset[str]:
    t = norm_text(text)
    if len(t) <= n:
        return frozenset([t])
    return frozenset(t[i:i + n] for i in range(len(t) - n + 1))


def containment(a: frozenset, b: frozenset) -> float:
    if not a or not b:
        return 0.0
    small, large = (a, b) if len(a) <= len(b) else (b, a)
    return len(small & large) / len(small)


def percentiles(values) -> dict:
    v = np.asarray(list(values), dtype=np.float64)
    if v.size == 0:
        return {"count": 0}
    p = np.percentile(v, [5, 25, 50, 75, 95])
    return {"count": int(v.size), "mean": round(float(v.mean()), 4), "min": round(float(v.min()), 4),
            "p5": round(float(p[0]), 4), "p25": round(float(p[1]), 4), "p50": round(float(p[2]), 4),
            "p75": round(float(p[3]), 4), "p95": round(float(p[4]), 4), "max": round(float(v.max()), 4)}


def build_index(vectors: np.ndarray, exact_max: int, k: int):
    """Exact inner product up to ``exact_max`` vectors, HNSW beyond (see the module docstring)."""
    import faiss

    dim = vectors.shape[1]
    if len(vectors) <= exact_max:
        index = faiss.IndexFlatIP(dim)
        kind = "flat-ip (exact)"
    else:
        index = faiss.IndexHNSWFlat(dim, 32, faiss.METRIC_INNER_PRODUCT)
        index.hnsw.efConstruction = 200
        kind = "hnsw (approximate, M=32)"
    index.add(np.ascontiguousarray(vectors, dtype=np.float32))
    return index, kind


def search(index, queries: np.ndarray, k: int, batch: int = 4096) -> tuple[np.ndarray, np.ndarray]:
    import faiss

    if isinstance(index, faiss.IndexHNSWFlat):
        index.hnsw.efSearch = max(2 * k, 256)
    scores, ids = [], []
    for i in range(0, len(queries), batch):
        s, x = index.search(np.ascontiguousarray(queries[i:i + batch], dtype=np.float32), k)
        scores.append(s)
        ids.append(x)
    return np.concatenate(scores), np.concatenate(ids)


class _Corpus:
    """Unique chunk texts (what is indexed) and the id/document structure around them."""

    def __init__(self, chunks: list[dict]):
        self.texts: list[str] = []
        self.u_of_text: dict[str, int] = {}
        self.ids_of_u: list[list[str]] = []
        self.u_of_id: dict[str, int] = {}
        self.ids_of_norm: dict[str, list[str]] = defaultdict(list)
        position: dict[str, tuple[str, int]] = {}
        by_doc: dict[str, list[str]] = defaultdict(list)
        for c in chunks:
            u = self.u_of_text.get(c["text"])
            if u is None:
                u = self.u_of_text[c["text"]] = len(self.texts)
                self.texts.append(c["text"])
                self.ids_of_u.append([])
            self.ids_of_u[u].append(c["id"])
            self.u_of_id[c["id"]] = u
            self.ids_of_norm[norm_text(c["text"])].append(c["id"])
            doc = str(c.get("doc") or "")
            position[c["id"]] = (doc, len(by_doc[doc]))
            by_doc[doc].append(c["id"])
        self.position = position
        self.by_doc = by_doc
        self._grams: dict[int, frozenset] = {}

    def ids_for_text(self, text: str) -> list[str]:
        u = self.u_of_text.get(text)
        if u is not None:
            return list(self.ids_of_u[u])
        return list(self.ids_of_norm.get(norm_text(text), []))

    def neighbours(self, cid: str, width: int) -> list[str]:
        doc, i = self.position[cid]
        ids = self.by_doc[doc]
        return [ids[j] for j in range(max(0, i - width), min(len(ids), i + width + 1)) if j != i]

    def grams(self, u: int) -> frozenset:
        g = self._grams.get(u)
        if g is None:
            g = self._grams[u] = grams(self.texts[u])
        return g


def mine(train_path, corpus_path, output_path, options: MineOptions | None = None) -> MineResult:
    opts = options or MineOptions()
    if not opts.model:
        raise KitError("mine needs a model (hub id or local folder)")
    first, last = parse_range(opts.range)
    if opts.negatives < 1:
        raise KitError(f"negatives must be >= 1, got {opts.negatives}")
    t_start = time.perf_counter()
    timings: dict[str, float] = {}
    output_path = Path(output_path)
    corpus_report, bad_rows, notes = ReadReport(), ReadReport(), ReadReport()

    corpus = _Corpus(read_corpus(corpus_path, corpus_report))
    rows: list[tuple[int, dict]] = list(iter_jsonl(train_path, bad_rows, _valid_row))
    if not rows:
        raise KitError(f"{train_path}: no usable training row" + (f"\n{bad_rows.summary()}" if bad_rows else ""))

    # Positive chunk ids per row: given ids that exist, else chunks whose text equals a positive.
    pos_ids_of: list[list[str]] = []
    for n, r in rows:
        given = r.get("pos_ids") if isinstance(r.get("pos_ids"), list) else None
        ids = [i for i in (given or []) if i in corpus.u_of_id]
        if given and len(ids) < len(given):
            notes.add(train_path, n, "some pos_ids are not in the corpus; positives matched by text too")
        if not ids or (given and len(ids) < len(given)):
            for t in r["pos"]:
                ids += [i for i in corpus.ids_for_text(t) if i not in ids]
        pos_ids_of.append(ids)
    timings["read"] = time.perf_counter() - t_start

    # --- embed every unique text once --------------------------------------------------------------
    from .embed import EmbeddingCache, LocalEncoder

    t0 = time.perf_counter()
    cache = EmbeddingCache(opts.cache_path) if opts.cache_path else None
    encoder = LocalEncoder(opts.model, precision=opts.precision, batch_size=opts.batch_size,
                           max_length=opts.max_length, cache=cache, progress=opts.progress)
    queries = list(dict.fromkeys(r["query"] for _, r in rows))
    q_index = {q: i for i, q in enumerate(queries)}
    extra_pos = list(dict.fromkeys(t for _, r in rows for t in r["pos"] if t not in corpus.u_of_text))
    passages = corpus.texts + extra_pos
    p_vecs = encoder.encode_passages(passages, desc="embedding corpus")
    p_stats = dict(encoder.last_stats)
    q_vecs = encoder.encode_queries(queries, desc="embedding queries")
    q_stats = dict(encoder.last_stats)
    timings["embed"] = time.perf_counter() - t0
    c_vecs = p_vecs[:len(corpus.texts)]
    extra_row = {t: len(corpus.texts) + i for i, t in enumerate(extra_pos)}

    # --- search ------------------------------------------------------------------------------------
    t0 = time.perf_counter()
    n_corpus = len(corpus.texts)
    k = min(last, n_corpus)
    index, index_kind = build_index(c_vecs, opts.exact_max, k)
    row_q = np.array([q_index[r["query"]] for _, r in rows])
    all_scores, all_ids = search(index, q_vecs, k)
    timings["search"] = time.perf_counter() - t0

    # --- filter and sample -------------------------------------------------------------------------
    from tqdm.auto import tqdm

    t0 = time.perf_counter()
    dropped = Counter()
    examined = overlap_examined = 0
    pos_scores_all: list[float] = []
    neg_scores_all: list[float] = []
    pos_rank1 = 0
    rows_widened = rows_short = rows_empty = 0
    out_rows: list[dict] = []
    margin = opts.relative_margin or 0.0

    def vec_of_pos(text: str) -> np.ndarray:
        u = corpus.u_of_text.get(text)
        return c_vecs[u] if u is not None else p_vecs[extra_row[text]]

    for ri, (n, r) in enumerate(tqdm(rows, desc="mining", unit="row", disable=not opts.progress or None)):
        qv = q_vecs[row_q[ri]]
        pos_ids = pos_ids_of[ri]
        pos_us = {corpus.u_of_id[i] for i in pos_ids} | {corpus.u_of_text[t] for t in r["pos"] if t in corpus.u_of_text}
        excluded = set(pos_us)
        if r["query"] in corpus.u_of_text:
            excluded.add(corpus.u_of_text[r["query"]])
        near = {corpus.u_of_id[j] for i in pos_ids for j in corpus.neighbours(i, opts.adjacent)} - excluded \
            if opts.adjacent > 0 else set()
        pscores = [float(qv @ vec_of_pos(t)) for t in r["pos"]]
        pos_scores_all += pscores
        pos_score = min(pscores)
        threshold = pos_score - abs(pos_score) * margin if margin else None
        pos_grams = list({id(g): g for g in [corpus.grams(u) for u in pos_us]
                          + [grams(t) for t in r["pos"] if t not in corpus.u_of_text]}.values())
        if all_ids[row_q[ri], 0] in pos_us:
            pos_rank1 += 1

        seen: set[int] = set()

        def cheap_filters(cands: np.ndarray, cscores: np.ndarray) -> list[tuple[int, float]]:
            nonlocal examined
            kept = []
            for u, s in zip(cands.tolist(), cscores.tolist()):
                if u < 0:
                    break
                if u in seen:  # a widened search may order score ties differently: visit each text once
                    continue
                seen.add(u)
                examined += 1
                if u in excluded:
                    dropped["positive"] += 1
                elif u in near:
                    dropped["adjacent"] += 1
                elif threshold is not None and s > threshold:
                    dropped["relative_margin"] += 1
                elif opts.max_score is not None and s > opts.max_score:
                    dropped["max_score"] += 1
                elif opts.min_score is not None and s < opts.min_score:
                    dropped["min_score"] += 1
                else:
                    kept.append((u, s))
            return kept

        rng = random.Random(stable_hash([opts.seed, r["query"], r["pos"]]))
        chosen: list[tuple[int, float]] = []

        def take(cands: list[tuple[int, float]]) -> None:
            # The text-overlap test is the costly one, so it runs lazily: candidates are visited in a
            # seeded random order and accepted until the row is full. The accepted set is a uniform
            # random sample of the candidates that pass every filter (same as filtering all, then
            # random.sample), at ~negatives tests per row instead of ~window size.
            nonlocal overlap_examined
            for u, s in rng.sample(cands, len(cands)):
                if len(chosen) >= opts.negatives:
                    return
                overlap_examined += 1
                if any(containment(corpus.grams(u), g) > opts.overlap_threshold for g in pos_grams):
                    dropped["overlap"] += 1
                else:
                    chosen.append((u, s))

        take(cheap_filters(all_ids[row_q[ri], first - 1:k], all_scores[row_q[ri], first - 1:k]))
        upper = k
        if len(chosen) < opts.negatives and opts.widen and upper < n_corpus:
            rows_widened += 1
            while len(chosen) < opts.negatives and upper < n_corpus:
                new_upper = min(upper * 2, n_corpus)
                s2, i2 = search(index, qv[None, :], new_upper)
                start = max(upper, first - 1)
                take(cheap_filters(i2[0, start:new_upper], s2[0, start:new_upper]))
                upper = new_upper
        if len(chosen) < opts.negatives:
            rows_short += 1
        chosen.sort(key=lambda x: -x[1])
        neg_scores_all += [s for _, s in chosen]

        new_negs = [corpus.texts[u] for u, _ in chosen]
        new_ids = [corpus.ids_of_u[u][0] for u, _ in chosen]
        out = dict(r)
        if opts.keep_existing and r.get("neg"):
            old = list(r["neg"])
            old_ids = r.get("neg_ids") if isinstance(r.get("neg_ids"), list) and len(r["neg_ids"]) == len(old) \
                else [(corpus.ids_for_text(t) or [None])[0] for t in old]
            have = set(old)
            pairs = [(t, i) for t, i in zip(new_negs, new_ids) if t not in have]
            out["neg"] = old + [t for t, _ in pairs]
            out["neg_ids"] = list(old_ids) + [i for _, i in pairs]
        else:
            out["neg"], out["neg_ids"] = new_negs, new_ids
        if not out["neg"]:
            rows_empty += 1
            notes.add(train_path, n, "no negative left after filtering (row not written)")
            continue
        if "pos_ids" not in out and pos_ids:
            out["pos_ids"] = pos_ids
        out_rows.append(out)
    timings["filter_sample"] = time.perf_counter() - t0

    t0 = time.perf_counter()
    write_jsonl(output_path, out_rows)
    timings["write"] = time.perf_counter() - t0
    timings["total"] = time.perf_counter() - t_start

    problems = [str(e) for e in bad_rows.errors + notes.errors + corpus_report.errors]
    stats = {
        "output": str(output_path),
        "model": encoder.spec.name_or_path, "precision": encoder.precision,
        "rows_read": len(rows) + len(bad_rows.errors), "rows_mined": len(rows), "rows_written": len(out_rows),
        "rows_bad": len(bad_rows.errors), "corpus_lines_bad": len(corpus_report.errors),
        "rows_widened": rows_widened, "rows_short_of_negatives": rows_short,
        "rows_without_negatives": rows_empty,
        "negatives_requested": opts.negatives,
        "negatives_per_row": percentiles(len(o["neg"]) for o in out_rows),
        "positive_scores": percentiles(pos_scores_all),
        "negative_scores": percentiles(neg_scores_all),
        "positive_at_rank1": round(pos_rank1 / len(rows), 4),
        "window": {"first": first, "last": last, "candidates_examined": examined,
                   "overlap_tests": overlap_examined},
        "filters_dropped": {f: dropped.get(f, 0) for f in FILTERS},
        "index": {"type": index_kind, "unique_chunks": n_corpus, "chunks": len(corpus.u_of_id)},
        "embedding": {"passages": p_stats, "queries": q_stats, "namespace": encoder.namespace},
        "seconds": {k_: round(v, 3) for k_, v in timings.items()},
        "problems": problems,
        "options": asdict(opts),
    }
    stats_path = output_path.with_name(output_path.stem + ".stats.json")
    write_json(stats_path, stats)
    if opts.print_stats:
        import click
        click.echo(format_stats(stats), err=True)
        if problems:
            click.echo("\n".join(problems[:20]) + (f"\n... and {len(problems) - 20} more (see {stats_path})"
                                                     if len(problems) > 20 else ""), err=True)
    return MineResult(output_path, stats_path, stats, problems)


def format_stats(s: dict) -> str:
    def dist(d: dict) -> str:
        if not d.get("count"):
            return "none"
        return (f"n={d['count']} mean={d['mean']:.3f} p5={d['p5']:.3f} p25={d['p25']:.3f} p50={d['p50']:.3f} "
                f"p75={d['p75']:.3f} p95={d['p95']:.3f}")
    f = s["filters_dropped"]
    lines = [
        f"mined {s['rows_written']}/{s['rows_mined']} rows -> {s['output']} "
        f"({s['index']['type']}, {s['index']['unique_chunks']} unique chunks, {s['seconds']['total']:.1f}s)",
        f"  positive scores: {dist(s['positive_scores'])}",
        f"  negative scores: {dist(s['negative_scores'])}",
        f"  window ranks {s['window']['first']}-{s['window']['last']}: {s['window']['candidates_examined']} candidates;"
        " dropped: " + ", ".join(f"{k} {v}" for k, v in f.items()),
        f"  rows widened: {s['rows_widened']}, still short of {s['negatives_requested']}: "
        f"{s['rows_short_of_negatives']}, without any negative (not written): {s['rows_without_negatives']}, "
        f"bad rows: {s['rows_bad']}",
        f"  embedded: passages {s['embedding']['passages'].get('encoded', 0)} new / "
        f"{s['embedding']['passages'].get('cached', 0)} cached, queries {s['embedding']['queries'].get('encoded', 0)}"
        f" new / {s['embedding']['queries'].get('cached', 0)} cached",
    ]
    return "\n".join(lines)
