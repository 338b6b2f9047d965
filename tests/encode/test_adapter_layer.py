"""The query adapter through the encoding layer (issue 25): `kit adapter` with --engine/--shard-dir encodes the
training corpus of a local model into shard files (the same vectors, so the same adapter), and `kit bench` of
``adapter:DIR`` reads its base's corpus vectors from the layer (the same rankings as in process), on real questions
(a stard_dev slice)."""
from __future__ import annotations

import json

import numpy as np
import pytest


@pytest.fixture()
def adapter_data(stard_eval, tmp_path):
    """The slice as the adapter reads it: prep's corpus.jsonl and training rows (each real question, its articles)."""
    corpus = [json.loads(x) for x in open(stard_eval / "corpus.jsonl", encoding="utf-8")]
    with open(tmp_path / "corpus.jsonl", "w", encoding="utf-8") as f:
        for c in corpus:
            f.write(json.dumps({"id": c["_id"], "doc": c["title"][:4], "title": c["title"], "text": c["text"]},
                               ensure_ascii=False) + "\n")
    qrels: dict[str, list[str]] = {}
    for line in (stard_eval / "qrels.tsv").read_text(encoding="utf-8").splitlines()[1:]:
        q, doc, _ = line.split("\t")
        qrels.setdefault(q, []).append(doc)
    text = {c["_id"]: c["text"] for c in corpus}
    with open(tmp_path / "train.jsonl", "w", encoding="utf-8") as f:
        for q in map(json.loads, open(stard_eval / "queries.jsonl", encoding="utf-8")):
            f.write(json.dumps({"query": q["text"], "pos": [text[d] for d in qrels[q["_id"]]],
                                "pos_ids": qrels[q["_id"]], "neg": []}, ensure_ascii=False) + "\n")
    return tmp_path / "train.jsonl", tmp_path / "corpus.jsonl", len(corpus)


def _train(model, data, out, encode=None):
    from kit.adapter import AdapterOptions, train_adapter
    from kit.providers import make_provider

    train, corpus, _ = data
    provider = None if encode is not None else make_provider(f"local:{model}", precision="fp32", progress=False)
    return train_adapter(f"local:{model}", train, corpus, out, AdapterOptions(epochs=3, seed=0), provider=provider,
                         encode=encode)


def test_the_adapter_trains_on_the_layers_vectors_as_on_in_process_ones(tiny_bert, adapter_data, tmp_path,
                                                                        monkeypatch):
    from kit.encode import EncodeOptions

    monkeypatch.setenv("KIT_CACHE_DIR", str(tmp_path / "kitcache"))
    ref = _train(tiny_bert, adapter_data, tmp_path / "ref")
    got = _train(tiny_bert, adapter_data, tmp_path / "layer",
                 EncodeOptions(shard_size=37, shard_dir=str(tmp_path / "sh")))
    manifest = json.loads(next((tmp_path / "sh").glob("passage-*/manifest.json")).read_text())
    assert manifest["total"] == adapter_data[2] and manifest["shard_size"] == 37     # the corpus went through it
    a, b = np.load(tmp_path / "ref" / "adapter.npz"), np.load(tmp_path / "layer" / "adapter.npz")
    assert sorted(a) == sorted(b) and all(np.abs(a[k] - b[k]).max() <= 1e-3 for k in a)
    assert got.heldout_mrr10_adapter == pytest.approx(ref.heldout_mrr10_adapter, abs=1e-3)


def test_bench_reads_an_adapters_corpus_vectors_from_the_layer(tiny_bert, adapter_data, stard_eval, tmp_path,
                                                               monkeypatch):
    from kit.bench.stage import BenchOptions, bench
    from kit.encode import EncodeOptions

    monkeypatch.setenv("KIT_CACHE_DIR", str(tmp_path / "kitcache"))
    _train(tiny_bert, adapter_data, tmp_path / "adapter")
    opts = BenchOptions(k=[1, 10], latency_samples=0, hybrid=[], precision="fp32", progress=False)
    models = {"a": f"adapter:{tmp_path / 'adapter'}"}
    ref = bench(str(stard_eval), models, str(tmp_path / "ref"), opts)
    got = bench(str(stard_eval), models, str(tmp_path / "layer"), opts,
                encode=EncodeOptions(shard_size=50, shard_dir=str(tmp_path / "sh")))
    ra, rb = ref["models"]["a"]["domain"], got["models"]["a"]["domain"]
    assert ra["per_query"]["top"] == rb["per_query"]["top"] and ra["metrics"] == rb["metrics"]
    assert list((tmp_path / "sh").glob("passage-*/shard-00003.json"))     # 200 articles, 50 a shard
