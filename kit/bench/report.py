"""report.md and report.html, written from the numbers in results.json (charts: :mod:`kit.bench.charts`,
the recommendation: :mod:`kit.bench.recommend`); the measured numbers also go into the model card of every
model folder the kit wrote (:mod:`kit.modelcard`)."""
from __future__ import annotations

import html
from pathlib import Path

from ..io import KitError, write_text
from .charts import CJK_FONT_HINT, chart_labels, charts, omitted_charts
from .evidence import examples_html, examples_markdown
from .recommend import main_metric, metric_of, recommend, versus_baseline
from .hybrid import hybrid_html, hybrid_markdown
from .rerank import rerank_html, rerank_markdown, table_models
from ..logs import note

__all__ = ["chart_labels", "charts", "recommend", "to_html", "to_markdown", "write_report"]


# --------------------------------------------------------------------------------------------- tables
def _table_rows(results: dict) -> tuple[list[str], list[list[str]]]:
    metric = main_metric(results)
    k = metric.split("@")[1]
    general = "general" in results["sets"]
    head = ["model", "spec", f"MRR@{k}", f"vs {results.get('baseline')} (95% CI)", f"recall@{k}", f"nDCG@{k}",
            f"hit@{k}"] + \
           ([f"general MRR@{k}"] if general else []) + \
           ["latency ms p50 (p5–p95)", "texts/s", "dims", "max input tokens", "index GB / 1M chunks", "USD / 1M tokens",
            "USD to embed this eval", "threshold"]
    rows = []
    models = table_models(results)   # the models, then their reranked rows (kit/bench/rerank.py)
    labels = dict(zip(models, chart_labels(list(models))))
    for n, e in models.items():
        m = (e.get("domain") or {}).get("metrics", {})
        thr = (e.get("domain") or {}).get("similarity", {}).get("threshold", {}).get("threshold")
        price = e.get("price_per_1m_tokens_usd")
        rows.append([n if labels[n] == n else f"{n} (chart: {labels[n]})", e["spec"], f"{m.get(metric, 0):.4f}",
                     versus_baseline(results, n) if n in results["models"] or n in (results.get("hybrid") or {})
                     else "–", f"{m.get(f'recall@{k}', 0):.4f}",
                     f"{m.get(f'ndcg@{k}', 0):.4f}", f"{m.get(f'hit@{k}', 0):.4f}"]
                    + ([f"{metric_of(e, 'general', metric):.4f}"] if general else [])
                    + [_latency(e.get("latency")), f"{e.get('throughput_texts_per_s') or '–'}",
                       f"{e.get('dimensions') or '–'}", f"{e.get('max_input_tokens') or '–'}",
                       f"{e['index_bytes_per_1m_chunks'] / 1e9:.2f}" if e.get("index_bytes_per_1m_chunks") else "–",
                       "unknown" if price is None else f"{price:g}",
                       ("≈" if e.get("token_count_exact") is False and e.get("cost_full_embed_usd_estimate") else "")
                       + _usd(e.get("cost_full_embed_usd_estimate")),
                       "–" if thr is None else f"{thr:.3f}"])
    return head, rows


def _latency(lat: dict | None) -> str:
    """p50 with its spread; a measurement taken while the CPU was busy says so."""
    if not lat or lat.get("p50_ms") is None:
        return "–"
    text = f"{lat['p50_ms']:g}"
    if lat.get("p5_ms") is not None and lat.get("p95_ms") is not None:
        text += f" ({lat['p5_ms']:g}–{lat['p95_ms']:g})"
    return text + (f" ⚠ CPU {lat.get('cpu_busy_share', 0):.0%} busy" if lat.get("busy") else "")


def notes(results: dict) -> list[str]:
    """What the reader should know about the charts and timings of this report."""
    out = [f"{name}: {what}." for name, what in ((results.get("options") or {}).get("labels") or {}).items()]
    out += [f"Not drawn: {why}." for why in omitted_charts(results).values()]
    names = list(results["models"])
    if chart_labels(names) != names:   # Chinese names drawn in ASCII: no CJK font
        out.append(CJK_FONT_HINT[0].upper() + CJK_FONT_HINT[1:] + ".")
    busy = [n for n, e in results["models"].items() if (e.get("latency") or {}).get("busy")]
    if busy:
        out.append(f"Latency of {', '.join(busy)} was measured while other work kept the CPU busy (after "
                   f"{max(results['models'][n]['latency'].get('tries', 1) for n in busy)} tries): treat it as an "
                   f"upper bound and re-run kit bench on a quiet machine.")
    return out


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
    out += hybrid_markdown(results)
    out += rerank_markdown(results)
    out += [""] + [f"- {n}" for n in notes(results)]
    out += examples_markdown(results)
    out += ["", "Latency: single-query encodes after a warm-up, p50 with the p5–p95 spread. Metrics: pytrec_eval (nDCG, recall, MAP) and hit@k / MRR@k computed on the same rankings; "
            "exact search (faiss IndexFlatIP). Costs marked ≈ count tokens with an estimate (the provider publishes no "
            "tokenizer); OpenAI models are counted exactly with tiktoken. Threshold: the score maximising TPR − FPR between gold passages and "
            "the top-ranked wrong ones. Prices from the kit's model catalogue (kit/data/catalog.yaml); self-hosted models show 0 (hardware not "
            "included).", ""]
    return "\n".join(out)


def to_html(results: dict, images: dict[str, str]) -> str:
    head, rows = _table_rows(results)
    esc = html.escape
    recs = "".join(f"<li>{esc(t)}</li>" for t in results["recommendation"]["text"])
    table = ("<table><thead><tr>" + "".join(f"<th>{esc(h)}</th>" for h in head) + "</tr></thead><tbody>"
             + "".join("<tr>" + "".join(f"<td>{esc(c)}</td>" for c in r) + "</tr>" for r in rows) + "</tbody></table>")
    imgs = "".join(f'<figure><img alt="{esc(k)}" src="{v}"/></figure>' for k, v in images.items())
    imgs += "".join(f'<p class="note">{esc(n)}</p>' for n in notes(results))
    sets = results["sets"]
    meta = (f"Domain eval: {esc(sets['domain']['path'])} ({sets['domain']['queries']} queries, "
            f"{sets['domain']['corpus']} passages)")
    if "general" in sets:
        meta += f"; general check: {esc(sets['general']['path'])} ({sets['general']['queries']} queries)"
    # The inline script records whether every chart decoded, so a headless browser test can check it. Numbers are
    # right-aligned; the example passages (table.ex, Chinese prose) start at the left edge like any text.
    return f"""<!doctype html>
<html lang="zh"><head><meta charset="utf-8"><title>{esc(results['title'])}</title>
<style>body{{font-family:system-ui,"Noto Sans CJK SC",sans-serif;margin:2em;max-width:1200px;color:#222}}
table{{border-collapse:collapse;font-size:13px}}td,th{{border:1px solid #ccc;padding:4px 8px;text-align:right}}
td:first-child,th:first-child,td:nth-child(2){{text-align:left}}figure{{display:inline-block;margin:8px}}
table.ex td,table.ex th{{text-align:start;vertical-align:top;max-width:28em;line-height:1.5}}
img{{max-width:100%}}.rec{{background:#f3f8ff;border-left:4px solid #36c;padding:8px 16px}}
.note{{font-size:13px;color:#7a4b00}}</style>
<script>window.kitErrors=0;window.addEventListener('error',function(){{window.kitErrors++;
document.body&&document.body.setAttribute('data-errors',window.kitErrors);}},true);</script></head>
<body data-images-ok="pending" data-errors="0">
<h1>{esc(results['title'])}</h1><p>Created {esc(results['created'])}. {meta}.</p>
<h2>推荐 Recommendation</h2><div class="rec"><ul>{recs}</ul></div>
<h2>结果 Results</h2>{table}<p class="note">vs baseline: relative difference of the main metric with its 95%
paired-bootstrap interval over the same questions; "ns" = not significant (the interval includes 0).</p>
{hybrid_html(results)}{rerank_html(results)}{examples_html(results)}
<h2>图表 Charts</h2>{imgs}
<p style="font-size:12px;color:#666">Metrics from pytrec_eval (nDCG, recall, MAP) and hit@k / MRR@k on the same
rankings; exact inner-product search. Prices from the kit's model catalogue (kit/data/catalog.yaml); self-hosted models show 0.</p>
<script>window.addEventListener('load',function(){{var im=document.images,ok=0;for(var i=0;i<im.length;i++)
{{if(im[i].complete&&im[i].naturalWidth>0)ok++;}}document.body.setAttribute('data-images-ok',ok+'/'+im.length);}});</script>
</body></html>
"""


def write_report(results: dict, out_dir) -> None:
    from ..modelcard import record_bench

    out_dir = Path(out_dir)
    write_text(out_dir / "report.md", to_markdown(results))
    write_text(out_dir / "report.html", to_html(results, charts(results)))
    try:   # the numbers also go into the model card of each kit-made model folder measured here
        for card in record_bench(results):
            note(f"[kit bench] results added to {card}")
    except KitError as e:   # e.g. a read-only model folder: the report itself is written
        note(f"[kit bench] note: model card not updated: {e}")
