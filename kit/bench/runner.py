"""`kit bench`: every candidate model on the same eval set (and optionally a general set), one report.

Eval folders are read in FlagEmbedding's custom-eval layout (corpus.jsonl {id,title,text},
test_queries.jsonl {id,text}, test_qrels.jsonl {qid,docid,relevance}) or BEIR's (corpus.jsonl {_id,...},
queries.jsonl {_id,text}, qrels.tsv / qrels/test.tsv). A passage is embedded as ``title + " " + text`` when
it has a title, as FlagEmbedding's evaluation does. Dense models are searched exactly (faiss IndexFlatIP);
embeddings go through the shared on-disk cache, so a second bench of the same corpus costs no encoding.
"""
from __future__ import annotations

import random
import statistics
import sys
import time
import uuid
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np

from ..io import KitError, ReadReport, iter_jsonl, read_json, write_json
from .metrics import evaluate, rejection_threshold, run_from_ranking


@dataclass
class BenchOptions:
    k: list[int] = field(default_factory=lambda: [1, 3, 5, 10])
    general: str | None = None              # a second eval folder for the general-ability check (e.g. cmrc2018)
    general_max_queries: int | None = 500   # sample of the general set's queries (seeded); None = all
    max_queries: int | None = None          # sample of the domain eval queries; None = all
    baseline: str | None = None             # the model fine-tuning is measured against (default: first)
    base_url: str | None = None             # OpenAI-compatible server for openai:/dashscope: specs
    dimensions: int | None = None
    precision: str = "auto"
    batch_size: int | None = None
    concurrency: int = 4
    latency_samples: int = 8                # single-query calls timed per dense model
    hard_negatives: int = 10                # top-ranked wrong passages per query in the similarity plots
    seed: int = 0
    title: str = "Embedding model selection report"
    progress: bool = True


@dataclass
class EvalSet:
    name: str
    path: str
    doc_ids: list[str]
    doc_texts: list[str]
    query_ids: list[str]
    query_texts: list[str]
    qrels: dict[str, dict[str, int]]


def load_eval(path, max_queries: int | None = None, seed: int = 0) -> EvalSet:
    """Read a custom-eval or BEIR folder; bad lines are reported with file:line and skipped."""
    path = Path(path)
    report = ReadReport()
    if not (path / "corpus.jsonl").exists():
        raise KitError(f"{path}: no corpus.jsonl (expected FlagEmbedding's custom-eval or BEIR layout)")
    doc_ids, doc_texts = [], []
    for _, o in iter_jsonl(path / "corpus.jsonl", report,
                           lambda o: None if (("id" in o or "_id" in o) and isinstance(o.get("text"), str))
                           else "needs 'id' (or '_id') and 'text'"):
        doc_ids.append(str(o.get("id", o.get("_id"))))
        title = (o.get("title") or "").strip()
        doc_texts.append(f"{title} {o['text']}".strip() if title else o["text"])
    queries: dict[str, str] = {}
    qfile = path / "test_queries.jsonl" if (path / "test_queries.jsonl").exists() else path / "queries.jsonl"
    for _, o in iter_jsonl(qfile, report, lambda o: None if (("id" in o or "_id" in o) and isinstance(o.get("text"), str))
                           else "needs 'id' (or '_id') and 'text'"):
        queries[str(o.get("id", o.get("_id")))] = o["text"]
    qrels: dict[str, dict[str, int]] = {}
    if (path / "test_qrels.jsonl").exists():
        for _, o in iter_jsonl(path / "test_qrels.jsonl", report,
                               lambda o: None if {"qid", "docid"} <= set(o) else "needs 'qid' and 'docid'"):
            qrels.setdefault(str(o["qid"]), {})[str(o["docid"])] = int(o.get("relevance", 1))
    else:
        tsv = path / "qrels.tsv" if (path / "qrels.tsv").exists() else path / "qrels" / "test.tsv"
        if not tsv.exists():
            raise KitError(f"{path}: no test_qrels.jsonl, qrels.tsv or qrels/test.tsv")
        with open(tsv, encoding="utf-8") as f:
            for n, line in enumerate(f, 1):
                parts = line.rstrip("\n").split("\t")
                if n == 1 and not parts[-1].strip().lstrip("-").isdigit():
                    continue  # header
                if not line.strip():
                    continue
                if len(parts) < 3 or not parts[2].strip().lstrip("-").isdigit():
                    report.add(tsv, n, "expected query-id<TAB>corpus-id<TAB>integer score")
                    continue
                qrels.setdefault(parts[0], {})[parts[1]] = int(parts[2])
    known = set(doc_ids)
    qrels = {q: {d: r for d, r in rel.items() if d in known and r > 0} for q, rel in qrels.items() if q in queries}
    qrels = {q: rel for q, rel in qrels.items() if rel}
    qids = sorted(qrels)
    if max_queries and len(qids) > max_queries:
        qids = sorted(random.Random(seed).sample(qids, max_queries))
    if report:
        print(f"[kit bench] {len(report.errors)} bad line(s) skipped:\n{report.summary()}", file=sys.stderr)
    if not qids:
        raise KitError(f"{path}: no query with a relevant passage in the corpus")
    return EvalSet(name=path.name, path=str(path), doc_ids=doc_ids, doc_texts=doc_texts, query_ids=qids,
                   query_texts=[queries[q] for q in qids], qrels={q: qrels[q] for q in qids})


def _perf_memo_path() -> Path:
    from ..embed import default_cache_path
    return default_cache_path().parent / "bench_perf.json"


def _measure_latency(provider, queries: list[str], samples: int) -> dict:
    """p50/p95 ms of single-query encodes. A random nonce keeps each text out of the cache; the result is
    remembered per model so a re-run (whose embeddings are all cached) does not load the model again."""
    memo_path = _perf_memo_path()
    memo = read_json(memo_path) if memo_path.exists() else {}
    key = getattr(provider, "namespace", None) or getattr(getattr(provider, "encoder", None), "namespace", None) \
        or provider.spec
    if key in memo:
        return {**memo[key], "remembered": True}
    texts = [queries[i % len(queries)] for i in range(samples + 1)]
    times = []
    for i, t in enumerate(texts):
        t0 = time.perf_counter()
        provider.encode_queries([f"{t} {uuid.uuid4().hex[:6]}"])
        if i:  # the first call loads the model / opens the connection
            times.append((time.perf_counter() - t0) * 1000)
    times.sort()
    out = {"p50_ms": round(statistics.median(times), 2),
           "p95_ms": round(times[min(len(times) - 1, int(0.95 * len(times)))], 2), "samples": len(times)}
    memo[key] = out
    write_json(memo_path, memo)
    return out


def _run_one(name: str, provider, es: EvalSet, opts: BenchOptions) -> dict:
    ks = sorted(set(int(k) for k in opts.k))
    depth = min(len(es.doc_ids), max(max(ks), opts.hard_negatives + 5))
    t0 = time.perf_counter()
    before = dict(provider.stats)
    if provider.kind == "dense":
        d = provider.encode_corpus(es.doc_texts)
        q = provider.encode_queries(es.query_texts)
        import faiss
        index = faiss.IndexFlatIP(d.shape[1])
        index.add(np.ascontiguousarray(d, dtype=np.float32))
        scores, idx = index.search(np.ascontiguousarray(q, dtype=np.float32), depth)
        pos_index = {did: i for i, did in enumerate(es.doc_ids)}
        pos_scores = [float(q[qi] @ d[pos_index[did]]) for qi, qid in enumerate(es.query_ids) for did in es.qrels[qid]]
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
    metrics = evaluate(run_from_ranking(es.query_ids, es.doc_ids, idx), es.qrels, ks)
    delta = {k: provider.stats[k] - before.get(k, 0) for k in provider.stats}
    return {"metrics": metrics, "seconds": round(seconds, 2), "encoded": int(delta.get("encoded", 0)),
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
                       "docs": text_hash("\x1e".join(es.doc_texts), 32),
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


def bench(eval_dir, models: dict[str, str], out_dir, options: BenchOptions | None = None) -> dict:
    """Benchmark ``models`` ({name: provider spec}) on ``eval_dir`` (and ``options.general``); write
    results.json, report.md and report.html to ``out_dir``; return the results."""
    from .providers import make_provider, price_per_million_tokens
    from .report import recommend, write_report

    opts = options or BenchOptions()
    if not models:
        raise KitError("no model to benchmark: pass --model NAME=SPEC (e.g. base=local:BAAI/bge-large-zh-v1.5)")
    sets = {"domain": load_eval(eval_dir, opts.max_queries, opts.seed)}
    if opts.general:
        sets["general"] = load_eval(opts.general, opts.general_max_queries, opts.seed)
    results: dict = {"created": time.strftime("%Y-%m-%d %H:%M:%S"), "title": opts.title,
                     "options": {k: v for k, v in asdict(opts).items() if k != "progress"},
                     "sets": {k: {"path": s.path, "queries": len(s.query_ids), "corpus": len(s.doc_ids)}
                              for k, s in sets.items()},
                     "models": {}}
    t_all = time.perf_counter()
    for name, spec in models.items():
        print(f"[kit bench] {name} ({spec})", file=sys.stderr)
        kw = {"max_length": None, "progress": opts.progress} if spec.startswith(("local:", "adapter:")) else {}
        provider = make_provider(spec, base_url=opts.base_url, dimensions=opts.dimensions,
                                 batch_size=opts.batch_size, concurrency=opts.concurrency,
                                 precision=opts.precision, **{k: v for k, v in kw.items() if v is not None})
        entry: dict = {"spec": spec, "kind": provider.kind}
        for set_name, es in sets.items():
            entry[set_name] = _run_one(name, provider, es, opts)
        if provider.kind == "dense" and opts.latency_samples:
            entry["latency"] = _measure_latency(provider, sets["domain"].query_texts, opts.latency_samples)
        price = price_per_million_tokens(provider.model_name or spec)
        tokens = sum(entry[s]["tokens"] for s in sets)
        # What embedding these corpora and queries costs from scratch, even when this run was served from the
        # cache (tokens_this_run = 0): counted with the provider's own token counter (tiktoken or an upper bound).
        count = getattr(provider, "_count", None) or getattr(getattr(provider, "base", None), "_count", None)
        full_tokens = None
        if price and count:
            unique = {t for es in sets.values() for t in es.doc_texts + es.query_texts}
            full_tokens = sum(count(t) for t in unique)
        entry.update({
            "dimensions": provider.dim, "max_input_tokens": provider.max_input_tokens,
            "index_bytes_per_1m_chunks": int(provider.dim * 4 * 1_000_000) if provider.dim else None,
            "price_per_1m_tokens_usd": price,
            "tokens_this_run": tokens,
            "cost_this_run_usd": round(tokens * price / 1e6, 6) if price is not None else None,
            "tokens_full_embed_estimate": full_tokens,
            "cost_full_embed_usd_estimate": round(full_tokens * price / 1e6, 6) if full_tokens else
            (0.0 if price == 0 else None),
            "throughput_texts_per_s": _throughput(provider, entry, sets),
        })
        results["models"][name] = entry
    results["seconds"] = round(time.perf_counter() - t_all, 2)
    results["baseline"] = opts.baseline if opts.baseline in models else next(iter(models))
    results["recommendation"] = recommend(results)
    out = Path(out_dir)
    write_json(out / "results.json", results)
    write_report(results, out)
    return results


def _throughput(provider, entry: dict, sets: dict) -> float | None:
    """Texts/s of a cold encode; remembered per model because a cached re-run encodes nothing."""
    memo_path = _perf_memo_path()
    memo = read_json(memo_path) if memo_path.exists() else {}
    key = "throughput:" + (getattr(getattr(provider, "encoder", None), "namespace", None) or provider.spec)
    encoded = sum(entry[s]["encoded"] for s in sets)
    secs = sum(entry[s]["encode_seconds"] for s in sets)
    if encoded >= 20 and secs > 0:
        memo[key] = round(encoded / secs, 2)
        write_json(memo_path, memo)
    return memo.get(key)


def parse_models(values: list[str]) -> dict[str, str]:
    models = {}
    for v in values:
        name, sep, spec = v.partition("=")
        if not sep:
            name, spec = v.split(":")[-1].rstrip("/").split("/")[-1] or v, v
        if not spec:
            raise KitError(f"--model {v!r}: expected NAME=SPEC, e.g. base=local:BAAI/bge-large-zh-v1.5")
        models[name.strip()] = spec.strip()
    return models
