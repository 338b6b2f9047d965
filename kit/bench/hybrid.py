"""Hybrid candidates in `kit bench`: each dense model fused with the lexical model (BM25), the way most production
RAG systems search (one vector query and one keyword query, the two result lists merged).

Two fusions, each a row ``"<model> + bm25 (rrf)"`` / ``"<model> + bm25 (weighted)"`` with the shape of a model's
entry in results.json (metrics, per-question results, latency, index size), so the report's table, intervals and
paired comparisons treat it like any other candidate:

- **rrf**: reciprocal-rank fusion (Cormack et al. 2009), score = sum over the two lists of 1 / (k + rank); no
  parameter is fitted on the questions (k = ``bench.rrf_k``, 60 as in the paper).
- **weighted**: a convex combination w x dense + (1 - w) x lexical of each list's scores min-max normalised over
  its own top ``bench.fusion_depth`` (a passage missing from a list scores 0 there), as Elasticsearch's linear
  retriever and Weaviate's relative-score fusion do. The weight is fitted, so it is cross-fitted: the questions are
  dealt into ``bench.fusion_folds`` seeded folds and each fold is scored with the weight chosen (best mean RR) on the
  other folds, so no question is scored with a weight tuned on it. The weight to deploy is the one chosen on all the
  questions; the report shows it and each fold's choice. The general set is scored with the deployment weight.
- **even**: the same sum at a fixed weight 0.5, nothing fitted: what the fitted weight adds, measured on its own.

Written here rather than taken from a library: ranx and pyserini fuse TREC run files (and pyserini needs Java);
the kit already holds both rankings in memory, and the fold-wise weight fit is the part no library does.
``results["hybrid_summary"]`` compares each hybrid with the best single model on the same questions (paired
bootstrap); the recommendation names a hybrid only when that interval excludes zero, and says what it costs.
"""
from __future__ import annotations

import random

import numpy as np

from ..formats import EvalSet
from ..io import cache_dir, read_json, stable_hash, write_json
from .metrics import paired_bootstrap
from .recommend import main_metric, metric_of
from .rerank import set_result

FUSIONS = ("rrf", "weighted", "even")
WEIGHT_GRID = tuple(round(w, 2) for w in np.linspace(0.0, 1.0, 21))   # weight of the dense score, step 0.05


# --------------------------------------------------------------------------------------------- fusion
def _union(dense_idx: np.ndarray, lexical_idx: np.ndarray) -> np.ndarray:
    """The candidates of one question, dense order first (so equal fused scores keep the dense model's order)."""
    return np.fromiter(dict.fromkeys([int(d) for d in dense_idx if d >= 0] + [int(d) for d in lexical_idx if d >= 0]),
                       dtype=np.int64)


def _minmax(scores: np.ndarray) -> np.ndarray:
    lo, hi = float(np.min(scores)), float(np.max(scores))
    return np.ones_like(scores) if hi - lo < 1e-12 else (scores - lo) / (hi - lo)


def _spread(cand: np.ndarray, idx: np.ndarray, values: np.ndarray) -> np.ndarray:
    """``values`` (given for the passages ``idx``) placed on the candidates ``cand``; missing ones are 0."""
    pos = {int(d): i for i, d in enumerate(idx)}
    return np.array([values[pos[int(c)]] if int(c) in pos else 0.0 for c in cand], dtype=np.float64)


def rrf_ranking(dense: tuple[np.ndarray, np.ndarray], lexical: tuple[np.ndarray, np.ndarray], k: int,
                depth: int) -> np.ndarray:
    """Reciprocal-rank fusion of two rankings ((scores, indices) per question), top ``depth`` indices (-1 padded)."""
    out = np.full((len(dense[1]), depth), -1, dtype=np.int64)
    for qi, (d_idx, l_idx) in enumerate(zip(dense[1], lexical[1])):
        cand = _union(d_idx, l_idx)
        rr = lambda idx: 1.0 / (k + np.arange(1, len(idx) + 1, dtype=np.float64))   # noqa: E731
        fused = _spread(cand, d_idx, rr(d_idx)) + _spread(cand, l_idx, rr(l_idx))
        top = cand[np.argsort(-fused, kind="stable")][:depth]
        out[qi, :len(top)] = top
    return out


def weighted_rankings(dense: tuple[np.ndarray, np.ndarray], lexical: tuple[np.ndarray, np.ndarray],
                      weights: tuple[float, ...], depth: int) -> np.ndarray:
    """Convex fusion of min-max normalised scores for every weight at once: indices (weights, questions, depth)."""
    w = np.asarray(weights, dtype=np.float64)[:, None]
    out = np.full((len(weights), len(dense[1]), depth), -1, dtype=np.int64)
    for qi in range(len(dense[1])):
        d_s, d_idx, l_s, l_idx = dense[0][qi], dense[1][qi], lexical[0][qi], lexical[1][qi]
        d_s, d_idx, l_s, l_idx = d_s[d_idx >= 0], d_idx[d_idx >= 0], l_s[l_idx >= 0], l_idx[l_idx >= 0]
        cand = _union(d_idx, l_idx)
        fused = w * _spread(cand, d_idx, _minmax(d_s))[None, :] + (1 - w) * _spread(cand, l_idx, _minmax(l_s))[None, :]
        order = np.argsort(-fused, axis=1, kind="stable")[:, :depth]
        out[:, qi, :order.shape[1]] = cand[order]
    return out


def reciprocal_ranks(idx: np.ndarray, es: EvalSet, cut: int) -> np.ndarray:
    """RR@cut of each question of a ranking (questions x depth): what the weight is chosen on (the report's MRR)."""
    pos = es.position
    rr = np.zeros(len(es.query_ids))
    for qi, qid in enumerate(es.query_ids):
        gold = {pos[d] for d, rel in es.qrels[qid].items() if rel > 0 and d in pos}
        for r, d in enumerate(idx[qi][:cut], 1):
            if int(d) in gold:
                rr[qi] = 1.0 / r
                break
    return rr


def folds_of(n: int, folds: int, seed: int) -> np.ndarray:
    """Fold number of each of ``n`` questions: a seeded deal, so folds differ in size by at most one."""
    order = list(range(n))
    random.Random(seed).shuffle(order)
    out = np.zeros(n, dtype=np.int64)
    for i, q in enumerate(order):
        out[q] = i % folds
    return out


def cross_fitted(rr_by_weight: np.ndarray, fold: np.ndarray) -> tuple[np.ndarray, list[float], float]:
    """(the weight index each question is scored with, each fold's weight, the weight chosen on all questions).
    A fold's weight maximises the mean RR of the *other* folds' questions; ties go to the weight nearest 0.5 (an
    even mix), so a flat optimum does not drift to an extreme."""
    grid = np.asarray(WEIGHT_GRID)
    tie = -np.abs(grid - 0.5) * 1e-9

    def best(mask: np.ndarray) -> int:
        return int(np.argmax(rr_by_weight[:, mask].mean(axis=1) + tie))

    per_fold = {f: best(fold != f) for f in np.unique(fold)}
    chosen = np.array([per_fold[f] for f in fold], dtype=np.int64)
    return chosen, [float(grid[per_fold[f]]) for f in sorted(per_fold)], float(grid[best(np.ones_like(fold, bool))])


# --------------------------------------------------------------------------------------------- rows
def hybrid_models(results: dict, sets: dict, rankings: dict, opts) -> dict:
    """Every dense model named by ``opts.hybrid`` fused with the first lexical model: the hybrid rows."""
    models = results["models"]
    lexical = next((n for n, e in models.items() if e.get("kind") == "sparse"), None)
    if lexical is None or not opts.hybrid or not opts.fusion:
        return {}
    wanted = [n for n, e in models.items() if e.get("kind") == "dense"
              and ("*" in opts.hybrid or n in opts.hybrid)]
    ks = sorted(set(int(k) for k in opts.k))
    cut = 10 if 10 in ks else max(ks)
    out = {}
    for name in wanted:
        for method in opts.fusion:
            row = _row(name, models[name], lexical, models[lexical], method, opts)
            for set_name, es in sets.items():
                dense, lex = rankings[name][set_name], rankings[lexical][set_name]
                depth = min(len(es.doc_ids), max(max(ks), opts.hard_negatives + 5))
                if method == "rrf":
                    idx = rrf_ranking(dense, lex, opts.rrf_k, depth)
                elif method == "even":
                    idx = weighted_rankings(dense, lex, (0.5,), depth)[0]
                    row["weight"] = 0.5
                elif set_name == "domain":
                    by_w = weighted_rankings(dense, lex, WEIGHT_GRID, depth)
                    rr = np.stack([reciprocal_ranks(i, es, cut) for i in by_w])
                    chosen, fold_weights, deploy = cross_fitted(rr, folds_of(len(es.query_ids), opts.fusion_folds,
                                                                              opts.seed))
                    idx = by_w[chosen, np.arange(len(es.query_ids))]
                    row.update({"weight": deploy, "fold_weights": fold_weights, "folds": opts.fusion_folds})
                else:   # the general set: the deployment weight, fitted on the domain questions only
                    idx = weighted_rankings(dense, lex, (row["weight"],), depth)[0]
                row[set_name] = set_result(es, idx, ks)
            out[f"{name} + {lexical} ({method})"] = row
    return out


def m3_models(results: dict, sets: dict, opts) -> dict:
    """For each bge-m3 folder among the dense models: the model's own dense + sparse (+ ColBERT) combination through
    FlagEmbedding's BGEM3FlagModel (kit/providers/m3.py), rows ``"<model> m3 (dense+sparse)"`` and ``"<model> m3
    (dense+sparse+colbert)"``. Not cached: every run encodes the corpus with all three heads."""
    from ..providers.m3 import m3_rankings, is_m3_folder

    ks = sorted(set(int(k) for k in opts.k))
    out = {}
    for name, entry in results["models"].items():
        folder = entry["spec"][len("local:"):] if entry["spec"].startswith("local:") else None
        if entry.get("kind") != "dense" or not folder or not is_m3_folder(folder) \
                or not ("*" in opts.hybrid or name in opts.hybrid):
            continue
        per_set = {s: m3_rankings(folder, es.query_texts, es.doc_texts, min(len(es.doc_ids), max(max(ks), 20)),
                                  progress=opts.progress) for s, es in sets.items()}
        size = m3_index_bytes(folder, sets["domain"].doc_texts)
        for key in ("dense+sparse", "dense+sparse+colbert"):
            row = {k: entry.get(k) for k in ("dimensions", "max_input_tokens", "price_per_1m_tokens_usd",
                                             "cost_full_embed_usd_estimate", "throughput_texts_per_s", "latency")}
            row.update({"spec": f"{entry['spec']} (BGEM3FlagModel {key})", "kind": "hybrid", "model": name,
                        "lexical": "m3 sparse head", "fusion": f"m3 {key}",
                        # one encode gives every output; the index holds the dense vectors plus the other heads'
                        "index_bytes_per_1m_chunks": (entry.get("index_bytes_per_1m_chunks") or 0) + size["sparse"]
                        + (size["colbert"] if key.endswith("colbert") else 0),
                        "lexical_index_bytes_per_1m_chunks": size["sparse"]})
            for set_name, es in sets.items():
                row[set_name] = set_result(es, per_set[set_name][key][1], ks)
            out[f"{name} m3 ({key})"] = row
    return out


def m3_index_bytes(folder: str, passages: list[str], max_length: int = 512) -> dict:
    """Per 1M chunks, an upper bound counted with the model's tokenizer: the sparse index keeps at most one weight
    per distinct token of a passage (4-byte id + 4-byte weight), ColBERT one fp16 vector per token (BGEM3FlagModel
    drops the first)."""
    from transformers import AutoTokenizer

    tok = AutoTokenizer.from_pretrained(folder)
    hidden = int(read_json(f"{folder}/config.json").get("hidden_size", 0))
    distinct = tokens = 0
    for start in range(0, len(passages), 1024):   # a block at a time: the passages may be a spool of millions
        ids = tok(list(passages[start:start + 1024]), truncation=True, max_length=max_length,
                  add_special_tokens=True)["input_ids"]
        distinct += sum(len(set(x)) for x in ids)
        tokens += sum(max(len(x) - 1, 0) for x in ids)
    n = max(len(passages), 1)
    sparse, colbert = distinct * 8 / n, tokens * hidden * 2 / n
    return {"sparse": int(sparse * 1_000_000), "colbert": int(colbert * 1_000_000)}


def _row(name: str, entry: dict, lexical: str, lex_entry: dict, method: str, opts) -> dict:
    dense_bytes, lex_bytes = entry.get("index_bytes_per_1m_chunks"), lex_entry.get("index_bytes_per_1m_chunks")
    lat, lex_lat = entry.get("latency") or {}, lex_entry.get("latency") or {}
    row = {key: entry.get(key) for key in ("dimensions", "max_input_tokens", "price_per_1m_tokens_usd",
                                           "cost_full_embed_usd_estimate", "throughput_texts_per_s")}
    row.update({"spec": f"{entry['spec']} ⊕ {lex_entry['spec']} ({method})", "kind": "hybrid", "model": name,
                "lexical": lexical, "fusion": method, "fusion_depth": opts.fusion_depth,
                "rrf_k": opts.rrf_k if method == "rrf" else None,
                # two indexes: the vectors and the inverted index
                "index_bytes_per_1m_chunks": (dense_bytes or 0) + (lex_bytes or 0) or None,
                "lexical_index_bytes_per_1m_chunks": lex_bytes})
    if lat.get("p50_ms") is not None and lex_lat.get("p50_ms") is not None:
        # two queries per question, run one after the other (a server running them in parallel pays the larger)
        row["latency"] = {"p50_ms": round(lat["p50_ms"] + lex_lat["p50_ms"], 2),
                          "dense_p50_ms": lat["p50_ms"], "lexical_p50_ms": lex_lat["p50_ms"],
                          "busy": bool(lat.get("busy") or lex_lat.get("busy")),
                          "cpu_busy_share": max(lat.get("cpu_busy_share", 0), lex_lat.get("cpu_busy_share", 0))}
    return row


def lexical_profile(provider, es: EvalSet, opts) -> dict:
    """Single-question latency of the lexical model on this corpus and its index size per 1M chunks, measured on
    a built index (as :func:`kit.bench.latency.measure` times the dense models); remembered per corpus, since
    building the index re-tokenises every passage."""
    from .latency import measure

    memo_path = cache_dir() / "bench_perf.json"
    memo = read_json(memo_path) if memo_path.exists() else {}
    key = "lexical:" + stable_hash({"spec": provider.spec, "params": [getattr(provider, a, None) for a in ("k1", "b")],
                                    "docs": es.docs_digest(), "depth": opts.fusion_depth}, 24)
    if key in memo and (memo[key].get("p50_ms") is not None or not opts.latency_samples):
        return {**memo[key], "remembered": True}
    index = provider.build(es.doc_texts)
    depth = min(len(es.doc_ids), opts.fusion_depth)
    out = {"bytes_per_1m_chunks": int(index.nbytes / max(len(es.doc_ids), 1) * 1_000_000)}
    if opts.latency_samples:
        lat = measure(lambda q: index.query(q, depth), es.query_texts, opts.latency_samples)
        out.update({"p50_ms": lat["p50_ms"], "p95_ms": lat["p95_ms"], "busy": lat["busy"],
                    "cpu_busy_share": lat["cpu_busy_share"]})
    if not out.get("busy"):
        memo = read_json(memo_path) if memo_path.exists() else {}
        memo[key] = out
        write_json(memo_path, memo)
    return out


# --------------------------------------------------------------------------------------------- verdict
def summarise(results: dict, rows: dict) -> dict:
    """Each hybrid against the best single model on the same questions (paired bootstrap); a hybrid is recommended
    only where that interval excludes zero."""
    metric = main_metric(results)
    models = results["models"]
    single = max(models, key=lambda n: metric_of(models[n], "domain", metric) or 0)
    kind = {"real": "real ", "generated": "generated "}.get((results.get("eval_info") or {}).get("questions"), "")
    base = models[single]["domain"]["per_query"].get(metric)
    gains = {}
    for name, row in rows.items():
        other = row["domain"]["per_query"].get(metric)
        if base and other and len(base) == len(other):
            gains[name] = paired_bootstrap(base, other)
    significant = [n for n, g in gains.items() if g["diff_lo"] > 0]
    best = max(significant, key=lambda n: metric_of(rows[n], "domain", metric) or 0) if significant else None
    return {"metric": metric, "best_single": single, "gains": gains, "recommended": best,
            "text": _lines(rows, gains, best, single, metric, kind)}


def _cost_text(row: dict) -> str:
    lat = row.get("latency") or {}
    lex = row.get("lexical_index_bytes_per_1m_chunks")
    if str(row.get("fusion", "")).startswith("m3 "):
        return (f"one model and one query encode, an index of the dense vectors and the heads' outputs "
                f"({(row.get('index_bytes_per_1m_chunks') or 0) / 1e9:.2f} GB per 1M chunks at most)")
    parts = ["two indexes (the vectors and a BM25 inverted index"
             + (f", {lex / 1e9:.2f} GB per 1M chunks" if lex else "") + ")",
             "two queries per question" + (f" ({lat['dense_p50_ms']:g} + {lat['lexical_p50_ms']:g} ms p50 run one "
                                           f"after the other)" if lat.get("lexical_p50_ms") is not None else "")]
    return " and ".join(parts)


def _weight_text(row: dict) -> str:
    if str(row.get("fusion", "")).startswith("m3 "):
        return f"bge-m3's own {row['fusion'][3:]} scores (BGEM3FlagModel, weights 0.4 / 0.2 / 0.4)"
    if row.get("fusion") == "rrf":
        return f"reciprocal-rank fusion, k = {row.get('rrf_k')}, nothing fitted"
    if row.get("fusion") == "even":
        return "min-max normalised scores, fixed dense weight 0.5, nothing fitted"
    return (f"dense weight {row['weight']:g} chosen on all questions; each question was scored with the weight chosen "
            f"on the other {row['folds'] - 1} of {row['folds']} seeded folds ({' / '.join(f'{w:g}' for w in row['fold_weights'])})")


def _lines(rows: dict, gains: dict, best: str | None, single: str, metric: str, kind: str) -> list[str]:
    if not gains:
        return []
    m = metric.upper()
    if best is not None:
        g, row = gains[best], rows[best]
        return [f"Hybrid search pays off: {best} {m} {g['other']:.3f} against {g['base']:.3f} for the best single "
                f"model ({single}): {g['diff'] / g['base']:+.1%}, 95% CI {g['diff_lo'] / g['base']:+.1%} to "
                f"{g['diff_hi'] / g['base']:+.1%} over {g['n_questions']} {kind}questions ({_weight_text(row)}). "
                f"Running it costs {_cost_text(row)}."]
    name = max(gains, key=lambda n: gains[n]["diff"])
    g = gains[name]
    b = g["base"] or 1.0
    return [f"No hybrid is significantly better than the best single model {single} (best hybrid: {name}, {m} "
            f"{g['base']:.3f} → {g['other']:.3f}, {g['diff'] / b:+.1%}, 95% CI {g['diff_lo'] / b:+.1%} to "
            f"{g['diff_hi'] / b:+.1%} over {g['n_questions']} {kind}questions): search with {single} alone, one index "
            f"and one query."]


def hybrid_markdown(results: dict) -> list[str]:
    rows = results.get("hybrid") or {}
    if not rows:
        return []
    out = ["", "## 混合检索 Hybrid search", "", "| hybrid | fusion | vs best single model (95% CI) |",
           "|---|---|---|"]
    gains = (results.get("hybrid_summary") or {}).get("gains", {})
    for name, row in rows.items():
        g = gains.get(name)
        change = "–" if not g or not g["base"] else (f"{g['diff'] / g['base']:+.1%} ({g['diff_lo'] / g['base']:+.1%} "
                                                     f"to {g['diff_hi'] / g['base']:+.1%})")
        out.append(f"| {name} | {_weight_text(row)} | {change} |")
    return out + ["", "Each dense model's and BM25's top passages merged per question; rows in the results table "
                  "above carry the same metrics. Latency adds the two queries; index size adds the two indexes.", ""]


def hybrid_html(results: dict) -> str:
    import html

    lines = hybrid_markdown(results)
    if not lines:
        return ""
    rows = [r for r in lines if r.startswith("| ") and not r.startswith("| hybrid")]
    body = "".join("<tr>" + "".join(f"<td>{html.escape(c.strip())}</td>" for c in r.strip("|").split(" | ")) + "</tr>"
                   for r in rows)
    return ("<h2>混合检索 Hybrid search</h2><table><thead><tr><th>hybrid</th><th>fusion</th><th>vs best single model "
            f"(95% CI)</th></tr></thead><tbody>{body}</tbody></table><p class=\"note\">{html.escape(lines[-2])}</p>")
