"""`kit bench`: every candidate model on the same eval set (and optionally a general set), one report.

Eval folders are read in FlagEmbedding's custom-eval layout (corpus.jsonl {id,title,text},
test_queries.jsonl {id,text}, test_qrels.jsonl {qid,docid,relevance}) or BEIR's (corpus.jsonl {_id,...},
queries.jsonl {_id,text}, qrels.tsv / qrels/test.tsv). A passage is embedded as ``title + " " + text`` when
it has a title, as FlagEmbedding's evaluation does. Dense models are searched exactly (faiss IndexFlatIP);
embeddings go through the shared on-disk cache, so a second bench of the same corpus costs no encoding.
"""
from __future__ import annotations

import itertools
import random
import time
from dataclasses import asdict
from pathlib import Path

import numpy as np

from ..formats import EvalSet, load_eval
from ..io import KitError, read_json, text_hash, write_json
from ..search import top_k
from ..secrets import redact_obj
from .latency import measure_latency
from .options import INCLUDE, BenchFiles, BenchOptions  # noqa: F401 (re-exported: kit.bench.stage.BenchOptions)
from .metrics import evaluate, per_query, rejection_threshold, run_from_ranking
from ..logs import note

def _perf_memo_path() -> Path:
    from ..embed import default_cache_path
    return default_cache_path().parent / "bench_perf.json"


def _run_one(name: str, provider, es: EvalSet, opts: BenchOptions) -> dict:
    """One model on one set; its ranking (scores, indices to ``fusion_depth``) rides along under "_ranking" for the
    hybrid rows (taken out before results.json is written)."""
    ks = sorted(set(int(k) for k in opts.k))
    depth = min(len(es.doc_ids), max(max(ks), opts.hard_negatives + 5, opts.fusion_depth if opts.hybrid else 0))
    t0 = time.perf_counter()
    before = dict(provider.stats)
    if provider.kind == "dense":
        d = provider.encode_corpus(es.doc_texts)
        q = provider.encode_queries(es.query_texts)
        scores, idx = top_k(q, d, depth)
        pos_scores = [float(q[qi] @ d[es.position[did]]) for qi, qid in enumerate(es.query_ids) for did in es.qrels[qid]]
    else:
        scores, idx = _cached_sparse_search(provider, es, depth)
        pos_scores = []
        for qi, qid in enumerate(es.query_ids):
            for r, di in enumerate(idx[qi]):
                if es.doc_ids[int(di)] in es.qrels[qid]:
                    pos_scores.append(float(scores[qi][r]))
    seconds = time.perf_counter() - t0
    neg_scores = []
    for qi, qid in enumerate(es.query_ids):
        wrong = [float(scores[qi][r]) for r, di in enumerate(idx[qi]) if es.doc_ids[int(di)] not in es.qrels[qid]]
        neg_scores += wrong[:opts.hard_negatives]
    run = run_from_ranking(es.query_ids, es.doc_ids, idx)
    metrics = evaluate(run, es.qrels, ks)
    delta = {k: provider.stats[k] - before.get(k, 0) for k in provider.stats}
    # Per question (same order as the set's query_ids): what the paired bootstrap of the report resamples, and
    # the top passages for the examples where two models disagree.
    per_q = per_query(run, es.qrels, es.query_ids, 10 if 10 in ks else max(ks))  # the report's main metric
    per_q["top"] = [[es.doc_ids[int(d)] for d in row[:3] if d >= 0] for row in idx]
    return {"_ranking": (np.asarray(scores, dtype=np.float32)[:, :opts.fusion_depth],
                         np.asarray(idx, dtype=np.int64)[:, :opts.fusion_depth]),
            "metrics": metrics, "per_query": per_q, "seconds": round(seconds, 2),
            "encoded": int(delta.get("encoded", 0)),
            "cached": int(delta.get("cached", 0)), "tokens": int(delta.get("tokens", 0)),
            "encode_seconds": round(float(delta.get("encode_seconds", 0.0)), 2),
            "similarity": {"positives": _hist_summary(pos_scores), "hard_negatives": _hist_summary(neg_scores),
                           "threshold": rejection_threshold(np.array(pos_scores), np.array(neg_scores)),
                           "pos_sample": _sample(pos_scores), "neg_sample": _sample(neg_scores)}}


def _cached_sparse_search(provider, es: EvalSet, depth: int) -> tuple[np.ndarray, np.ndarray]:
    """A sparse model (bm25) has no vectors for the embedding cache, and jieba-tokenising a corpus costs more
    than everything else in a re-run; so its top-``depth`` ranking is cached on disk, keyed by everything it
    depends on (spec and parameters, every passage and query text, depth, jieba's version)."""
    import jieba

    from ..embed import default_cache_path
    from ..io import atomic_open, stable_hash, text_hash

    key = stable_hash({"spec": provider.spec, "params": {a: getattr(provider, a, None) for a in ("k1", "b")},
                       "docs": es.docs_digest(),
                       "queries": text_hash("\x1e".join(es.query_texts), 32), "depth": depth,
                       "jieba": getattr(jieba, "__version__", "")}, 32)
    path = default_cache_path().parent / "sparse_runs" / f"{key}.npz"
    if path.exists():
        with np.load(path) as z:
            provider.stats["cached"] += len(es.doc_texts) + len(es.query_texts)
            return z["scores"], z["indices"]
    scores, idx = provider.search(es.query_texts, es.doc_texts, depth)
    with atomic_open(path, "wb") as f:
        np.savez(f, scores=scores, indices=idx)
    return scores, idx


def _sample(v: list[float], n: int = 2000) -> list[float]:
    if len(v) > n:
        v = random.Random(0).sample(v, n)
    return [round(x, 4) for x in v]


def _hist_summary(v: list[float]) -> dict:
    if not v:
        return {"n": 0}
    a = np.asarray(v)
    return {"n": len(v), "mean": round(float(a.mean()), 4), "p10": round(float(np.percentile(a, 10)), 4),
            "p50": round(float(np.percentile(a, 50)), 4), "p90": round(float(np.percentile(a, 90)), 4)}


def _costs(provider, entry: dict, sets: dict) -> dict:
    """Price, tokens and cost of this run, and what embedding these sets from scratch costs (even when this
    run was served from the cache), counted with the provider's own token counter."""
    from ..providers import price_per_million_tokens

    price = price_per_million_tokens(provider.model_name or entry["spec"])
    tokens = sum(entry[s]["tokens"] for s in sets)
    count = getattr(provider, "count_tokens", None)
    full_tokens = None
    if price and count:
        seen: set[str] = set()        # hashes, not texts: the passages stay in their spool
        full_tokens = 0
        for t in itertools.chain.from_iterable(itertools.chain(es.doc_texts, es.query_texts) for es in sets.values()):
            h = text_hash(t, 32)
            if h not in seen:
                seen.add(h)
                full_tokens += count(t)
    return {
        "dimensions": provider.dim, "max_input_tokens": provider.max_input_tokens,
        # exact with the provider's published tokenizer (tiktoken for OpenAI), else a labelled estimate
        "token_count_method": getattr(provider, "token_method", None),
        "token_count_exact": getattr(provider, "tokens_exact", None),
        "index_bytes_per_1m_chunks": int(provider.dim * 4 * 1_000_000) if provider.dim else None,
        "price_per_1m_tokens_usd": price,
        "tokens_this_run": tokens,
        "cost_this_run_usd": round(tokens * price / 1e6, 6) if price is not None else None,
        "tokens_full_embed_estimate": full_tokens,
        "cost_full_embed_usd_estimate": round(full_tokens * price / 1e6, 6) if full_tokens else
        (0.0 if price == 0 else None),
        "throughput_texts_per_s": _throughput(provider, entry, sets),
    }


def bench_model(name: str, spec: str, sets: dict, opts: BenchOptions, rankings: dict | None = None,
                encode=None) -> dict:
    """One candidate on every set: metrics, similarity distributions, latency, cost; its rankings per set go into
    ``rankings`` (for the hybrid rows). ``encode`` (kit.encode.EncodeOptions): a local model's corpus goes through
    the encoding layer (local, torchrun or Ray workers; shard files searched shard by shard)."""
    from ..providers import make_provider

    note(f"[kit bench] {name} ({spec})")
    kw = {"progress": opts.progress} if spec.startswith(("local:", "adapter:")) else {}
    if encode is not None and spec.startswith(("local:", "adapter:")):   # an adapter's corpus is its base's
        kw["encode_options"] = encode
    own = (opts.model_settings or {}).get(name) or {}
    provider = make_provider(spec, base_url=opts.base_url, dimensions=opts.dimensions, batch_size=opts.batch_size,
                             concurrency=opts.concurrency, precision=opts.precision, settings=own, **kw)
    entry: dict = {"spec": spec, "kind": provider.kind, "settings": redact_obj(own)}
    keep: dict = {}
    try:
        for set_name, es in sets.items():
            entry[set_name] = _run_one(name, provider, es, opts)
            keep[set_name] = entry[set_name].pop("_ranking")
    finally:
        provider.close()
    if rankings is not None:
        rankings[name] = keep
    if provider.kind == "dense" and opts.latency_samples:
        entry["latency"] = measure_latency(provider, sets["domain"].query_texts, opts.latency_samples)
    entry.update(_costs(provider, entry, sets))
    if provider.kind == "sparse":   # its query latency and inverted-index size, measured on a built index
        from .hybrid import lexical_profile
        profile = lexical_profile(provider, sets["domain"], opts)
        entry["index_bytes_per_1m_chunks"] = profile["bytes_per_1m_chunks"]
        if profile.get("p50_ms") is not None:
            entry["latency"] = {k: profile[k] for k in ("p50_ms", "p95_ms", "busy", "cpu_busy_share") if k in profile}
    return entry


def bench(eval_dir, models: dict[str, str], out_dir, options: BenchOptions | None = None, encode=None) -> dict:
    """Benchmark ``models`` ({name: provider spec}) on ``eval_dir`` (and ``options.general``); write
    results.json, report.md and report.html to ``out_dir``; return the results. ``encode``: see :func:`bench_model`."""
    from .evidence import disagreements, eval_info, lexical_overlap
    from .report import recommend, write_report

    opts = options or BenchOptions()
    if not models:
        raise KitError("no model to benchmark: pass --models NAME=SPEC (e.g. base=local:BAAI/bge-large-zh-v1.5)")
    sets = {"domain": load_eval(eval_dir, opts.max_queries, opts.seed)}
    if opts.general:
        sets["general"] = load_eval(opts.general, opts.general_max_queries, opts.seed)
    for es in sets.values():
        if es.problems:
            note(f"[kit bench] {es.path}: {len(es.problems)} bad line(s) or unknown passages skipped:\n" + "\n".join(es.problems[:20]))
    results: dict = {"created": time.strftime("%Y-%m-%d %H:%M:%S"), "title": opts.title,
                     "options": redact_obj({k: v for k, v in asdict(opts).items()
                                            if k not in ("progress", "models", "model_settings")}),
                     "sets": {k: {"path": s.path, "queries": len(s.query_ids), "corpus": len(s.doc_ids),
                                  "questions_not_evaluated": s.dropped} for k, s in sets.items()},
                     "models": {}}
    t_all = time.perf_counter()
    rankings: dict = {}
    for name, spec in models.items():
        results["models"][name] = bench_model(name, spec, sets, opts, rankings, encode)
    results["seconds"] = round(time.perf_counter() - t_all, 2)
    results["baseline"] = opts.baseline if opts.baseline in models else next(iter(models))
    results["eval_info"] = {**eval_info(eval_dir), "lexical_overlap": lexical_overlap(sets["domain"])}
    from .hybrid import hybrid_models, m3_models, summarise as hybrid_summary   # kit/bench/hybrid.py
    results["hybrid"] = {**hybrid_models(results, sets, rankings, opts), **(m3_models(results, sets, opts)
                                                                          if opts.hybrid else {})}
    if results["hybrid"]:
        results["hybrid_summary"] = hybrid_summary(results, results["hybrid"])
    if opts.rerankers:   # retrieve-and-rerank rows beside the models' own (kit/bench/rerank.py)
        from .rerank import rerank_models
        results["reranked"] = rerank_models(results, models, sets, opts, sparse_search=_cached_sparse_search)
    results["recommendation"] = recommend(results)
    pick = results["recommendation"].get("recommended") or results["recommendation"]["best_quality"]
    results["examples"] = {"models": [results["baseline"], pick],
                           "rows": disagreements(results, sets["domain"], results["baseline"], pick)}
    out = Path(out_dir)
    write_json(out / "results.json", results)
    write_report(results, out)
    return results


def _throughput(provider, entry: dict, sets: dict) -> float | None:
    """Texts/s of a cold encode; remembered per model because a cached re-run encodes nothing."""
    memo_path = _perf_memo_path()
    memo = read_json(memo_path) if memo_path.exists() else {}
    key = "throughput:" + provider.cache_key
    encoded = sum(entry[s]["encoded"] for s in sets)
    secs = sum(entry[s]["encode_seconds"] for s in sets)
    if encoded >= 20 and secs > 0:
        memo[key] = round(encoded / secs, 2)
        write_json(memo_path, memo)
    return memo.get(key)
