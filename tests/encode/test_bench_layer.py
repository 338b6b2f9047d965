"""`kit bench` through the encoding layer (issue 25): a local model's corpus encoded by the layer's engines into
shard files and searched shard by shard gives the same rankings as the in-process path, on real questions (a
stard_dev slice); the shard folder is released afterwards; a config's `encode:` section reaches bench and drift."""
from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest


def _bench(stard_eval, model, out, encode=None):
    from kit.bench.stage import BenchOptions, bench

    opts = BenchOptions(k=[1, 10], latency_samples=0, hybrid=[], precision="fp32", progress=False)
    return bench(str(stard_eval), {"m": f"local:{model}"}, str(out), opts, encode=encode)


def _same_rankings(a: dict, b: dict) -> None:
    ea, eb = a["models"]["m"]["domain"], b["models"]["m"]["domain"]
    assert ea["per_query"]["top"] == eb["per_query"]["top"]
    assert ea["metrics"] == eb["metrics"]
    assert ea["similarity"]["positives"] == pytest.approx(eb["similarity"]["positives"], abs=1e-5)


def test_bench_through_the_layer_ranks_as_in_process_and_releases_its_shards(stard_eval, tiny_bert, tmp_path,
                                                                              monkeypatch):
    from kit.encode import EncodeOptions

    monkeypatch.setenv("KIT_CACHE_DIR", str(tmp_path / "cache"))
    ref = _bench(stard_eval, tiny_bert, tmp_path / "ref")
    got = _bench(stard_eval, tiny_bert, tmp_path / "layer", EncodeOptions(shard_size=37))   # several shards
    _same_rankings(ref, got)
    assert not any((tmp_path / "cache" / "shards").glob("passage-*"))     # the kit's own shard folder is removed
    kept = _bench(stard_eval, tiny_bert, tmp_path / "kept", EncodeOptions(shard_size=50, shard_dir=str(tmp_path / "sh")))
    _same_rankings(ref, kept)
    manifest = json.loads(next((tmp_path / "sh").glob("passage-*/manifest.json")).read_text())
    passages = sum(1 for _ in open(stard_eval / "corpus.jsonl", encoding="utf-8"))
    assert manifest["total"] == passages and manifest["shard_size"] == 50   # a folder the user gave is kept


@pytest.mark.slow
def test_bench_with_two_torchrun_ranks_ranks_as_in_process(stard_eval, tiny_bert, tmp_path):
    from kit.encode import EncodeOptions

    ref = _bench(stard_eval, tiny_bert, tmp_path / "ref")
    got = _bench(stard_eval, tiny_bert, tmp_path / "tr", EncodeOptions(engine="torchrun", workers=2, shard_size=40))
    _same_rankings(ref, got)


def test_kit_bench_flags_reach_the_layer(stard_eval, tiny_bert, tmp_path):
    out = tmp_path / "report"
    r = subprocess.run([sys.executable, "-m", "kit.cli", "bench", "--eval", str(stard_eval), "-o", str(out),
                        "--model", f"m=local:{tiny_bert}", "--latency-samples", "0", "--precision", "fp32",
                        "--shard-size", "64", "--shard-dir", str(tmp_path / "sh"), "--no-progress"],
                       capture_output=True, text=True, env={**os.environ, "HF_HUB_OFFLINE": "1"}, timeout=600)
    assert r.returncode == 0, r.stderr[-2000:]
    assert list((tmp_path / "sh").glob("passage-*/manifest.json")), r.stderr[-2000:]
    assert json.loads((out / "results.json").read_text())["models"]["m"]["domain"]["metrics"]


def test_drift_embeds_through_the_layer_as_in_process(stard_eval, tiny_bert, tmp_path):
    from kit.drift.documents import diff
    from kit.drift.stage import embed
    from kit.embed import LocalEncoder
    from kit.encode import EncodeOptions

    rows = [json.loads(x) for x in open(stard_eval / "corpus.jsonl", encoding="utf-8")]
    chunks = [{"id": r["_id"], "doc": r["title"][:4], "title": r["title"], "text": r["text"]} for r in rows]
    old, current = chunks[:120], chunks
    d = diff(old, current)
    assert d.new_chunks
    enc = LocalEncoder(str(tiny_bert), precision="fp32", batch_size=8, cache=None, progress=False)
    ref_old, ref_new, _ = embed(enc, old, current, d)
    got_old, got_new, counts = embed(enc, old, current, d, EncodeOptions(shard_size=30, shard_dir=str(tmp_path / "sh")))
    assert abs(got_old - ref_old).max() <= 1e-5 and abs(got_new - ref_new).max() <= 1e-5
    assert counts["encoded"] + counts["cached"] == len(old) + len(d.new_chunks) and list((tmp_path / "sh").glob("passage-*/manifest.json"))
