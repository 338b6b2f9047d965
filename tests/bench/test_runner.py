"""`kit bench` end to end on a small real eval set: local + bm25, results, report, and a real browser."""
import json
import shutil
import subprocess

import pytest

from kit.bench.report import recommend
from kit.bench.runner import BenchOptions, bench, load_eval
from conftest import CMRC


@pytest.fixture(scope="module")
def small_eval(tmp_path_factory):
    """80 cmrc2018 paragraphs and their questions, written in FlagEmbedding's custom-eval layout."""
    if not (CMRC / "corpus.jsonl").exists():
        pytest.skip("cmrc2018 not available")
    d = tmp_path_factory.mktemp("eval")
    corpus = [json.loads(x) for x in open(CMRC / "corpus.jsonl", encoding="utf-8")][:80]
    ids = {c["_id"] for c in corpus}
    qrels = [line.rstrip("\n").split("\t") for line in open(CMRC / "qrels.tsv", encoding="utf-8")][1:]
    qrels = [q for q in qrels if q[1] in ids][:60]
    queries = {json.loads(x)["_id"]: json.loads(x)["text"] for x in open(CMRC / "queries.jsonl", encoding="utf-8")}
    with open(d / "corpus.jsonl", "w", encoding="utf-8") as f:
        for c in corpus:
            f.write(json.dumps({"id": c["_id"], "title": c["title"], "text": c["text"]}, ensure_ascii=False) + "\n")
        f.write("{not json\n")  # a bad line is reported, not fatal
    with open(d / "test_queries.jsonl", "w", encoding="utf-8") as f:
        for q, _, _ in qrels:
            f.write(json.dumps({"id": q, "text": queries[q]}, ensure_ascii=False) + "\n")
    with open(d / "test_qrels.jsonl", "w", encoding="utf-8") as f:
        for q, doc, rel in qrels:
            f.write(json.dumps({"qid": q, "docid": doc, "relevance": int(rel)}) + "\n")
    return d


def test_loads_both_layouts(small_eval):
    es = load_eval(small_eval)
    assert len(es.doc_ids) == 80 and len(es.query_ids) == 60
    beir = load_eval(CMRC, max_queries=50)
    assert len(beir.query_ids) == 50 and len(beir.doc_ids) > 1000


def test_bench_local_and_bm25_report_in_browser(small_eval, tiny_bert, zh_e5_path, tmp_path, capsys):
    out = tmp_path / "report"
    models = {"base": f"local:{zh_e5_path}", "tiny": f"local:{tiny_bert}", "bm25": "bm25"}
    res = bench(small_eval, models, out, BenchOptions(latency_samples=3, progress=False, general=str(small_eval)))
    assert "bad line" in capsys.readouterr().err
    m = res["models"]
    # a real encoder beats a random one by far on real questions
    assert m["base"]["domain"]["metrics"]["mrr@10"] > m["tiny"]["domain"]["metrics"]["mrr@10"] + 0.3
    assert m["bm25"]["domain"]["metrics"]["mrr@10"] > 0.5
    assert m["base"]["dimensions"] == 384 and m["base"]["index_bytes_per_1m_chunks"] == 384 * 4 * 10**6
    assert m["base"]["latency"]["p50_ms"] > 0 and m["base"]["price_per_1m_tokens_usd"] == 0
    assert m["base"]["domain"]["similarity"]["threshold"]["threshold"] is not None
    saved = json.loads((out / "results.json").read_text(encoding="utf-8"))
    assert saved["models"].keys() == models.keys() and "recommendation" in saved
    assert "推荐" in (out / "report.md").read_text(encoding="utf-8")
    # the second run is served from the cache: nothing encoded
    res2 = bench(small_eval, {"base": models["base"]}, tmp_path / "r2", BenchOptions(latency_samples=3, progress=False))
    assert res2["models"]["base"]["domain"]["encoded"] == 0

    chromium = shutil.which("chromium") or shutil.which("chromium-browser")
    if not chromium:
        pytest.skip("chromium not installed (.ci/run installs it)")
    flags = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
             "--disable-background-networking", "--disable-component-update", "--disable-sync",
             f"--user-data-dir={tmp_path / 'chrome'}", "--virtual-time-budget=5000"]
    url = (out / "report.html").as_uri()
    dom = subprocess.run([chromium, *flags, "--dump-dom", url], capture_output=True, text=True, timeout=120).stdout
    assert 'data-images-ok="4/4"' in dom
    shot = tmp_path / "report.png"
    subprocess.run([chromium, *flags, f"--screenshot={shot}", "--window-size=1280,2400", url],
                   capture_output=True, timeout=120)
    assert shot.exists() and shot.stat().st_size > 20_000


def _fake_results(ft_domain, ft_general):
    def entry(spec, d, g, price=0.0):
        return {"spec": spec, "price_per_1m_tokens_usd": price,
                "domain": {"metrics": {"mrr@10": d}, "similarity": {"threshold": {"threshold": 0.8, "tpr": 0.9, "fpr": 0.2}}},
                "general": {"metrics": {"mrr@10": g}}}
    return {"options": {"k": [1, 10]}, "baseline": "base", "sets": {"domain": {}, "general": {}},
            "models": {"base": entry("local:b", 0.40, 0.90), "fine-tuned": entry("local:f", ft_domain, ft_general),
                       "ada": entry("openai:text-embedding-ada-002", 0.45, 0.92, 0.10)}}


def test_recommendation_is_written_from_the_numbers():
    good = recommend(_fake_results(0.55, 0.899))
    text = " ".join(good["text"])
    assert good["best_quality"] == "fine-tuned" and good["best_value"] == "ada"
    assert "0.400 → 0.550 (+37.5%)" in text and "Fine-tuning paid off" in text and "within 1%" in text
    bad = recommend(_fake_results(0.39, 0.80))
    assert bad["best_quality"] == "ada" and "did not pay off" in " ".join(bad["text"])
