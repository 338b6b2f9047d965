"""Retrieve-and-rerank in `kit bench`: each model's top ``bench.rerank_top`` passages reordered by each reranker of
``bench.rerankers``, on the same questions, with the latency the reranker adds per question and its cost.

A reranked row ``"<model> + <reranker>"`` has the shape of a model's entry in results.json (metrics and per-question
results per set), so the report shows it in the results table next to the model alone; ``results["reranked"]``
holds the rows and ``results["rerank_summary"]`` the comparison of each row with its own model: the paired
bootstrap over the same questions (:func:`kit.bench.metrics.paired_bootstrap`). A reranker is recommended only
where that interval excludes zero.

Rankings come from the same providers as the models' rows (embeddings from the cache, so this costs a search),
reranker scores from the reranker cache: every (question, passage) pair is scored once however many models
retrieved it.
"""
from __future__ import annotations

import time

import numpy as np

from ..formats import EvalSet
from ..io import cache_dir, read_json, write_json
from ..providers.rerankers import make_reranker, parse_reranker_entry
from ..search import top_k
from .metrics import evaluate, paired_bootstrap, per_query, run_from_ranking
from .recommend import main_metric, metric_of
from ..logs import note


def parse_rerankers(rerankers: dict) -> dict[str, tuple[str, dict]]:
    return {name: parse_reranker_entry(name, v, "bench.rerankers") for name, v in (rerankers or {}).items()}


def model_ranking(name: str, spec: str, es: EvalSet, depth: int, opts, sparse_search) -> np.ndarray:
    """The model's top ``depth`` passage indices per question, as its own row ranked them."""
    from ..providers import make_provider

    own = (getattr(opts, "model_settings", None) or {}).get(name) or {}
    kw = {"progress": False} if spec.startswith(("local:", "adapter:")) else {}
    provider = make_provider(spec, base_url=opts.base_url, dimensions=opts.dimensions, batch_size=opts.batch_size,
                             concurrency=opts.concurrency, precision=opts.precision, settings=own, **kw)
    if provider.kind != "dense":
        return np.asarray(sparse_search(provider, es, depth)[1])
    return top_k(provider.encode_queries(es.query_texts), provider.encode_corpus(es.doc_texts), depth)[1]


def rerank_ranking(reranker, es: EvalSet, idx: np.ndarray, top: int) -> np.ndarray:
    """Each question's first ``top`` candidates (a row of ``idx``) reordered by the reranker's scores (stable on
    ties); deeper ones, kept only so that metrics at a larger k exist, stay below in the model's order."""
    groups = [(q, [es.doc_texts[int(d)] for d in row[:top] if d >= 0]) for q, row in zip(es.query_texts, idx)]
    scores = reranker.score_groups(groups, desc=f"reranking with {reranker.spec}")
    out = idx.copy()
    for qi, (row, s) in enumerate(zip(idx, scores)):
        cand = row[:top][row[:top] >= 0]
        out[qi, :len(cand)] = cand[np.argsort(-s, kind="stable")]
    return out


def set_result(es: EvalSet, idx: np.ndarray, ks: list[int]) -> dict:
    run = run_from_ranking(es.query_ids, es.doc_ids, idx)
    per_q = per_query(run, es.qrels, es.query_ids, 10 if 10 in ks else max(ks))
    per_q["top"] = [[es.doc_ids[int(d)] for d in row[:3] if d >= 0] for row in idx]
    return {"metrics": evaluate(run, es.qrels, ks), "per_query": per_q}


def added_latency(reranker, es: EvalSet, idx: np.ndarray, top: int, samples: int) -> dict:
    """ms to rerank one question's candidates, measured as the models' own latency is (:func:`kit.bench.latency
    .measure`: warm-up first, a nonce on the question so no cache answers, the CPU share of other work sampled);
    remembered per reranker and depth unless the machine was busy, so a cached re-run loads nothing."""
    from .latency import measure

    memo_path = cache_dir() / "rerank_perf.json"
    memo = read_json(memo_path) if memo_path.exists() else {}
    key = f"{reranker.namespace}:{top}"
    if key in memo:
        return {**memo[key], "remembered": True}
    cands = {q: [es.doc_texts[int(d)] for d in row[:top] if d >= 0] for q, row in zip(es.query_texts, idx)}
    out = measure(lambda text: reranker.score(text, cands[text.rsplit(" ", 1)[0]]), list(cands), samples)
    if not out["busy"]:
        memo[key] = out
        write_json(memo_path, memo)
    return out


def rerank_cost(reranker, es: EvalSet, idx: np.ndarray, tokens_this_run: int) -> dict:
    """What the reranker was paid this run, and per 1,000 questions at this depth (the provider's own token
    count of a request, DashScope's formula: question tokens x passages + passage tokens)."""
    price = reranker.price_per_1m_tokens
    count = getattr(reranker, "request_cost_tokens", None)
    per_q = None
    if count is not None:
        per_q = float(np.mean([count(q, [es.doc_texts[int(d)] for d in row if d >= 0])
                               for q, row in zip(es.query_texts, idx)]))
    return {"price_per_1m_tokens_usd": price, "tokens_this_run": tokens_this_run,
            "usd_this_run": None if price is None else round(tokens_this_run * price / 1e6, 6),
            "tokens_per_query": None if per_q is None else round(per_q, 1),
            "usd_per_1k_queries": 0.0 if price == 0 else
            (None if price is None or per_q is None else round(per_q * 1000 * price / 1e6, 6))}


def reranked_row(model: str, entry: dict, rr_name: str, reranker, sets: dict, rankings: dict, opts) -> dict:
    ks = sorted(set(int(k) for k in opts.k))
    tokens0 = reranker.stats["tokens"]
    row = {key: entry.get(key) for key in ("dimensions", "max_input_tokens", "index_bytes_per_1m_chunks",
                                           "price_per_1m_tokens_usd", "cost_full_embed_usd_estimate",
                                           "throughput_texts_per_s")}
    top = min(int(opts.rerank_top), int(rankings["domain"].shape[1]))
    row.update({"spec": f"{entry['spec']} → {reranker.spec}", "kind": "rerank", "model": model, "reranker": rr_name,
                "rerank_top": top})
    for set_name, es in sets.items():
        t0 = time.perf_counter()
        row[set_name] = set_result(es, rerank_ranking(reranker, es, rankings[set_name], top), ks)
        row[set_name]["seconds"] = round(time.perf_counter() - t0, 2)
    if opts.latency_samples:
        rr_latency = added_latency(reranker, sets["domain"], rankings["domain"], top, opts.latency_samples)
        base = (entry.get("latency") or {}).get("p50_ms")
        row["latency"] = {"p50_ms": round(base + rr_latency["p50_ms"], 2) if base is not None else None,
                          "rerank_p50_ms": rr_latency["p50_ms"], "rerank_p95_ms": rr_latency["p95_ms"],
                          "busy": rr_latency["busy"], "cpu_busy_share": rr_latency["cpu_busy_share"],
                          "tries": rr_latency["tries"]}
    row["rerank_cost"] = rerank_cost(reranker, sets["domain"], rankings["domain"][:, :top],
                                     reranker.stats["tokens"] - tokens0)
    return row


def rerank_models(results: dict, models: dict[str, str], sets: dict, opts, sparse_search) -> dict:
    """Every model x every reranker of ``opts.rerankers``: the reranked rows, keyed "<model> + <reranker>"."""
    rerankers = {name: make_reranker(spec, own, progress=opts.progress)
                 for name, (spec, own) in parse_rerankers(opts.rerankers).items()}
    ks = sorted(set(int(k) for k in opts.k))
    out = {}
    for model, spec in models.items():
        depth = {s: min(len(es.doc_ids), max(int(opts.rerank_top), max(ks))) for s, es in sets.items()}
        rankings = {s: model_ranking(model, spec, es, depth[s], opts, sparse_search) for s, es in sets.items()}
        for rr_name, reranker in rerankers.items():
            note(f"[kit bench] {model} + {rr_name}: top {min(opts.rerank_top, depth['domain'])} reordered by "
                  f"{reranker.spec}")
            out[f"{model} + {rr_name}"] = reranked_row(model, results["models"][model], rr_name, reranker, sets,
                                                       rankings, opts)
    results["rerank_summary"] = summarise(results, out)
    return out


def summarise(results: dict, rows: dict) -> dict:
    """Each reranked row against its own model on the same questions (paired bootstrap), and the sentences of
    the recommendation: a reranker is recommended only where the interval excludes zero."""
    metric = main_metric(results)
    kind = {"real": "real ", "generated": "generated "}.get((results.get("eval_info") or {}).get("questions"), "")
    gains = {}
    for name, row in rows.items():
        base = results["models"][row["model"]]["domain"]["per_query"].get(metric)
        other = row["domain"]["per_query"].get(metric)
        if base and other and len(base) == len(other):
            gains[name] = paired_bootstrap(base, other)
    significant = [n for n, g in gains.items() if g["diff_lo"] > 0]
    best = max(significant, key=lambda n: metric_of(rows[n], "domain", metric) or 0) if significant else None
    return {"metric": metric, "gains": gains, "recommended": best, "text": summary_lines(rows, gains, best, metric, kind)}


def _cost_text(row: dict) -> str:
    usd = row["rerank_cost"]["usd_per_1k_queries"]
    price = "cost unknown" if usd is None else ("no per-token fee" if usd == 0 else f"${usd:.4f} per 1,000 questions")
    ms = (row.get("latency") or {}).get("rerank_p50_ms")
    return (f"+{ms:.0f} ms per question (p50), " if ms is not None else "") + price


def summary_lines(rows: dict, gains: dict, best: str | None, metric: str, kind: str) -> list[str]:
    if not gains:
        return []
    m = metric.upper()
    if best is not None:
        g, row = gains[best], rows[best]
        change = (f"{g['diff'] / g['base']:+.1%}, 95% CI {g['diff_lo'] / g['base']:+.1%} to {g['diff_hi'] / g['base']:+.1%}"
                  if g["base"] else   # a model that found nothing: only the absolute change means anything
                  f"{g['diff']:+.3f}, 95% CI {g['diff_lo']:+.3f} to {g['diff_hi']:+.3f}")
        lines = [f"Reranking pays off: {best} {m} {g['base']:.3f} → {g['other']:.3f} over {row['model']} alone "
                 f"({change} over {g['n_questions']} {kind}questions), at {_cost_text(row)}."]
    else:
        name = max(gains, key=lambda n: gains[n]["diff"])
        g = gains[name]
        b = g["base"] or 1.0
        lines = [f"No reranker improves significantly on its model (best: {name}, {m} {g['base']:.3f} → "
                 f"{g['other']:.3f}, {g['diff'] / b:+.1%}, 95% CI {g['diff_lo'] / b:+.1%} to {g['diff_hi'] / b:+.1%} "
                 f"over {g['n_questions']} {kind}questions): retrieve without a reranker, it would only add latency "
                 f"and cost."]
    hurt = [n for n, g in gains.items() if g["diff_hi"] < 0]
    if hurt:
        lines.append(f"Reranking makes these worse than their model alone (interval below zero): {', '.join(hurt)}.")
    return lines


# --------------------------------------------------------------------------------------------- report
def table_models(results: dict) -> dict:
    """The results table's rows: the models, the hybrid rows (kit/bench/hybrid.py), then the reranked rows."""
    return {**results["models"], **(results.get("hybrid") or {}), **(results.get("reranked") or {})}


def rerank_table(results: dict) -> tuple[list[str], list[list[str]]]:
    summary = results.get("rerank_summary") or {}
    metric = summary.get("metric", "mrr@10")
    head = ["model + reranker", "top N", f"{metric.upper()} model", "reranked", "change (95% CI)",
            "added ms p50 / p95", "USD / 1k questions"]
    rows = []
    for name, row in (results.get("reranked") or {}).items():
        g = summary.get("gains", {}).get(name)
        lat = row.get("latency") or {}
        usd = row["rerank_cost"]["usd_per_1k_queries"]
        change = "–" if not g else (f"{g['diff'] / g['base']:+.1%} ({g['diff_lo'] / g['base']:+.1%} to "
                                    f"{g['diff_hi'] / g['base']:+.1%})" if g["base"] else f"{g['diff']:+.3f}")
        rows.append([name, str(row["rerank_top"]), f"{g['base']:.4f}" if g else "–",
                     f"{metric_of(row, 'domain', metric) or 0:.4f}", change,
                     f"{lat.get('rerank_p50_ms', '–')} / {lat.get('rerank_p95_ms', '–')}",
                     "unknown" if usd is None else f"{usd:g}"])
    return head, rows


def rerank_markdown(results: dict) -> list[str]:
    if not results.get("reranked"):
        return []
    head, rows = rerank_table(results)
    return (["", "## 重排 Retrieve and rerank", "", "| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
            + ["| " + " | ".join(r) + " |" for r in rows]
            + ["", "Each model's top N passages reordered by the reranker, on the same questions; the change is the "
               "paired bootstrap over those questions (2,000 resamples). Added latency: one question's N passages "
               "scored, uncached. Self-hosted rerankers show no per-token fee (hardware not included).", ""])


def rerank_html(results: dict) -> str:
    import html

    if not results.get("reranked"):
        return ""
    head, rows = rerank_table(results)
    esc = html.escape
    table = ("<table><thead><tr>" + "".join(f"<th>{esc(h)}</th>" for h in head) + "</tr></thead><tbody>"
             + "".join("<tr>" + "".join(f"<td>{esc(c)}</td>" for c in r) + "</tr>" for r in rows) + "</tbody></table>")
    return (f"<h2>重排 Retrieve and rerank</h2>{table}<p class=\"note\">Each model's top N passages reordered by "
            f"the reranker on the same questions; change: paired bootstrap, 95% interval.</p>")
