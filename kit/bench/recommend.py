"""The recommendation, written from the numbers in results.json: best quality, best value, whether fine-tuning
paid off and which tuned model keeps general ability."""
from __future__ import annotations

import re

from .metrics import paired_bootstrap

MIN_USEFUL_TPR = 0.8   # a rejection threshold that drops more than 20% of correct passages is not offered
MAIN = "mrr@10"


def metric_of(entry: dict, set_name: str, metric: str = MAIN):
    return (entry.get(set_name) or {}).get("metrics", {}).get(metric)


def main_metric(results: dict) -> str:
    ks = results.get("options", {}).get("k") or [10]
    return MAIN if 10 in ks else f"mrr@{max(ks)}"


_TUNED_WORDS = ("ft", "sft", "finetune", "finetuned", "tuned", "merged", "merge", "adapter", "cocktail", "lora",
                "deployed")


def is_candidate_of(name: str, spec: str) -> bool:
    """Is this model a fine-tuned / merged / adapted variant (judged against the baseline)? Whole words of
    the name or the spec's last path part, so "ft-bge" and "bge_merged" count but "microsoft" does not."""
    last = spec.split(":", 1)[-1].rstrip("/").split("/")[-1]
    words = set(re.split(r"[^a-z0-9]+", f"{name} {last}".lower()))
    return bool(words & set(_TUNED_WORDS)) or "fine-tun" in name.lower() or "微调" in name \
        or "合并" in name or spec.startswith("adapter:")




def _best_lines(models: dict, metric: str) -> tuple[str, str | None, list[str]]:
    """(best model, best value among paid APIs, sentences)."""
    lines: list[str] = []
    ranked = sorted(models, key=lambda m: -(metric_of(models[m], "domain", metric) or 0))
    best = ranked[0]
    lines.append(f"Best quality on your documents: {best} ({metric.upper()} "
                 f"{metric_of(models[best], 'domain', metric):.3f}).")
    paid = [m for m in models if (models[m].get("price_per_1m_tokens_usd") or 0) > 0]
    value = None
    if paid:
        value = max(paid, key=lambda m: (metric_of(models[m], "domain", metric) or 0)
                    / models[m]["price_per_1m_tokens_usd"])
        lines.append(f"Best quality per cost among paid APIs: {value} ({metric.upper()} "
                     f"{metric_of(models[value], 'domain', metric):.3f} at "
                     f"${models[value]['price_per_1m_tokens_usd']:g} per 1M tokens).")
    free = [m for m in models if models[m].get("price_per_1m_tokens_usd") == 0]
    if free:
        best_free = max(free, key=lambda m: metric_of(models[m], "domain", metric) or 0)
        lines.append(f"Best self-hosted model (no per-token fee; hosting cost not included): {best_free} "
                     f"({metric.upper()} {metric_of(models[best_free], 'domain', metric):.3f}).")
    return best, value, lines


def interval(models: dict, base: str, m: str, metric: str) -> dict | None:
    """Paired bootstrap of ``m`` against ``base`` over the same domain questions, when both have per-question
    results."""
    pb = ((models[base].get("domain") or {}).get("per_query") or {}).get(metric)
    pm = ((models[m].get("domain") or {}).get("per_query") or {}).get(metric)
    if not pb or not pm or len(pb) != len(pm):
        return None
    return paired_bootstrap(pb, pm)


def _ci_text(ci: dict, b: float, kind: str) -> str:
    lo, hi = (ci["diff_lo"] / b, ci["diff_hi"] / b) if b else (ci["diff_lo"], ci["diff_hi"])
    return f", 95% CI {lo:+.1%} to {hi:+.1%} over {ci['n_questions']} {kind}questions"


def tuned_rows(models: dict, base: str, metric: str, kind: str = "") -> tuple[dict, list[str]]:
    """Each tuned candidate against the baseline, on the domain (with its paired-bootstrap interval) and the
    general set."""
    ft, lines = {}, []
    b = metric_of(models[base], "domain", metric) or 0.0
    bg = metric_of(models[base], "general", metric)
    for m, e in models.items():
        if m == base or not is_candidate_of(m, e.get("spec", "")):
            continue
        v = metric_of(e, "domain", metric) or 0.0
        rel = (v - b) / b if b else None
        row = {"domain": v, "baseline_domain": b, "relative_domain": rel, "ci": interval(models, base, m, metric)}
        ci = f"{_ci_text(row['ci'], b, kind)}" if row["ci"] else ""
        sentence = f"{m} vs {base}: {metric.upper()} {b:.3f} → {v:.3f}" + (f" ({rel:+.1%}{ci})" if rel is not None else "")
        g = metric_of(e, "general", metric)
        if g is not None and bg:
            row.update({"general": g, "baseline_general": bg, "relative_general": (g - bg) / bg})
            sentence += f"; on the general set {bg:.3f} → {g:.3f} ({(g - bg) / bg:+.1%})"
        ft[m] = row
        lines.append(sentence + ".")
    return ft, lines


def _balanced_lines(ft: dict, winner: str, base: str) -> tuple[str | None, list[str]]:
    """When the best tuned model loses general ability: the best one that keeps it, and its share of the gain."""
    safe = [m for m, row in ft.items() if row.get("relative_general") is not None
            and row["relative_general"] > -0.01 and (row["relative_domain"] or 0) > 0.02 and _significant(row)]
    balanced = max(safe, key=lambda m: ft[m]["domain"]) if safe else None
    if not balanced:
        return None, ["No candidate keeps general ability within 1%: consider a merge (kit merge) or a smaller "
                      "merge weight."]
    pick = ft[balanced]
    share = (pick["domain"] - pick["baseline_domain"]) / (ft[winner]["domain"] - ft[winner]["baseline_domain"])
    return balanced, [f"Balanced choice: {balanced} keeps {share:.0%} of that gain ({pick['relative_domain']:+.1%}) "
                      f"and stays within 1% of {base} on general text ({pick['relative_general']:+.1%})."]


def _significant(row: dict) -> bool:
    """Better than the baseline beyond the noise: the interval excludes zero (rows without per-question results
    fall back to the point estimate, +2%)."""
    if row.get("ci"):
        return row["ci"]["diff_lo"] > 0
    return (row["relative_domain"] or 0) > 0.02


def _paid_off_lines(ft: dict, base: str) -> tuple[str | None, str | None, list[str]]:
    """(recommended tuned model or None, balanced choice or None, sentences). A tuned model is recommended
    only when it is significantly better than the baseline."""
    significant = [m for m, row in ft.items() if _significant(row)]
    best = max(ft, key=lambda m: ft[m]["domain"])
    if not significant:
        r, ci = ft[best]["relative_domain"], ft[best].get("ci")
        if ci:
            b = ft[best]["baseline_domain"] or 1
            return None, None, [
                f"Fine-tuning did not pay off measurably: no tuned model is significantly better than {base} "
                f"(best: {best}, {r:+.1%}, 95% CI {ci['diff_lo'] / b:+.1%} to {ci['diff_hi'] / b:+.1%}); keep "
                f"{base}, or train with better questions (an LLM, or labelled real questions)."]
        return None, None, [f"Fine-tuning did not pay off on this eval set (best: {best}, {r:+.1%} over {base}); "
                            f"more or better training questions (e.g. from an LLM) are the next step."]
    winner = max(significant, key=lambda m: ft[m]["domain"])
    row = ft[winner]
    ci = row.get("ci")
    b = row["baseline_domain"] or 1
    ci_text = f" (95% CI {ci['diff_lo'] / b:+.1%} to {ci['diff_hi'] / b:+.1%})" if ci else ""
    keep = row.get("relative_general")
    tail = "" if keep is None else (f", and it stays within 1% of {base} on general text" if keep > -0.01
                                     else f", but it loses {-keep:.1%} on general text")
    lines = [f"Fine-tuning paid off: {winner} is {row['relative_domain']:+.1%} over {base}{ci_text} on your "
             f"documents{tail}."]
    if keep is not None and keep <= -0.01:
        # The usual way out is a merge (or a milder one): name the best candidate that keeps general ability.
        balanced, more = _balanced_lines(ft, winner, base)
        return balanced or winner, balanced, lines + more
    return winner, (winner if keep is not None else None), lines


def recommend(results: dict) -> dict:
    """Best quality, best quality per cost, and whether fine-tuning paid off: sentences plus the numbers."""
    metric = main_metric(results)
    models = results["models"]
    best, value, lines = _best_lines(models, metric)
    base = results.get("baseline")
    ft: dict = {}
    balanced = recommended = None
    kind = {"real": "real ", "generated": "generated "}.get((results.get("eval_info") or {}).get("questions"), "")
    if base in models:
        ft, more = tuned_rows(models, base, metric, kind)
        lines += more
        if ft:
            recommended, balanced, more = _paid_off_lines(ft, base)
            recommended = recommended or base
            lines += more
    lines += threshold_lines(models, recommended or best)
    hybrid = results.get("hybrid_summary") or {}   # kit/bench/hybrid.py: named only when significantly better
    lines += hybrid.get("text", [])
    lines += (results.get("rerank_summary") or {}).get("text", [])   # kit/bench/rerank.py: significant gains only
    return {"best_quality": best, "best_value": value, "fine_tuning": ft, "balanced": balanced,
            "recommended": recommended, "recommended_search": hybrid.get("recommended") or recommended,
            "metric": metric, "text": provenance_lines(results) + lines}


def threshold_lines(models: dict, name: str) -> list[str]:
    """The suggested similarity cut-off, with its trade-off said plainly; none when it would drop too many
    correct passages to be useful."""
    thr = (models[name].get("domain") or {}).get("similarity", {}).get("threshold", {})
    if thr.get("threshold") is None:
        return []
    if thr["tpr"] < MIN_USEFUL_TPR:
        return [f"No similarity threshold is suggested for {name}: its scores do not separate right from wrong "
                f"passages well enough (the best cut-off would keep only {thr['tpr']:.0%} of correct passages "
                f"while rejecting {1 - thr['fpr']:.0%} of the top-ranked wrong ones)."]
    return [f"For {name}, a similarity cut-off at {thr['threshold']:.3f} keeps {thr['tpr']:.0%} of correct passages "
            f"and rejects {1 - thr['fpr']:.0%} of the top-ranked wrong ones: {1 - thr['tpr']:.0%} of correct "
            f"answers would be lost, {thr['fpr']:.0%} of those wrong passages still pass."]


def provenance_lines(results: dict) -> list[str]:
    """What kind of questions the numbers were measured on, and how much they share the gold passages' words."""
    info = results.get("eval_info") or {}
    n = (results.get("sets") or {}).get("domain", {}).get("queries")
    overlap = info.get("lexical_overlap")
    words = f"; {overlap:.0%} of a question's words appear in its gold passage" if overlap is not None else ""
    if info.get("questions") == "generated":
        gens = ", ".join(sorted(info.get("generators") or {})) or "offline generators"
        return [f"Measured on {n} questions generated from the passages themselves ({gens}){words}. Such questions "
                f"share the passage's wording, which flatters lexical matching: BM25 wins them easily and every "
                f"model looks better than on real questions. Judge on real user questions (split.eval_queries) "
                f"before choosing a model for production."]
    if info.get("questions") == "real":
        return [f"Measured on {n} real user questions (held out: {info.get('holdout', '?')}){words}."]
    return [f"Measured on {n} questions of unknown origin{words}."] if overlap is not None else []


def versus_baseline(results: dict, name: str) -> str:
    """The table's "vs baseline" cell: relative difference with its 95% paired-bootstrap interval."""
    base = results.get("baseline")
    models = {**results["models"], **(results.get("hybrid") or {})}   # hybrid rows compare like models
    if name == base:
        return "baseline"
    if base not in models or name not in models:
        return "–"
    ci = interval(models, base, name, main_metric(results))
    if not ci or not ci["base"]:
        return "–"
    b = ci["base"]
    return f"{ci['diff'] / b:+.1%} [{ci['diff_lo'] / b:+.1%}, {ci['diff_hi'] / b:+.1%}]" + ("" if ci["significant"] else " ns")
