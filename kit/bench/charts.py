"""The report's charts as embedded PNGs (so the report is one file): quality per model, quality vs cost and
vs latency, similarity distributions of gold vs hard-negative passages.

A chart is drawn only when it can say something: quality vs cost needs two models with a known price, one of
them paid (when every model is self-hosted it would be an empty axis at x = 0), quality vs latency needs two
timed models; :func:`omitted_charts` says what was left out and why, for the report. Point labels are moved
apart with adjustText (overlapping names were unreadable). Chinese labels need a CJK font: one is looked for
among the system's fonts (also when matplotlib's font cache predates its installation); without one, labels
fall back to ASCII and :data:`CJK_FONT_HINT` says how to get one."""
from __future__ import annotations

import base64
import io
from pathlib import Path

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
CJK_FONT_HINT = ("no CJK font found, so Chinese model names are shown in ASCII in the charts; install one "
                 "(Debian/Ubuntu: apt-get install fonts-noto-cjk) and re-run kit bench")
_CJK_NAMES = ("CJK", "Noto Sans SC", "Noto Sans CJK", "Source Han", "WenQuanYi", "SimHei", "Microsoft YaHei",
              "PingFang", "Hei")


def has_cjk_font() -> bool:
    """Is a CJK font available to matplotlib (and made its first sans-serif choice)? Fonts installed after
    matplotlib built its font cache are missing from it, so the system's font files are searched too."""
    if not _CJK_FONT:
        from matplotlib import font_manager

        def found() -> list[str]:
            return sorted({f.name for f in font_manager.fontManager.ttflist if any(k in f.name for k in _CJK_NAMES)})

        cjk = found()
        if not cjk:
            for path in font_manager.findSystemFonts():
                if any(k.replace(" ", "").lower() in Path(path).name.lower() for k in ("CJK", "wqy", "SourceHan")):
                    try:
                        font_manager.fontManager.addfont(path)
                    except (OSError, RuntimeError, ValueError):
                        continue
            cjk = found()
        _CJK_FONT.append(bool(cjk))
        if cjk:
            import matplotlib
            sans = [n for n in cjk if "Sans" in n or "Hei" in n] or cjk
            matplotlib.rcParams["font.sans-serif"] = sans + list(matplotlib.rcParams["font.sans-serif"])
            matplotlib.rcParams["axes.unicode_minus"] = False   # CJK fonts often lack U+2212
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


def scatter_figure(points: list[dict], xlabel: str, ylabel: str, title: str):
    """A quality scatter: ``points`` are {x, y, label, xerr: (lo, hi) or None, flag: bool}. Labels are moved
    apart by adjustText; a flagged point (e.g. latency taken on a busy machine) is drawn hollow and marked."""
    import matplotlib.pyplot as plt
    from adjustText import adjust_text

    fig, ax = plt.subplots(figsize=(6.0, 3.9))
    texts = []
    for p in points:
        if p.get("xerr"):
            lo, hi = p["xerr"]
            ax.errorbar(p["x"], p["y"], xerr=[[max(0.0, p["x"] - lo)], [max(0.0, hi - p["x"])]], fmt="none",
                        ecolor="0.6", capsize=3, linewidth=1)
        ax.scatter(p["x"], p["y"], s=50, facecolors="none" if p.get("flag") else "C0", edgecolors="C0", zorder=3)
        texts.append(ax.text(p["x"], p["y"], p["label"] + (" (busy CPU)" if p.get("flag") else ""), fontsize=8))
    ax.set_xlabel(xlabel)
    ax.set_ylabel(ylabel)
    ax.set_title(title)
    ax.margins(x=0.15, y=0.15)
    if len(texts) > 1:
        adjust_text(texts, ax=ax, x=[p["x"] for p in points], y=[p["y"] for p in points],
                    arrowprops=dict(arrowstyle="-", color="0.5", lw=0.5))
    return fig


def _points(results: dict, names, labels, metric: str, x_of) -> list[dict]:
    out = []
    for n, lab in zip(names, labels):
        x = x_of(results["models"][n])
        if x is not None:
            out.append({"x": x[0], "xerr": x[1], "flag": x[2], "y": metric_of(results["models"][n], "domain", metric)
                        or 0, "label": lab})
    return out


def _price(e: dict):
    p = e.get("price_per_1m_tokens_usd")
    return None if p is None else (float(p), None, False)


def _latency(e: dict):
    lat = e.get("latency") or {}
    if lat.get("p50_ms") is None:
        return None
    spread = (lat["p5_ms"], lat["p95_ms"]) if lat.get("p5_ms") is not None and lat.get("p95_ms") is not None \
        else None
    return (float(lat["p50_ms"]), spread, bool(lat.get("busy")))


def similarity_figure(results: dict, names, labels):
    """Histograms of gold vs hard-negative similarities, one per model, three to a row. Constrained layout keeps
    each title clear of the tick labels of the row above (with the default spacing they touched) and of the
    figure's title."""
    import matplotlib.pyplot as plt
    import numpy as np

    cols = min(3, len(names))
    rows = (len(names) + cols - 1) // cols
    fig, axes = plt.subplots(rows, cols, figsize=(4.2 * cols, 2.8 * rows + 0.4), squeeze=False, layout="constrained")
    fig.get_layout_engine().set(h_pad=0.08, hspace=0.06)   # inches / fraction: a visible gap between the rows
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
    return fig


def _similarity_chart(results: dict, names, labels) -> str:
    return _png(similarity_figure(results, names, labels))


def omitted_charts(results: dict) -> dict[str, str]:
    """{chart: why it is not drawn} for the charts that would be empty or meaningless in this run."""
    models = results["models"].values()
    priced = [_price(e) for e in models if _price(e) is not None]
    timed = [e for e in models if _latency(e) is not None]
    out = {}
    if len(priced) < 2 or not any(p[0] > 0 for p in priced):
        out["cost"] = ("quality vs cost: every model with a known price is self-hosted (no per-token fee), so "
                       "there is no cost axis to compare on" if priced else "quality vs cost: no model has a known price")
    if len(timed) < 2:
        out["latency"] = "quality vs latency: fewer than two models were timed (sparse models such as BM25 are not)"
    return out


def charts(results: dict) -> dict[str, str]:
    import matplotlib
    matplotlib.use("Agg")

    metric = main_metric(results)
    names = list(results["models"])
    labels = chart_labels(names)
    skip = omitted_charts(results)
    out = {"metrics": _quality_chart(results, names, labels, metric)}
    if "cost" not in skip:
        out["cost"] = _png(scatter_figure(_points(results, names, labels, metric, _price),
                                          "price per 1M tokens (USD; self-hosted = 0)", f"{metric} (domain)",
                                          "Quality vs cost"))
    if "latency" not in skip:
        out["latency"] = _png(scatter_figure(_points(results, names, labels, metric, _latency),
                                             "single-query encode latency (ms): p50, bar p5-p95", f"{metric} (domain)",
                                             "Quality vs latency"))
    out["similarity"] = _similarity_chart(results, names, labels)
    return out
