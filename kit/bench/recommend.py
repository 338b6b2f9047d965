"""The recommendation, written from the numbers in results.json: best quality, best value, whether fine-tuning
paid off and which tuned model keeps general ability."""
from __future__ import annotations

import re

MAIN = "mrr@10"


def metric_of(entry: dict, set_name: str, metric: str = MAIN):
    return (entry.get(set_name) or {}).get("metrics", {}).get(metric)


def main_metric(results: dict) -> str:
    ks = results.get("options", {}).get("k") or [10]
    return MAIN if 10 in ks else f"mrr@{max(ks)}"


_TUNED_WORDS = ("ft", "sft", "finetune", "finetuned", "tuned", "merged", "merge", "adapter", "cocktail", "lora")


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


def tuned_rows(models: dict, base: str, metric: str) -> tuple[dict, list[str]]:
    """Each tuned candidate against the baseline, on the domain and the general set."""
    ft, lines = {}, []
    b = metric_of(models[base], "domain", metric) or 0.0
    bg = metric_of(models[base], "general", metric)
    for m, e in models.items():
        if m == base or not is_candidate_of(m, e.get("spec", "")):
            continue
        v = metric_of(e, "domain", metric) or 0.0
        rel = (v - b) / b if b else None
        row = {"domain": v, "baseline_domain": b, "relative_domain": rel}
        sentence = f"{m} vs {base}: {metric.upper()} {b:.3f} → {v:.3f}" + (f" ({rel:+.1%})" if rel is not None else "")
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
            and row["relative_general"] > -0.01 and (row["relative_domain"] or 0) > 0.02]
    balanced = max(safe, key=lambda m: ft[m]["domain"]) if safe else None
    if not balanced:
        return None, ["No candidate keeps general ability within 1%: consider a merge (kit merge) or a smaller "
                      "merge weight."]
    pick = ft[balanced]
    share = (pick["domain"] - pick["baseline_domain"]) / (ft[winner]["domain"] - ft[winner]["baseline_domain"])
    return balanced, [f"Balanced choice: {balanced} keeps {share:.0%} of that gain ({pick['relative_domain']:+.1%}) "
                      f"and stays within 1% of {base} on general text ({pick['relative_general']:+.1%})."]


def _paid_off_lines(ft: dict, base: str) -> tuple[str | None, list[str]]:
    winner = max(ft, key=lambda m: ft[m]["domain"])
    r = ft[winner]["relative_domain"]
    if r is None or r <= 0.02:
        return None, [f"Fine-tuning did not pay off on this eval set (best: {winner}, {r:+.1%} over {base}); "
                      f"more or better training questions (e.g. from an LLM) are the next step."]
    keep = ft[winner].get("relative_general")
    tail = "" if keep is None else (f", and it stays within 1% of {base} on general text" if keep > -0.01
                                     else f", but it loses {-keep:.1%} on general text")
    lines = [f"Fine-tuning paid off: {winner} is {r:+.1%} over {base} on your documents{tail}."]
    if keep is not None and keep <= -0.01:
        # The usual way out is a merge (or a milder one): name the best candidate that keeps general ability.
        balanced, more = _balanced_lines(ft, winner, base)
        return balanced, lines + more
    return (winner if keep is not None else None), lines


def recommend(results: dict) -> dict:
    """Best quality, best quality per cost, and whether fine-tuning paid off: sentences plus the numbers."""
    metric = main_metric(results)
    models = results["models"]
    best, value, lines = _best_lines(models, metric)
    base = results.get("baseline")
    ft: dict = {}
    balanced = None
    if base in models:
        ft, more = tuned_rows(models, base, metric)
        lines += more
        if ft:
            balanced, more = _paid_off_lines(ft, base)
            lines += more
    thr = (models[best].get("domain") or {}).get("similarity", {}).get("threshold", {})
    if thr.get("threshold") is not None:
        lines.append(f"For {best}, treat hits scoring below {thr['threshold']:.3f} as likely irrelevant "
                     f"(keeps {thr['tpr']:.0%} of correct passages, rejects {1 - thr['fpr']:.0%} of top-ranked "
                     f"wrong ones).")
    return {"best_quality": best, "best_value": value, "fine_tuning": ft, "balanced": balanced,
            "metric": metric, "text": lines}
