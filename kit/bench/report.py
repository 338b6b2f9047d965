"""report.md and report.html (charts as embedded PNGs, so the report is one file) and the recommendation,
written from the numbers in results.json."""
from __future__ import annotations

import base64
import html
import io
from pathlib import Path

from ..io import write_text

MAIN = "mrr@10"


def _metric(entry: dict, set_name: str, metric: str = MAIN):
    return (entry.get(set_name) or {}).get("metrics", {}).get(metric)


def _main_metric(results: dict) -> str:
    ks = results.get("options", {}).get("k") or [10]
    return MAIN if 10 in ks else f"mrr@{max(ks)}"


_TUNED_WORDS = ("ft", "sft", "finetune", "finetuned", "tuned", "merged", "merge", "adapter", "cocktail", "lora")


def _is_candidate_of(name: str, spec: str) -> bool:
    """Is this model a fine-tuned / merged / adapted variant (judged against the baseline)? Whole words of
    the name or the spec's last path part, so "ft-bge" and "bge_merged" count but "microsoft" does not."""
    import re
    last = spec.split(":", 1)[-1].rstrip("/").split("/")[-1]
    words = set(re.split(r"[^a-z0-9]+", f"{name} {last}".lower()))
    return bool(words & set(_TUNED_WORDS)) or "fine-tun" in name.lower() or "微调" in name \
        or "合并" in name or spec.startswith("adapter:")


def recommend(results: dict) -> dict:
    """Best quality, best quality per cost, and whether fine-tuning paid off: sentences plus the numbers."""
    metric = _main_metric(results)
    models = results["models"]
    lines: list[str] = []
    ranked = sorted(models, key=lambda m: -(_metric(models[m], "domain", metric) or 0))
    best = ranked[0]
    best_v = _metric(models[best], "domain", metric)
    lines.append(f"Best quality on your documents: {best} ({metric.upper()} {best_v:.3f}).")
    paid = [m for m in models if (models[m].get("price_per_1m_tokens_usd") or 0) > 0]
    value = None
    if paid:
        value = max(paid, key=lambda m: (_metric(models[m], "domain", metric) or 0)
                    / models[m]["price_per_1m_tokens_usd"])
        lines.append(f"Best quality per cost among paid APIs: {value} ({metric.upper()} "
                     f"{_metric(models[value], 'domain', metric):.3f} at ${models[value]['price_per_1m_tokens_usd']:g} "
                     f"per 1M tokens).")
    free = [m for m in models if models[m].get("price_per_1m_tokens_usd") == 0]
    if free:
        best_free = max(free, key=lambda m: _metric(models[m], "domain", metric) or 0)
        lines.append(f"Best self-hosted model (no per-token fee; hosting cost not included): {best_free} "
                     f"({metric.upper()} {_metric(models[best_free], 'domain', metric):.3f}).")
    base = results.get("baseline")
    ft: dict = {}
    balanced = None   # the best tuned candidate that stays within 1% of the baseline on the general set
    if base in models:
        b = _metric(models[base], "domain", metric) or 0.0
        bg = _metric(models[base], "general", metric)
        for m, e in models.items():
            if m == base or not _is_candidate_of(m, e.get("spec", "")):
                continue
            v = _metric(e, "domain", metric) or 0.0
            rel = (v - b) / b if b else None
            row = {"domain": v, "baseline_domain": b, "relative_domain": rel}
            sentence = f"{m} vs {base}: {metric.upper()} {b:.3f} → {v:.3f}"
            if rel is not None:
                sentence += f" ({rel:+.1%})"
            g = _metric(e, "general", metric)
            if g is not None and bg:
                row.update({"general": g, "baseline_general": bg, "relative_general": (g - bg) / bg})
                sentence += f"; on the general set {bg:.3f} → {g:.3f} ({(g - bg) / bg:+.1%})"
            ft[m] = row
            lines.append(sentence + ".")
        if ft:
            winner = max(ft, key=lambda m: ft[m]["domain"])
            r = ft[winner]["relative_domain"]
            if r is not None and r > 0.02:
                keep = ft[winner].get("relative_general")
                tail = "" if keep is None else (f", and it stays within 1% of {base} on general text" if keep > -0.01
                                                 else f", but it loses {-keep:.1%} on general text")
                lines.append(f"Fine-tuning paid off: {winner} is {r:+.1%} over {base} on your documents{tail}.")
                if keep is not None and keep <= -0.01:
                    # The usual way out is a merge (or a milder one): name the best candidate that keeps general
                    # ability, and how much of the gain it keeps.
                    safe = [m for m, row in ft.items() if row.get("relative_general") is not None
                            and row["relative_general"] > -0.01 and (row["relative_domain"] or 0) > 0.02]
                    balanced = max(safe, key=lambda m: ft[m]["domain"]) if safe else None
                    if balanced:
                        pick = ft[balanced]
                        share = (pick["domain"] - pick["baseline_domain"]) / \
                            (ft[winner]["domain"] - ft[winner]["baseline_domain"])
                        lines.append(f"Balanced choice: {balanced} keeps {share:.0%} of that gain "
                                     f"({pick['relative_domain']:+.1%}) and stays within 1% of {base} on general "
                                     f"text ({pick['relative_general']:+.1%}).")
                    else:
                        lines.append("No candidate keeps general ability within 1%: consider a merge "
                                     "(kit merge) or a smaller merge weight.")
                elif keep is not None:
                    balanced = winner
            else:
                lines.append(f"Fine-tuning did not pay off on this eval set (best: {winner}, {r:+.1%} over {base}); "
                             f"more or better training questions (e.g. from an LLM) are the next step.")
    thr = (models[best].get("domain") or {}).get("similarity", {}).get("threshold", {})
    if thr.get("threshold") is not None:
        lines.append(f"For {best}, treat hits scoring below {thr['threshold']:.3f} as likely irrelevant "
                     f"(keeps {thr['tpr']:.0%} of correct passages, rejects {1 - thr['fpr']:.0%} of top-ranked "
                     f"wrong ones).")
    return {"best_quality": best, "best_value": value, "fine_tuning": ft, "balanced": balanced,
            "metric": metric, "text": lines}


# --------------------------------------------------------------------------------------------- charts
def _png(fig) -> str:
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=90, bbox_inches="tight")
    import matplotlib.pyplot as plt
    plt.close(fig)
    return "data:image/png;base64," + base64.b64encode(buf.getvalue()).decode("ascii")


def chart_labels(names: list[str]) -> list[str]:
    """Chart labels: the names themselves when ASCII or when a CJK font is installed; otherwise (Chinese names,
    no font: they would render as boxes) the name's ASCII part, or "model N" (N = its row in the results
    table) when that is empty or ambiguous."""
    if all(n.isascii() for n in names) or _has_cjk_font():
        return list(names)
    out = []
    for i, n in enumerate(names):
        ascii_part = "".join(c for c in n if c.isascii()).strip(" -_")
        out.append(n if n.isascii() else (ascii_part or f"model {i + 1}"))
    dupes = {x for x in out if out.count(x) > 1}
    return [f"model {i + 1}" if x in dupes and not n.isascii() else x for i, (n, x) in enumerate(zip(names, out))]


_CJK_FONT: bool | None = None


def _has_cjk_font() -> bool:
    global _CJK_FONT
    if _CJK_FONT is None:
        from matplotlib import font_manager
        names = {f.name for f in font_manager.fontManager.ttflist}
        cjk = [n for n in names if any(k in n for k in ("CJK", "Noto Sans SC", "WenQuanYi", "SimHei", "Hei"))]
        _CJK_FONT = bool(cjk)
        if cjk:
            import matplotlib
            matplotlib.rcParams["font.sans-serif"] = cjk + list(matplotlib.rcParams["font.sans-serif"])
    return _CJK_FONT


def charts(results: dict) -> dict[str, str]:
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    import numpy as np

    metric = _main_metric(results)
    models = results["models"]
    names = list(models)
    labels = chart_labels(names)
    out: dict[str, str] = {}

    k = metric.split("@")[1]
    shown = [metric, f"recall@{k}", f"ndcg@{k}"]
    fig, ax = plt.subplots(figsize=(max(6, 1.3 * len(names)), 3.6))
    width = 0.8 / (len(shown) + (1 if "general" in results["sets"] else 0))
    x = np.arange(len(names))
    for i, m in enumerate(shown):
        ax.bar(x + i * width, [_metric(models[n], "domain", m) or 0 for n in names], width, label=f"{m} (domain)")
    if "general" in results["sets"]:
        ax.bar(x + len(shown) * width, [_metric(models[n], "general", metric) or 0 for n in names], width,
               label=f"{metric} (general)", hatch="//")
    ax.set_xticks(x + width * (len(shown) - 1) / 2, labels, rotation=20, ha="right")
    ax.set_ylim(0, 1)
    ax.legend(fontsize=8, loc="upper left", bbox_to_anchor=(1.01, 1))  # outside: bars reach 1.0
    ax.set_title("Retrieval quality per model")
    out["metrics"] = _png(fig)

    fig, ax = plt.subplots(figsize=(5.5, 3.6))
    for n, lab in zip(names, labels):
        price = models[n].get("price_per_1m_tokens_usd")
        y = _metric(models[n], "domain", metric) or 0
        ax.scatter(price if price is not None else 0, y, s=50)
        ax.annotate(lab, (price if price is not None else 0, y), fontsize=8, xytext=(4, 4), textcoords="offset points")
    ax.set_xlabel("price per 1M tokens (USD; self-hosted = 0)")
    ax.set_ylabel(f"{metric} (domain)")
    ax.set_title("Quality vs cost")
    out["cost"] = _png(fig)

    fig, ax = plt.subplots(figsize=(5.5, 3.6))
    for n, lab in zip(names, labels):
        lat = (models[n].get("latency") or {}).get("p50_ms")
        if lat is None:
            continue
        y = _metric(models[n], "domain", metric) or 0
        ax.scatter(lat, y, s=50)
        ax.annotate(lab, (lat, y), fontsize=8, xytext=(4, 4), textcoords="offset points")
    ax.set_xlabel("single-query encode latency p50 (ms)")
    ax.set_ylabel(f"{metric} (domain)")
    ax.set_title("Quality vs latency")
    out["latency"] = _png(fig)

    cols = min(3, len(names))
    rows = (len(names) + cols - 1) // cols
    fig, axes = plt.subplots(rows, cols, figsize=(4.2 * cols, 2.8 * rows), squeeze=False)
    for ax, n, lab in zip(axes.flat, names, labels):
        sim = (models[n].get("domain") or {}).get("similarity", {})
        pos, neg = sim.get("pos_sample") or [], sim.get("neg_sample") or []
        if pos or neg:
            lo, hi = min(pos + neg), max(pos + neg)
            bins = np.linspace(lo, hi if hi > lo else lo + 1, 30)
            ax.hist(neg, bins=bins, alpha=0.6, density=True, label="top wrong passages")
            ax.hist(pos, bins=bins, alpha=0.6, density=True, label="gold passages")
            t = (sim.get("threshold") or {}).get("threshold")
            if t is not None:
                ax.axvline(t, color="k", linestyle="--", linewidth=1)
        ax.set_title(lab, fontsize=9)
        ax.tick_params(labelsize=7)
    for ax in list(axes.flat)[len(names):]:
        ax.axis("off")
    axes.flat[0].legend(fontsize=7)
    fig.suptitle("Similarity of gold vs hard-negative passages (dashed: suggested threshold)", fontsize=10)
    out["similarity"] = _png(fig)
    return out


# --------------------------------------------------------------------------------------------- tables
def _table_rows(results: dict) -> tuple[list[str], list[list[str]]]:
    metric = _main_metric(results)
    k = metric.split("@")[1]
    general = "general" in results["sets"]
    head = ["model", "spec", f"MRR@{k}", f"recall@{k}", f"nDCG@{k}", f"hit@{k}"] + \
           ([f"general MRR@{k}"] if general else []) + \
           ["latency p50 ms", "texts/s", "dims", "max input tokens", "index GB / 1M chunks", "USD / 1M tokens",
            "USD to embed this eval", "threshold"]
    rows = []
    labels = dict(zip(results["models"], chart_labels(list(results["models"]))))
    for n, e in results["models"].items():
        m = (e.get("domain") or {}).get("metrics", {})
        thr = (e.get("domain") or {}).get("similarity", {}).get("threshold", {}).get("threshold")
        price = e.get("price_per_1m_tokens_usd")
        rows.append([n if labels[n] == n else f"{n} (chart: {labels[n]})", e["spec"], f"{m.get(metric, 0):.4f}",
                     f"{m.get(f'recall@{k}', 0):.4f}",
                     f"{m.get(f'ndcg@{k}', 0):.4f}", f"{m.get(f'hit@{k}', 0):.4f}"]
                    + ([f"{_metric(e, 'general', metric):.4f}"] if general else [])
                    + [f"{(e.get('latency') or {}).get('p50_ms', '–')}", f"{e.get('throughput_texts_per_s') or '–'}",
                       f"{e.get('dimensions') or '–'}", f"{e.get('max_input_tokens') or '–'}",
                       f"{e['index_bytes_per_1m_chunks'] / 1e9:.2f}" if e.get("index_bytes_per_1m_chunks") else "–",
                       "unknown" if price is None else f"{price:g}", _usd(e.get("cost_full_embed_usd_estimate")),
                       "–" if thr is None else f"{thr:.3f}"])
    return head, rows


def _usd(v) -> str:
    return "–" if v is None else ("0" if v == 0 else f"{v:.4f}")


def to_markdown(results: dict) -> str:
    head, rows = _table_rows(results)
    sets = results["sets"]
    out = [f"# {results['title']}", "",
           f"Created {results['created']}. Domain eval: `{sets['domain']['path']}` "
           f"({sets['domain']['queries']} queries, {sets['domain']['corpus']} passages)."
           + (f" General check: `{sets['general']['path']}` ({sets['general']['queries']} queries, "
              f"{sets['general']['corpus']} passages)." if "general" in sets else ""), "",
           "## 推荐 Recommendation", ""]
    out += [f"- {line}" for line in results["recommendation"]["text"]]
    out += ["", "## 结果 Results", "", "| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    out += ["| " + " | ".join(r) + " |" for r in rows]
    out += ["", "Metrics: pytrec_eval (nDCG, recall, MAP) and hit@k / MRR@k computed on the same rankings; "
            "exact search (faiss IndexFlatIP). Threshold: the score maximising TPR − FPR between gold passages and "
            "the top-ranked wrong ones. Prices from configs/prices.yaml; self-hosted models show 0 (hardware not "
            "included).", ""]
    return "\n".join(out)


def to_html(results: dict, images: dict[str, str]) -> str:
    head, rows = _table_rows(results)
    esc = html.escape
    recs = "".join(f"<li>{esc(t)}</li>" for t in results["recommendation"]["text"])
    table = ("<table><thead><tr>" + "".join(f"<th>{esc(h)}</th>" for h in head) + "</tr></thead><tbody>"
             + "".join("<tr>" + "".join(f"<td>{esc(c)}</td>" for c in r) + "</tr>" for r in rows) + "</tbody></table>")
    imgs = "".join(f'<figure><img alt="{esc(k)}" src="{v}"/></figure>' for k, v in images.items())
    sets = results["sets"]
    meta = (f"Domain eval: {esc(sets['domain']['path'])} ({sets['domain']['queries']} queries, "
            f"{sets['domain']['corpus']} passages)")
    if "general" in sets:
        meta += f"; general check: {esc(sets['general']['path'])} ({sets['general']['queries']} queries)"
    # The inline script records whether every chart decoded, so a headless browser test can check it.
    return f"""<!doctype html>
<html lang="zh"><head><meta charset="utf-8"><title>{esc(results['title'])}</title>
<style>body{{font-family:system-ui,"Noto Sans CJK SC",sans-serif;margin:2em;max-width:1200px;color:#222}}
table{{border-collapse:collapse;font-size:13px}}td,th{{border:1px solid #ccc;padding:4px 8px;text-align:right}}
td:first-child,th:first-child,td:nth-child(2){{text-align:left}}figure{{display:inline-block;margin:8px}}
img{{max-width:100%}}.rec{{background:#f3f8ff;border-left:4px solid #36c;padding:8px 16px}}</style></head>
<body data-images-ok="pending">
<h1>{esc(results['title'])}</h1><p>Created {esc(results['created'])}. {meta}.</p>
<h2>推荐 Recommendation</h2><div class="rec"><ul>{recs}</ul></div>
<h2>结果 Results</h2>{table}
<h2>图表 Charts</h2>{imgs}
<p style="font-size:12px;color:#666">Metrics from pytrec_eval (nDCG, recall, MAP) and hit@k / MRR@k on the same
rankings; exact inner-product search. Prices from configs/prices.yaml; self-hosted models show 0.</p>
<script>window.addEventListener('load',function(){{var im=document.images,ok=0;for(var i=0;i<im.length;i++)
{{if(im[i].complete&&im[i].naturalWidth>0)ok++;}}document.body.setAttribute('data-images-ok',ok+'/'+im.length);}});</script>
</body></html>
"""


def write_report(results: dict, out_dir) -> None:
    out_dir = Path(out_dir)
    write_text(out_dir / "report.md", to_markdown(results))
    write_text(out_dir / "report.html", to_html(results, charts(results)))
