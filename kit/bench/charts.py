"""The report's charts as embedded PNGs (so the report is one file): quality per model, quality vs cost and
vs latency, similarity distributions of gold vs hard-negative passages."""
from __future__ import annotations

import base64
import io

from .recommend import main_metric, metric_of


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
    if all(n.isascii() for n in names) or has_cjk_font():
        return list(names)
    out = []
    for i, n in enumerate(names):
        ascii_part = "".join(c for c in n if c.isascii()).strip(" -_")
        out.append(n if n.isascii() else (ascii_part or f"model {i + 1}"))
    dupes = {x for x in out if out.count(x) > 1}
    return [f"model {i + 1}" if x in dupes and not n.isascii() else x for i, (n, x) in enumerate(zip(names, out))]


_CJK_FONT: list[bool] = []


def has_cjk_font() -> bool:
    if not _CJK_FONT:
        from matplotlib import font_manager
        names = {f.name for f in font_manager.fontManager.ttflist}
        cjk = [n for n in names if any(k in n for k in ("CJK", "Noto Sans SC", "WenQuanYi", "SimHei", "Hei"))]
        _CJK_FONT.append(bool(cjk))
        if cjk:
            import matplotlib
            matplotlib.rcParams["font.sans-serif"] = cjk + list(matplotlib.rcParams["font.sans-serif"])
    return _CJK_FONT[0]


def _quality_chart(results: dict, names: list[str], labels: list[str], metric: str) -> str:
    import matplotlib.pyplot as plt
    import numpy as np

    models = results["models"]
    k = metric.split("@")[1]
    shown = [metric, f"recall@{k}", f"ndcg@{k}"]
    fig, ax = plt.subplots(figsize=(max(6, 1.3 * len(names)), 3.6))
    width = 0.8 / (len(shown) + (1 if "general" in results["sets"] else 0))
    x = np.arange(len(names))
    for i, m in enumerate(shown):
        ax.bar(x + i * width, [metric_of(models[n], "domain", m) or 0 for n in names], width, label=f"{m} (domain)")
    if "general" in results["sets"]:
        ax.bar(x + len(shown) * width, [metric_of(models[n], "general", metric) or 0 for n in names], width,
               label=f"{metric} (general)", hatch="//")
    ax.set_xticks(x + width * (len(shown) - 1) / 2, labels, rotation=20, ha="right")
    ax.set_ylim(0, 1)
    ax.legend(fontsize=8, loc="upper left", bbox_to_anchor=(1.01, 1))  # outside: bars reach 1.0
    ax.set_title("Retrieval quality per model")
    return _png(fig)


def _scatter_chart(results: dict, names, labels, metric: str, x_of, xlabel: str, title: str) -> str:
    import matplotlib.pyplot as plt

    models = results["models"]
    fig, ax = plt.subplots(figsize=(5.5, 3.6))
    for n, lab in zip(names, labels):
        x = x_of(models[n])
        if x is None:
            continue
        y = metric_of(models[n], "domain", metric) or 0
        ax.scatter(x, y, s=50)
        ax.annotate(lab, (x, y), fontsize=8, xytext=(4, 4), textcoords="offset points")
    ax.set_xlabel(xlabel)
    ax.set_ylabel(f"{metric} (domain)")
    ax.set_title(title)
    return _png(fig)


def _similarity_chart(results: dict, names, labels) -> str:
    import matplotlib.pyplot as plt
    import numpy as np

    cols = min(3, len(names))
    rows = (len(names) + cols - 1) // cols
    fig, axes = plt.subplots(rows, cols, figsize=(4.2 * cols, 2.8 * rows), squeeze=False)
    for ax, n, lab in zip(axes.flat, names, labels):
        sim = (results["models"][n].get("domain") or {}).get("similarity", {})
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
    return _png(fig)


def charts(results: dict) -> dict[str, str]:
    import matplotlib
    matplotlib.use("Agg")

    metric = main_metric(results)
    names = list(results["models"])
    labels = chart_labels(names)
    price = (lambda e: e.get("price_per_1m_tokens_usd") if e.get("price_per_1m_tokens_usd") is not None else 0)
    return {
        "metrics": _quality_chart(results, names, labels, metric),
        "cost": _scatter_chart(results, names, labels, metric, price,
                               "price per 1M tokens (USD; self-hosted = 0)", "Quality vs cost"),
        "latency": _scatter_chart(results, names, labels, metric, lambda e: (e.get("latency") or {}).get("p50_ms"),
                                  "single-query encode latency p50 (ms)", "Quality vs latency"),
        "similarity": _similarity_chart(results, names, labels),
    }
