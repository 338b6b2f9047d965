"""The recommendation is written from the numbers; report.md / report.html render them; the HTML opens in a real
headless browser with every chart decoded."""
import base64
import os
import re
import shutil
import subprocess
import sys
import time
import warnings

import numpy as np
import pytest

from kit.bench import charts, latency, report
from kit.bench.recommend import is_candidate_of
from kit.bench.report import chart_labels, recommend, to_markdown, write_report


def _entry(spec, domain, general, price=0.0, seed=0, latency=20.0):
    rng = np.random.default_rng(seed)
    pos = np.clip(rng.normal(0.85, 0.04, 200), 0, 1).round(4).tolist()
    neg = np.clip(rng.normal(0.75, 0.04, 400), 0, 1).round(4).tolist()
    sim = {"positives": {"n": 200}, "hard_negatives": {"n": 400},
           "threshold": {"threshold": 0.8, "tpr": 0.9, "fpr": 0.2, "method": "youden_j"},
           "pos_sample": pos, "neg_sample": neg}
    metrics = {f"{m}@{k}": domain for m in ("mrr", "recall", "ndcg", "hit", "map") for k in (1, 10)}
    return {"spec": spec, "kind": "dense", "price_per_1m_tokens_usd": price, "dimensions": 384, "max_input_tokens": 512,
            "index_bytes_per_1m_chunks": 384 * 4 * 10**6, "latency": {"p50_ms": latency, "p95_ms": latency * 1.5},
            "throughput_texts_per_s": 30.0, "cost_full_embed_usd_estimate": 0.0 if not price else 0.0123,
            "domain": {"metrics": metrics, "similarity": sim},
            "general": {"metrics": {k: general for k in metrics}}}


def _results(base=(0.41, 0.900), ft=(0.55, 0.897), names=("base", "ft")):
    models = {names[0]: _entry("local:BAAI/bge-large-zh-v1.5", *base, seed=1),
              names[1]: _entry("local:work/models/finetuned", *ft, seed=2, latency=21.0),
              "ada": _entry("openai:text-embedding-ada-002", 0.45, 0.92, price=0.10, seed=3, latency=180.0),
              "ali": _entry("dashscope:text-embedding-v3", 0.47, 0.91, price=0.07, seed=4, latency=150.0)}
    res = {"title": "t", "created": "2026-01-01 00:00:00", "options": {"k": [1, 10]}, "baseline": names[0],
           "sets": {"domain": {"path": "eval", "queries": 100, "corpus": 500},
                    "general": {"path": "cmrc", "queries": 50, "corpus": 1104}},
           "models": models}
    res["recommendation"] = recommend(res)
    return res


def test_recommendation_when_fine_tuning_pays_off():
    rec = recommend(_results())
    text = "\n".join(rec["text"])
    assert rec["best_quality"] == "ft"
    # quality per dollar: ali 0.47 / 0.07 beats ada 0.45 / 0.10
    assert rec["best_value"] == "ali"
    # (0.55 - 0.41) / 0.41 = +34.1%; general (0.897 - 0.900) / 0.900 = -0.3%
    assert "ft vs base: MRR@10 0.410 → 0.550 (+34.1%); on the general set 0.900 → 0.897 (-0.3%)" in text
    assert "Fine-tuning paid off: ft is +34.1% over base" in text and "within 1%" in text
    assert rec["fine_tuning"]["ft"]["relative_domain"] == pytest.approx(0.14 / 0.41)
    assert "ada vs base" not in text  # API models are not fine-tuning candidates


def test_recommendation_when_fine_tuning_hurts_general_or_fails():
    forgets = recommend(_results(ft=(0.55, 0.80)))
    assert "loses 11.1% on general text" in "\n".join(forgets["text"])
    assert "No candidate keeps general ability within 1%: consider a merge" in "\n".join(forgets["text"])
    assert forgets["balanced"] is None
    res = _results(ft=(0.55, 0.80))
    res["models"]["merged"] = _entry("local:work/models/merged-0.5", 0.52, 0.899, seed=5)
    res["models"]["merged-0.3"] = _entry("local:work/models/merged-0.3", 0.47, 0.905, seed=6)
    merged = recommend(res)
    # (0.52 - 0.41) / (0.55 - 0.41) = 79% of the gain; (0.899 - 0.9) / 0.9 = -0.1% on the general set
    assert "Balanced choice: merged keeps 79% of that gain (+26.8%) and stays within 1% of base on general text " \
           "(-0.1%)." in merged["text"]
    assert merged["balanced"] == "merged"
    res["models"]["merged"] = _entry("local:work/models/merged-0.5", 0.52, 0.900, seed=5)  # exactly level
    assert recommend(res)["balanced"] == "merged"
    assert recommend(_results())["balanced"] == "ft"
    worse = recommend(_results(ft=(0.40, 0.90)))
    assert worse["best_quality"] == "ali"
    assert "Fine-tuning did not pay off on this eval set (best: ft, -2.4% over base)" in "\n".join(worse["text"])


def test_fine_tuned_models_recognised_by_name_or_spec():
    assert is_candidate_of("ft", "local:x")
    assert is_candidate_of("bge_merged", "local:x")
    assert is_candidate_of("mine", "local:work/models/bge-finetuned")
    assert is_candidate_of("微调", "local:x")
    assert is_candidate_of("q", "adapter:work/adapter")
    assert not is_candidate_of("microsoft-e5", "local:intfloat/multilingual-e5-small")
    assert not is_candidate_of("bge", "local:BAAI/bge-large-zh-v1.5")


def test_chinese_names_fall_back_to_ascii_labels_without_cjk_font(monkeypatch):
    monkeypatch.setattr(charts, "has_cjk_font", lambda: False)
    assert chart_labels(["base", "ft"]) == ["base", "ft"]
    assert chart_labels(["基座", "微调-ft", "合并", "bm25"]) == ["model 1", "ft", "model 3", "bm25"]
    assert chart_labels(["模型a", "模型a"]) == ["model 1", "model 2"]  # never two charts with one label
    monkeypatch.setattr(charts, "has_cjk_font", lambda: True)
    assert chart_labels(["基座"]) == ["基座"]


def test_markdown_has_every_model_and_the_numbers():
    md = to_markdown(_results())
    assert "## 推荐 Recommendation" in md and "## 结果 Results" in md
    rows = [line for line in md.splitlines() if line.startswith("| ") and "spec" not in line]
    assert [r.split(" | ")[0][2:] for r in rows] == ["base", "ft", "ada", "ali"]
    assert "| 0.5500 |" in next(r for r in rows if r.startswith("| ft "))
    assert "| 0.1 | 0.0123 |" in next(r for r in rows if r.startswith("| ada "))
    assert "| 384 | 512 | 1.54 |" in rows[0]  # dimensions, max input tokens, index GB per 1M chunks


CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
needs_chromium = pytest.mark.skipif(not CHROMIUM, reason="chromium not installed (Debian package `chromium`; "
                                                         ".ci/run installs it)")


def open_in_chromium(page, tmp_path, screenshot=None) -> dict:
    """Load ``page`` in headless Chromium: the DOM after scripts ran, and every console message the page made
    (Chromium logs them to stderr as CONSOLE lines with --enable-logging)."""
    flags = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
             "--disable-background-networking", "--disable-component-update", "--disable-sync",
             f"--user-data-dir={tmp_path / 'chrome'}", "--virtual-time-budget=5000", "--enable-logging=stderr",
             "--v=0"]
    r = subprocess.run([CHROMIUM, *flags, "--dump-dom", page.as_uri()], capture_output=True, text=True, timeout=120)
    console = [ln for ln in r.stderr.splitlines() if ":CONSOLE" in ln]
    if screenshot:
        subprocess.run([CHROMIUM, *flags[:-2], f"--screenshot={screenshot}", "--window-size=1280,3000",
                        page.as_uri()], capture_output=True, timeout=120)
    images = re.search(r'data-images-ok="([^"]*)"', r.stdout)
    errors = re.search(r'data-errors="([^"]*)"', r.stdout)
    return {"dom": r.stdout, "console": console, "images": images and images.group(1),
            "errors": errors and errors.group(1)}


def test_report_html_in_headless_chromium(tmp_path, monkeypatch):
    monkeypatch.setattr(charts, "has_cjk_font", lambda: False)  # the fallback path, whatever fonts the machine has
    res = _results(names=("基座", "微调"))
    write_report(res, tmp_path)
    page = (tmp_path / "report.html").read_text(encoding="utf-8")
    srcs = re.findall(r'<img alt="([a-z]+)" src="data:image/png;base64,([^"]+)"', page)
    assert [a for a, _ in srcs] == ["metrics", "cost", "latency", "similarity"]
    assert all(base64.b64decode(b)[:8] == b"\x89PNG\r\n\x1a\n" for _, b in srcs)
    assert "基座 (chart: model 1)" in page and "Fine-tuning paid off" in page
    assert "apt-get install fonts-noto-cjk" in page   # says how to get Chinese labels
    if not CHROMIUM:
        pytest.skip("chromium not installed (Debian package `chromium`; .ci/run installs it)")
    shot = tmp_path / "report.png"
    seen = open_in_chromium(tmp_path / "report.html", tmp_path, screenshot=shot)
    assert seen["images"] == "4/4"          # every chart decoded with a non-zero size
    assert seen["errors"] == "0" and seen["console"] == [], seen["console"]
    assert shot.exists() and shot.stat().st_size > 20_000 and shot.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


@needs_chromium
def test_the_page_check_can_fail(tmp_path):
    """A broken chart and a script error are both caught by the same check."""
    res = _results()
    images = report.charts(res)
    images["cost"] = "data:image/png;base64," + base64.b64encode(b"not a png").decode()
    html = report.to_html(res, images)
    (tmp_path / "bad.html").write_text(html, encoding="utf-8")
    seen = open_in_chromium(tmp_path / "bad.html", tmp_path)
    assert seen["images"] == "3/4" and seen["errors"] == "1"
    (tmp_path / "js.html").write_text(html.replace("</body>", "<script>noSuchFunction()</script></body>"),
                                      encoding="utf-8")
    seen = open_in_chromium(tmp_path / "js.html", tmp_path)
    assert any("noSuchFunction" in c for c in seen["console"])


def test_no_cost_chart_when_every_model_is_self_hosted():
    res = _results()
    for n in ("ada", "ali"):
        res["models"][n]["price_per_1m_tokens_usd"] = 0.0
    assert set(report.charts(res)) == {"metrics", "latency", "similarity"}
    assert "every model with a known price is self-hosted" in to_markdown(res)
    res["models"]["ada"]["price_per_1m_tokens_usd"] = None
    res["models"]["ali"]["price_per_1m_tokens_usd"] = None
    for n in ("base", "ft"):
        res["models"][n]["price_per_1m_tokens_usd"] = None
    assert "no model has a known price" in to_markdown(res)
    for n in ("ft", "ada", "ali"):
        res["models"][n].pop("latency")
    assert "latency" not in report.charts(res)   # one timed model: no scatter of one point


def _overlaps(fig) -> list[tuple[str, str]]:
    fig.canvas.draw()
    renderer = fig.canvas.get_renderer()
    texts = [t for t in fig.axes[0].texts if t.get_text()]
    boxes = [(t.get_text(), t.get_window_extent(renderer)) for t in texts]
    return [(a, b) for i, (a, ba) in enumerate(boxes) for b, bb in boxes[i + 1:] if ba.overlaps(bb)]


def test_point_labels_do_not_overlap():
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    pts = [{"x": 20 + 0.1 * i, "y": 0.5 + 0.001 * i, "label": f"model-{i}-merged", "xerr": None, "flag": False}
           for i in range(5)] + [{"x": 180, "y": 0.45, "label": "ada", "xerr": (150, 260), "flag": True}]
    naive, ax = plt.subplots(figsize=(6.0, 3.9))   # what the chart did before: labels at their points
    for p in pts:
        ax.scatter(p["x"], p["y"])
        ax.text(p["x"], p["y"], p["label"], fontsize=8)
    assert _overlaps(naive)                         # the check sees overlap when there is some
    fig = charts.scatter_figure(pts, "latency (ms)", "MRR@10", "t")
    assert _overlaps(fig) == []
    assert any("(busy CPU)" in t.get_text() for t in fig.axes[0].texts)
    plt.close("all")


def test_cjk_font_found_and_used_for_chinese_labels():
    from matplotlib import font_manager
    if not any("CJK" in p for p in font_manager.findSystemFonts()):
        pytest.skip("no CJK font on this machine (apt-get install fonts-noto-cjk; .ci/run installs it)")
    charts._CJK_FONT.clear()
    assert charts.has_cjk_font()
    assert chart_labels(["基座", "微调"]) == ["基座", "微调"]
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        fig = charts.scatter_figure([{"x": 1, "y": 0.5, "label": "基座", "xerr": None, "flag": False},
                                     {"x": 2, "y": 0.6, "label": "微调模型", "xerr": None, "flag": False}],
                                    "延迟 (ms)", "MRR@10", "质量与延迟")
        fig.canvas.draw()
    assert not [w for w in caught if "missing from" in str(w.message)]   # no glyph drawn as a box


# ------------------------------------------------------------------------------------------ latency
def _spin(seconds):
    end = time.perf_counter() + seconds
    while time.perf_counter() < end:
        pass


def test_latency_warms_up_and_reports_the_spread():
    calls = []

    def encode(text):
        calls.append(text)
        _spin(0.05 if len(calls) <= 2 else 0.002)   # the first calls are slow (model load)

    out = latency.measure(encode, ["问题"], repeats=6, probe=lambda: 0.0)
    assert len(calls) == 8 and len(set(calls)) == 8   # 2 warm-up + 6 timed, each text unique (no cache hit)
    assert out["samples"] == 6 and out["warmup"] == 2 and out["tries"] == 1 and out["busy"] is False
    assert out["p5_ms"] <= out["p50_ms"] <= out["p95_ms"] <= out["max_ms"] < 40   # the slow warm-up is not counted


def test_latency_on_a_busy_machine_is_measured_again_then_flagged():
    """Real load: one spinning process per core; the probe is the real CPU sampler."""
    burners = [subprocess.Popen([sys.executable, "-c", "while True: pass"]) for _ in range(os.cpu_count() or 1)]
    try:
        time.sleep(0.5)
        out = latency.measure(lambda t: _spin(0.001), ["q"], repeats=3, pause=0.1)
    finally:
        for b in burners:
            b.kill()
            b.wait()
    assert out["busy"] is True and out["tries"] == latency.TRIES and out["cpu_busy_share"] > latency.BUSY_SHARE
    res = _results()
    res["models"]["ft"]["latency"] = {**out, "p50_ms": 21.0}
    md = to_markdown(res)
    assert "⚠ CPU" in md and "measured while other work kept the CPU busy" in md


# ------------------------------------------------------------------------------- layout (issue 20)
def _with_examples(res: dict) -> dict:
    a, b = res["baseline"], "ft" if "ft" in res["models"] else list(res["models"])[1]
    res["examples"] = {"models": [a, b], "rows": [
        {"question": "试用期最长多久？", "winner": b,
         "gold": "劳动合同期限三个月以上不满一年的，试用期不得超过一个月；劳动合同期限一年以上不满三年的，试用期不得超过二个月。",
         a: "用人单位与劳动者约定服务期的，不影响按照正常的工资调整机制提高劳动者在服务期期间的劳动报酬。",
         b: "劳动合同期限三个月以上不满一年的，试用期不得超过一个月。"}]}
    return res


def test_example_passages_are_left_aligned(tmp_path):
    """Chinese passages right-aligned were hard to read: every cell of the examples table starts at the left edge
    (text-align start/left), while the results table keeps its numbers right-aligned."""
    res = _with_examples(_results())
    page = report.to_html(res, {})
    assert "<table class='ex'>" in page
    css = re.search(r"<style>(.*?)</style>", page, re.S).group(1)
    rules = {sel.strip(): body for sels, body in re.findall(r"([^{}]+)\{([^{}]*)\}", css) for sel in sels.split(",")}
    assert re.search(r"text-align:\s*(start|left)", rules["table.ex td"])
    assert re.search(r"text-align:\s*(start|left)", rules["table.ex th"])
    assert "text-align:right" in rules["td"]   # numbers elsewhere stay right-aligned
    if not CHROMIUM:
        pytest.skip("chromium not installed (Debian package `chromium`; .ci/run installs it)")
    # what the browser computes, cell by cell (the rule must also win over td:first-child / td:nth-child(2))
    probe = ("<script>window.addEventListener('load',function(){var a=[],r=[];"
             "document.querySelectorAll('table.ex td').forEach(function(c){a.push(getComputedStyle(c).textAlign);});"
             "document.querySelectorAll('table:not(.ex) td:nth-child(3)').forEach(function(c)"
             "{r.push(getComputedStyle(c).textAlign);});"
             "document.body.setAttribute('data-ex-align',a.join(' '));"
             "document.body.setAttribute('data-num-align',r.join(' '));});</script></body>")
    (tmp_path / "r.html").write_text(page.replace("</body>", probe), encoding="utf-8")
    dom = open_in_chromium(tmp_path / "r.html", tmp_path)["dom"]
    ex = re.search(r'data-ex-align="([^"]*)"', dom).group(1).split()
    assert len(ex) == 5 and set(ex) <= {"start", "left"}, ex
    assert set(re.search(r'data-num-align="([^"]*)"', dom).group(1).split()) == {"right"}


def _rows_of(fig) -> dict[int, list]:
    rows: dict[int, list] = {}
    for ax in fig.axes:
        if ax.axison:
            rows.setdefault(ax.get_subplotspec().rowspan.start, []).append(ax)
    return rows


@pytest.mark.parametrize("names", [("base", "ft"), ("基座", "微调")])
def test_histogram_titles_clear_the_row_above(monkeypatch, names):
    """The similarity histograms' titles sat on the tick labels of the row above: drawn as in the report, no title
    (with a 2 pt margin) overlaps a tick label of the row above, nor the figure's title."""
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    figs = []
    monkeypatch.setattr(charts, "_png", lambda fig: figs.append(fig) or "data:image/png;base64,")
    res = _results(names=names)
    report.charts(res)
    fig = next(f for f in figs if f._suptitle is not None)   # the similarity histograms: 4 models, 2 rows of 3
    fig.canvas.draw()
    renderer = fig.canvas.get_renderer()
    rows = _rows_of(fig)
    assert sorted(rows) == [0, 1] and [len(rows[0]), len(rows[1])] == [3, 1]
    margin = 2 * fig.dpi / 72
    clashes = []
    for r in sorted(rows)[1:]:
        above = [t.get_window_extent(renderer) for ax in rows[r - 1]
                 for t in ax.get_xticklabels() + ax.get_yticklabels() if t.get_visible() and t.get_text()]
        assert above
        for ax in rows[r]:
            box = ax.title.get_window_extent(renderer).padded(margin)
            clashes += [(ax.get_title(), r) for b in above if box.overlaps(b)]
    sup = fig._suptitle.get_window_extent(renderer)
    clashes += [(ax.get_title(), "suptitle") for ax in rows[0]
                if ax.title.get_window_extent(renderer).padded(margin).overlaps(sup)]
    plt.close("all")
    assert clashes == []
