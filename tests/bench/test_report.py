"""The recommendation is written from the numbers; report.md / report.html render them; the HTML opens in a real
headless browser with every chart decoded."""
import base64
import re
import shutil
import subprocess

import numpy as np
import pytest

from kit.bench import charts
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


def test_report_html_in_headless_chromium(tmp_path, monkeypatch):
    monkeypatch.setattr(charts, "has_cjk_font", lambda: False)  # the fallback path, whatever fonts the machine has
    res = _results(names=("基座", "微调"))
    write_report(res, tmp_path)
    page = (tmp_path / "report.html").read_text(encoding="utf-8")
    srcs = re.findall(r'<img alt="([a-z]+)" src="data:image/png;base64,([^"]+)"', page)
    assert [a for a, _ in srcs] == ["metrics", "cost", "latency", "similarity"]
    assert all(base64.b64decode(b)[:8] == b"\x89PNG\r\n\x1a\n" for _, b in srcs)
    assert "基座 (chart: model 1)" in page and "Fine-tuning paid off" in page

    chromium = shutil.which("chromium") or shutil.which("chromium-browser")
    if not chromium:
        pytest.skip("chromium not installed (Debian package `chromium`; .ci installs it)")
    flags = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
             "--disable-background-networking", "--disable-component-update", "--disable-sync",
             f"--user-data-dir={tmp_path / 'chrome'}", "--virtual-time-budget=5000"]
    url = (tmp_path / "report.html").as_uri()
    dom = subprocess.run([chromium, *flags, "--dump-dom", url], capture_output=True, text=True, timeout=120).stdout
    # the page's own script counts images that finished loading with a non-zero natural width
    assert 'data-images-ok="4/4"' in dom
    shot = tmp_path / "report.png"
    subprocess.run([chromium, *flags, f"--screenshot={shot}", "--window-size=1280,3000", url],
                   capture_output=True, timeout=120)
    assert shot.exists() and shot.stat().st_size > 20_000
    assert shot.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_broken_image_is_detected_by_the_page_check(tmp_path):
    """The in-page check must be able to fail: a report with one undecodable chart reports 3/4."""
    chromium = shutil.which("chromium") or shutil.which("chromium-browser")
    if not chromium:
        pytest.skip("chromium not installed (Debian package `chromium`; .ci installs it)")
    res = _results()
    images = report.charts(res)
    images["cost"] = "data:image/png;base64," + base64.b64encode(b"not a png").decode()
    (tmp_path / "bad.html").write_text(report.to_html(res, images), encoding="utf-8")
    dom = subprocess.run([chromium, "--headless", "--no-sandbox", "--disable-gpu", "--no-first-run",
                          "--disable-background-networking", "--disable-component-update", "--disable-sync",
                          f"--user-data-dir={tmp_path / 'chrome'}", "--virtual-time-budget=5000", "--dump-dom",
                          (tmp_path / "bad.html").as_uri()], capture_output=True, text=True, timeout=120).stdout
    assert 'data-images-ok="3/4"' in dom
