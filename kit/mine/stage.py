"""`kit mine`: hard negatives for FlagEmbedding training rows, from the corpus, with faiss.

Window semantics follow FlagEmbedding's ``scripts/hn_mine.py``: every query is searched against the corpus
(unique chunk texts), the results ranked ``a..b`` of ``range="a-b"`` (1-based, inclusive: "2-200" is top-2 ..
top-200) are the window; positives and the query's own text are never negatives but still occupy their rank
(the window is not shifted past them), and ``negatives`` are drawn from what survives the filters
(:mod:`kit.mine.filters`) with a per-row seed (same seed, same output; a row's negatives do not depend on the
other rows). Unlike hn_mine, a short row is never padded with random corpus text.

Named steps, each testable alone: :func:`read_inputs` -> :func:`embed` -> :func:`rank` (candidates) ->
:func:`mine_rows` (filters, sampling, widening) -> :func:`collect_stats`.

Widening: a row left with fewer than ``negatives`` candidates has its window's upper end doubled (b -> 2b ..)
until it has enough or the whole corpus was ranked; such rows are counted (``rows_widened``), rows still
short are counted (``rows_short``) and keep what they have; a row with no negative at all is not written
(FlagEmbedding cannot train on it) and is counted.

Speed: every unique text is embedded once through the encoding layer (:mod:`kit.encode`: engine local, torchrun or
ray, vectors in shard files; :class:`kit.embed.LocalEncoder`'s disk cache keyed by the weights' fingerprint,
length-sorted batches, bf16 on CPUs that have it); search is :mod:`kit.search` (exact, or an approximate index whose
recall of the exact window is measured). Memory: corpus and rows are read as streams (:mod:`kit.mine.corpus`).
"""
from __future__ import annotations

import shutil
import tempfile
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np

from ..formats import check_training_row, write_training_rows
from ..io import KitError, ReadReport, iter_jsonl, write_json
from ..options import validated
from ..search import RECALL_TARGET, SearchOptions, build_index, measure_recall, recall_advice, search
from .corpus import MiningCorpus
from .filters import FILTERS, Counts, RowSampler, row_context
from .options import MineOptions
from .rerank import format_rerank_stats, pool_size, rerank_step
from .stats import format_stats, percentiles
from ..logs import note


@dataclass
class MineResult:
    output_path: Path
    stats_path: Path
    stats: dict = field(default_factory=dict)
    problems: list[str] = field(default_factory=list)

    def summary(self) -> str:
        return format_stats(self.stats)


class RowStream:
    """The training rows, re-read from the file each time they are walked (``(line, row)`` pairs, bad lines
    skipped: the first pass reported them); ``len`` is the number of usable rows."""

    def __init__(self, path, count: int):
        self.path, self.count = path, count

    def __iter__(self):
        return iter_jsonl(self.path, ReadReport(), check_training_row)

    def __len__(self) -> int:
        return self.count


@dataclass
class Inputs:
    corpus: MiningCorpus
    rows: RowStream
    queries: list[str]            # unique queries, in first-seen order
    extra: list[str]              # positives that are not corpus texts, in first-seen order
    bad_rows: ReadReport
    corpus_report: ReadReport
    notes: ReadReport


@dataclass
class Vectors:
    corpus: object                # one per unique corpus text: shard files (kit.encode.ShardedVectors)
    extra: dict[str, np.ndarray]  # positives that are not corpus texts
    queries: object               # one per unique query: shard files (kit.encode.ShardedVectors) or an array
    query_index: dict[str, int]
    stats: dict
    encoder: object
    encoded: list = field(default_factory=list)   # kit.encode.Encoded handles, released by cleanup()

    def cleanup(self) -> None:
        for e in self.encoded:
            e.cleanup()


def parse_range(r: str) -> tuple[int, int]:
    try:
        a, b = (int(x) for x in str(r).split("-"))
    except ValueError:
        raise KitError(f"range {r!r}: expected FIRST-LAST ranks, e.g. 2-200") from None
    if a < 1 or b < a:
        raise KitError(f"range {r!r}: ranks are 1-based and FIRST <= LAST")
    return a, b


def read_inputs(train_path, corpus_path) -> Inputs:
    """Corpus and training rows read as streams: what stays in memory is the corpus' compact bookkeeping
    (kit/mine/corpus.py), the unique queries and the positives that are not corpus texts."""
    corpus_report, bad_rows, notes = ReadReport(), ReadReport(), ReadReport()
    corpus = MiningCorpus.read(corpus_path, corpus_report)
    queries: dict[str, None] = {}
    extra: dict[str, None] = {}
    count = 0
    for n, r in iter_jsonl(train_path, bad_rows, check_training_row):
        count += 1
        queries.setdefault(r["query"], None)
        for t in r["pos"]:
            if t not in corpus.u_of_text:
                extra.setdefault(t, None)
        corpus.positive_ids(r, lambda msg, n=n: notes.add(train_path, n, msg))   # its notes, in row order
    if not count:
        raise KitError(f"{train_path}: no usable training row" + (f"\n{bad_rows.summary()}" if bad_rows else ""))
    return Inputs(corpus, RowStream(train_path, count), list(queries), list(extra), bad_rows, corpus_report, notes)


def embed(inp: Inputs, opts: MineOptions, encode_options=None) -> Vectors:
    """Every unique text once, through the encoding layer (kit/encode: engine local, torchrun or ray; vectors in
    shard files; the cache spares what an earlier run embedded)."""
    import itertools

    from ..embed import EmbeddingCache, LocalEncoder
    from ..encode import encode_texts

    cache = EmbeddingCache(opts.cache_path) if opts.cache_path else None
    encoder = LocalEncoder(opts.model, precision=opts.precision, batch_size=opts.batch_size,
                           max_length=opts.max_length, cache=cache, progress=opts.progress)
    n = len(inp.corpus.texts)
    p = encode_texts(lambda: itertools.chain(inp.corpus.texts, inp.extra), encoder=encoder, kind="passage",
                     options=encode_options, desc="embedding corpus")
    try:
        # the query vectors stay in their shard files too: searched a block at a time, read a row at a time
        q = encode_texts(inp.queries, encoder=encoder, kind="query", options=encode_options,
                         desc="embedding queries")
    except BaseException:
        p.cleanup()
        raise
    return Vectors(corpus=p.vectors.head(n), extra={t: p.vectors[n + i] for i, t in enumerate(inp.extra)},
                   queries=q.vectors, query_index={t: i for i, t in enumerate(inp.queries)},
                   stats={"passages": dict(p.stats), "queries": dict(q.stats)}, encoder=encoder, encoded=[p, q])


def search_to_files(index, queries, k: int, work_dir: Path | None, block: int = 4096):
    """(scores, ids) of every query's top ``k``, searched a block of queries at a time. With ``work_dir`` the two
    n_queries x k matrices are memory-mapped ``.npy`` files there (1M queries x 200 is 2.4 GB that need not be in
    memory: rows are read back one at a time, in about the order they were written); without, arrays."""
    n = len(queries)
    if work_dir is None:
        scores, ids = np.empty((n, k), np.float32), np.empty((n, k), np.int64)
    else:
        scores = np.lib.format.open_memmap(Path(work_dir) / "scores.npy", mode="w+", dtype=np.float32, shape=(n, k))
        ids = np.lib.format.open_memmap(Path(work_dir) / "ids.npy", mode="w+", dtype=np.int64, shape=(n, k))
    for i in range(0, n, block):
        s, x = search(index, queries[i:i + block], k)
        scores[i:i + len(s)] = np.where(x >= 0, s, -np.inf)   # an IVF may return fewer than k: faiss pads -FLT_MAX
        ids[i:i + len(s)] = x
    return scores, ids


def rank(vec: Vectors, last: int, exact_max: int, search_options: SearchOptions | None = None, first: int = 1,
         work_dir: Path | None = None):
    """The candidates: each unique query's top ``last`` unique corpus texts (in files under ``work_dir`` when
    given); with an approximate index, its recall of the exact window measured on a sample of the queries (and a
    warning with settings when short)."""
    o = search_options or SearchOptions()
    k = min(last, len(vec.corpus))
    index, kind = build_index(vec.corpus, exact_max, o)
    scores, ids = search_to_files(index, vec.queries, k, work_dir)
    recall = None
    if not index.exact and o.recall_sample > 0:
        recall, ref = measure_recall(index, vec.corpus, vec.queries, k, (first, last), o.recall_sample)
        advice = recall_advice(index, vec.corpus, vec.queries, k, (first, last), recall, ref, o.recall_sample)
        recall.update(target=RECALL_TARGET, ok=advice["ok"])
        if not advice["ok"]:
            recall.update(suggest=advice["suggest"], suggest_reaches=advice.get("reaches"))
        note(f"[kit] {index.kind}: recovers {recall['window_recall']:.3f} of the exact {recall['window']} window "
             f"(recall@{recall['k']} {recall['recall_at_k']:.3f}) on {recall['queries']} sampled queries"
             + ("" if advice["ok"] else f"\nwarning: below {RECALL_TARGET}: {advice['message']}"))
    return index, kind, scores, ids, recall


@dataclass
class RowTally:
    pos_scores: list[float] = field(default_factory=list)
    neg_scores: list[float] = field(default_factory=list)
    neg_counts: list[int] = field(default_factory=list)   # negatives of each row written
    pos_rank1: int = 0
    widened: int = 0
    short: int = 0
    dropped_short: int = 0
    empty: int = 0
    spread: float = 0.0


def score_spread(scores, lo: int, hi: int, block: int = 65536) -> float:
    """The model's score spread: standard deviation of the window's candidate scores (columns lo..hi-1) over all
    rows (the unit of ``scaled_margin``; cosines of one model may all lie in 0.78-0.97, of another in 0.2-0.9).
    Summed in float64 a block of rows at a time, so a memory-mapped matrix is never loaded whole."""
    n, total, squares = 0, 0.0, 0.0
    for i in range(0, len(scores), block):
        v = np.asarray(scores[i:i + block, lo:hi], dtype=np.float64)
        v = v[np.isfinite(v)]
        n, total, squares = n + v.size, total + float(v.sum()), squares + float(np.square(v).sum())
    if not n:
        return 0.0
    mean = total / n
    return float(np.sqrt(max(squares / n - mean * mean, 0.0)))


def _widen(sampler: RowSampler, index, qv: np.ndarray, upper: int, first: int, n_corpus: int) -> None:
    while not sampler.full and upper < n_corpus:
        new_upper = min(upper * 2, n_corpus)
        s2, i2 = search(index, qv[None, :], new_upper)
        start = max(upper, first - 1)
        sampler.take(i2[0, start:new_upper], s2[0, start:new_upper], in_window=False)
        upper = new_upper


def _output_row(row: dict, pos_ids: list[str], negs: list[tuple[int, float]], corpus: MiningCorpus,
                keep_existing: bool) -> dict:
    new_negs = [corpus.texts[u] for u, _ in negs]
    new_ids = [corpus.ids_of_u[u][0] for u, _ in negs]
    out = dict(row)
    # Teacher scores belong to the old negatives; the reranker step (if any) writes new ones.
    out.pop("pos_scores", None), out.pop("neg_scores", None)
    if keep_existing and row.get("neg"):
        old = list(row["neg"])
        old_ids = row.get("neg_ids") if isinstance(row.get("neg_ids"), list) and len(row["neg_ids"]) == len(old) \
            else [(corpus.ids_for_text(t) or [None])[0] for t in old]
        have = set(old)
        pairs = [(t, i) for t, i in zip(new_negs, new_ids) if t not in have]
        out["neg"], out["neg_ids"] = old + [t for t, _ in pairs], list(old_ids) + [i for _, i in pairs]
    else:
        out["neg"], out["neg_ids"] = new_negs, new_ids
    if "pos_ids" not in out and pos_ids:
        out["pos_ids"] = pos_ids
    return out


def mine_rows(inp: Inputs, vec: Vectors, ranked, opts: MineOptions, counts: Counts, tally: RowTally,
              train_path):
    """The output rows, one at a time as the training rows stream by (a generator: the writer consumes it)."""
    from tqdm.auto import tqdm

    first, last = parse_range(opts.range)
    index, _, all_scores, all_ids = ranked[:4]
    k, n_corpus = all_ids.shape[1], len(inp.corpus.texts)
    pos_vec = (lambda t: vec.corpus[inp.corpus.u_of_text[t]] if t in inp.corpus.u_of_text else vec.extra[t])
    tally.spread = score_spread(all_scores, first - 1, k)
    for n, r in tqdm(inp.rows, desc="mining", unit="row", total=len(inp.rows), disable=not opts.progress or None):
        pos_ids = inp.corpus.positive_ids(r, lambda msg: None)   # (read_inputs recorded its notes)
        qi = vec.query_index[r["query"]]
        ctx = row_context(inp.corpus, r, pos_ids, vec.queries[qi], pos_vec, opts, tally.spread)
        tally.pos_scores += ctx.pos_scores
        tally.pos_rank1 += int(all_ids[qi, 0] in ctx.positives)
        sampler = RowSampler(inp.corpus, ctx, opts, counts, r, want=pool_size(opts))
        sampler.take(all_ids[qi, first - 1:k], all_scores[qi, first - 1:k])
        if not sampler.full and opts.widen and k < n_corpus:
            tally.widened += 1
            _widen(sampler, index, vec.queries[qi], k, first, n_corpus)
        short = len(sampler.chosen) < opts.negatives
        tally.short += int(short)
        if short and opts.short_rows == "drop":
            tally.dropped_short += 1
            continue
        negs = sampler.negatives()
        tally.neg_scores += [s for _, s in negs]
        out = _output_row(r, pos_ids, negs, inp.corpus, opts.keep_existing)
        if not out["neg"]:
            tally.empty += 1
            inp.notes.add(train_path, n, "no negative left after filtering (row not written)")
            continue
        tally.neg_counts.append(len(out["neg"]))
        yield out


def collect_stats(inp: Inputs, vec: Vectors, ranked, opts: MineOptions, counts: Counts, tally: RowTally,
                  neg_counts: list[int], output_path: Path, timings: dict) -> dict:
    first, last = parse_range(opts.range)
    n_rows = len(inp.rows)
    return {
        "output": str(output_path),
        "model": vec.encoder.spec.name_or_path, "precision": vec.stats["passages"].get("precision"),
        "rows_read": n_rows + len(inp.bad_rows.errors), "rows_mined": n_rows, "rows_written": len(neg_counts),
        "rows_bad": len(inp.bad_rows.errors), "corpus_lines_bad": len(inp.corpus_report.errors),
        "rows_widened": tally.widened, "rows_short_of_negatives": tally.short,
        "rows_without_negatives": tally.empty, "rows_dropped_short": tally.dropped_short,
        "negatives_requested": opts.negatives,
        "negatives_per_row": percentiles(neg_counts),
        "positive_scores": percentiles(tally.pos_scores),
        "negative_scores": percentiles(tally.neg_scores),
        "positive_at_rank1": round(tally.pos_rank1 / n_rows, 4),
        "window": {"first": first, "last": last, "candidates_examined": counts.examined,
                   "overlap_tests": counts.overlap_tests, "negatives_in_window": counts.in_window,
                   "negatives_past_window": counts.widened,
                   "share_in_window": round(counts.in_window / max(1, counts.in_window + counts.widened), 4)},
        "score_spread": round(tally.spread, 4),
        "filters_dropped": {f: counts.dropped.get(f, 0) for f in FILTERS},
        "index": {"type": ranked[1], "unique_chunks": len(inp.corpus.texts), "chunks": len(inp.corpus.u_of_id),
                  **({"recall": ranked[4]} if ranked[4] else {})},
        "embedding": {**vec.stats, "namespace": vec.stats["passages"].get("namespace")},
        "seconds": {k: round(v, 3) for k, v in timings.items()},
        "problems": [str(e) for e in inp.bad_rows.errors + inp.notes.errors + inp.corpus_report.errors],
        "options": asdict(opts),
    }


def _timed(timings: dict, name: str, fn, *args):
    t0 = time.perf_counter()
    out = fn(*args)
    timings[name] = time.perf_counter() - t0
    return out


def _mine_and_write(inp: Inputs, vec: Vectors, ranked, opts: MineOptions, counts: Counts, tally: RowTally,
                    train_path, output_path: Path, timings: dict) -> tuple[list[int], dict | None]:
    """Rows stream from the training file to the output (filter_sample includes the writing); with a reranker
    they are held for its batched pass first."""
    rows = mine_rows(inp, vec, ranked, opts, counts, tally, train_path)
    if not opts.reranker:
        _timed(timings, "filter_sample", write_training_rows, output_path, rows)
        return tally.neg_counts, None
    out_rows = _timed(timings, "filter_sample", list, rows)
    # false negatives out, teacher scores in (kit/mine/rerank.py)
    out_rows, rr_stats = _timed(timings, "rerank", rerank_step, inp, out_rows, opts, counts, tally)
    _timed(timings, "write", write_training_rows, output_path, out_rows)
    return [len(o["neg"]) for o in out_rows], rr_stats


def mine(train_path, corpus_path, output_path, options: MineOptions | None = None, encode_options=None,
         search_options: SearchOptions | None = None) -> MineResult:
    """Mine hard negatives for every row of ``train_path``; write ``output_path`` and its stats beside it.
    ``encode_options`` (kit.encode.EncodeOptions) say how the texts are encoded, ``search_options`` which index
    searches them past ``exact_max``."""
    opts = validated(options or MineOptions(), "mine")
    if not opts.model:
        raise KitError("mine needs a model (hub id or local folder)")
    first, last = parse_range(opts.range)
    output_path = Path(output_path)
    timings: dict[str, float] = {}
    t_start = time.perf_counter()
    inp = _timed(timings, "read", read_inputs, train_path, corpus_path)
    vec = None
    output_path.parent.mkdir(parents=True, exist_ok=True)
    # the search results (n_queries x k scores and ids) as memory-mapped files beside the output, removed after
    work_dir = Path(tempfile.mkdtemp(prefix=f".{output_path.name}.ranks-", dir=output_path.parent))
    try:
        vec = _timed(timings, "embed", embed, inp, opts, encode_options)
        ranked = _timed(timings, "search", rank, vec, last, opts.exact_max, search_options, first, work_dir)
        counts, tally = Counts(), RowTally()
        neg_counts, rr_stats = _mine_and_write(inp, vec, ranked, opts, counts, tally, train_path, output_path,
                                               timings)
    finally:
        if vec is not None:
            vec.cleanup()
        inp.corpus.close()
        shutil.rmtree(work_dir, ignore_errors=True)
    timings["total"] = time.perf_counter() - t_start
    stats = collect_stats(inp, vec, ranked, opts, counts, tally, neg_counts, output_path, timings)
    if opts.reranker:
        stats["reranker"] = rr_stats
    stats_path = output_path.with_name(output_path.stem + ".stats.json")
    write_json(stats_path, stats)
    if opts.print_stats:
        problems = stats["problems"]
        note(format_stats(stats) + format_rerank_stats(stats))
        if problems:
            note("\n".join(problems[:20]) + (f"\n... and {len(problems) - 20} more (see {stats_path})"
                                             if len(problems) > 20 else ""))
    return MineResult(output_path, stats_path, stats, stats["problems"])
