"""Mining through the encoding layer: shard files and streamed inputs change nothing in the output; an approximate
index reports the share of the exact window it recovers; --engine/--workers and the encode: section reach it."""
from __future__ import annotations

import json
import sys

import pytest

from conftest import CMRC
from kit.encode import EncodeOptions
from kit.mine import MineOptions, mine
from kit.search import SearchOptions


@pytest.fixture(scope="module")
def small(tmp_path_factory):
    """150 cmrc2018 paragraphs (three to a document, one repeated under another id) and 50 of their questions."""
    if not (CMRC / "corpus.jsonl").exists():
        pytest.skip(f"cmrc2018 not found at {CMRC}")
    d = tmp_path_factory.mktemp("mine-layer")
    paras = [json.loads(x) for x in open(CMRC / "corpus.jsonl", encoding="utf-8")][:150]
    chunks = [{"id": p["_id"], "doc": f"d{i // 3}", "text": p["text"][:150]} for i, p in enumerate(paras)]
    chunks.append({"id": "again", "doc": "x", "text": chunks[10]["text"]})
    text = {c["id"]: c["text"] for c in chunks}
    queries = {json.loads(x)["_id"]: json.loads(x)["text"] for x in open(CMRC / "queries.jsonl", encoding="utf-8")}
    rows = []
    for line in list(open(CMRC / "qrels.tsv", encoding="utf-8"))[1:]:
        qid, pid, _ = line.rstrip("\n").split("\t")
        if pid in text and len(rows) < 50:
            rows.append({"query": queries[qid], "pos": [text[pid]], "neg": []})
    rows.append({"query": "不在语料里的正例", "pos": ["一段不在语料库中的正文。"], "neg": []})
    (d / "corpus.jsonl").write_text("".join(json.dumps(c, ensure_ascii=False) + "\n" for c in chunks), "utf-8")
    (d / "train.jsonl").write_text("".join(json.dumps(r, ensure_ascii=False) + "\n" for r in rows), "utf-8")
    return d / "train.jsonl", d / "corpus.jsonl"


def _opts(model, **kw):
    return MineOptions(model=str(model), range="2-40", negatives=6, precision="fp32", progress=False,
                       print_stats=False, **kw)


def test_shards_and_streaming_leave_the_output_byte_identical(tiny_bert, small, tmp_path):
    train, corpus = small
    a = mine(train, corpus, tmp_path / "a.jsonl", _opts(tiny_bert, cache_path=str(tmp_path / "a.sqlite")))
    b = mine(train, corpus, tmp_path / "b.jsonl", _opts(tiny_bert, cache_path=str(tmp_path / "b.sqlite")),
             EncodeOptions(shard_size=7, shard_dir=str(tmp_path / "shards")))
    assert (tmp_path / "a.jsonl").read_bytes() == (tmp_path / "b.jsonl").read_bytes()
    assert a.stats["embedding"]["passages"]["shards"] == 1 and b.stats["embedding"]["passages"]["shards"] == 22
    assert b.stats["embedding"]["passages"]["encoded"] == 151 + 1 - 1     # 150 unique + 1 extra positive
    assert len(list((tmp_path / "shards").glob("*/manifest.json"))) == 2  # a shard_dir given is kept...
    c = mine(train, corpus, tmp_path / "c.jsonl", _opts(tiny_bert, cache_path=str(tmp_path / "c.sqlite")),
             EncodeOptions(shard_size=7, shard_dir=str(tmp_path / "shards")))
    assert c.stats["embedding"]["passages"]["shards_reused"] == 22         # ...and reused: nothing re-encoded
    assert (tmp_path / "c.jsonl").read_bytes() == (tmp_path / "a.jsonl").read_bytes()


def test_query_vectors_and_search_results_stay_in_files(tiny_bert, small, tmp_path, monkeypatch):
    """Mining reads the query vectors from their shard files and keeps the n_queries x k scores and ids as
    memory-mapped files beside the output (removed afterwards), not as arrays in memory."""
    import numpy as np

    import kit.mine.stage as stage
    from kit.encode.shards import ShardedVectors

    seen = {}
    real = stage.mine_rows

    def spy(inp, vec, ranked, *a, **kw):
        seen.update(queries=vec.queries, scores=ranked[2], ids=ranked[3],
                    work=list(tmp_path.glob(".out.jsonl.ranks-*")))
        yield from real(inp, vec, ranked, *a, **kw)

    monkeypatch.setattr(stage, "mine_rows", spy)
    train, corpus = small
    r = mine(train, corpus, tmp_path / "out.jsonl", _opts(tiny_bert), EncodeOptions(shard_size=7))
    assert isinstance(seen["queries"], ShardedVectors) and r.stats["embedding"]["queries"]["shards"] == 8
    assert isinstance(seen["scores"], np.memmap) and isinstance(seen["ids"], np.memmap)
    assert seen["scores"].shape == (51, 40) and len(seen["work"]) == 1
    assert not list(tmp_path.glob(".out.jsonl.ranks-*"))           # removed after the run


def test_the_score_spread_in_blocks_is_the_standard_deviation():
    import numpy as np

    from kit.mine.stage import score_spread

    s = np.random.default_rng(1).uniform(0.7, 0.99, (1000, 50)).astype(np.float32)
    s[::7, 45:] = -np.inf                                          # an IVF's short rows
    window = s[:, 1:50]
    assert abs(score_spread(s, 1, 50, block=64) - float(window[np.isfinite(window)].std(dtype=np.float64))) < 1e-9
    assert score_spread(np.full((3, 4), -np.inf), 0, 4) == 0.0


def test_hash_collisions_in_the_corpus_bookkeeping_change_nothing(tiny_bert, small, tmp_path, monkeypatch):
    train, corpus = small
    mine(train, corpus, tmp_path / "a.jsonl", _opts(tiny_bert))
    monkeypatch.setattr("kit.mine.corpus._h", lambda text: 7)             # every text and id collides
    mine(train, corpus, tmp_path / "b.jsonl", _opts(tiny_bert))
    assert (tmp_path / "a.jsonl").read_bytes() == (tmp_path / "b.jsonl").read_bytes()


def test_an_approximate_index_reports_its_window_recall(tiny_bert, small, tmp_path, capsys):
    train, corpus = small
    res = mine(train, corpus, tmp_path / "h.jsonl", _opts(tiny_bert, exact_max=50))
    rec = res.stats["index"]["recall"]
    assert res.stats["index"]["type"].startswith("hnsw") and rec["window"] == "2-40"
    assert rec["window_recall"] >= 0.95 and rec["ok"] and rec["queries"] == 51
    low = mine(train, corpus, tmp_path / "i.jsonl", _opts(tiny_bert, exact_max=50),
               search_options=SearchOptions(ann="ivf", nlist=12, nprobe=1))
    rec = low.stats["index"]["recall"]
    assert rec["window_recall"] < 0.95 and not rec["ok"] and "nprobe" in rec["suggest"]
    assert "warning: below 0.95" in capsys.readouterr().err


def _cli():
    from kit.cli import main
    return main


def test_encode_section_and_flags_reach_kit_mine(tiny_bert, small, tmp_path, monkeypatch):
    from click.testing import CliRunner

    train, corpus = small
    cfg = tmp_path / "kit.yaml"
    cfg.write_text("encode:\n  engine: torchrun\n  workers: 0\n", encoding="utf-8")
    base = ["mine", str(train), "--corpus", str(corpus), "--model", str(tiny_bert), "-o", str(tmp_path / "o.jsonl"),
            "--no-progress"]
    r = CliRunner().invoke(_cli(), base + ["--config", str(cfg)])
    assert r.exit_code == 2 and "encode.workers 0: must be >= 1" in r.output
    monkeypatch.setitem(sys.modules, "ray", None)
    r = CliRunner().invoke(_cli(), base + ["--engine", "ray", "--workers", "2"])
    assert r.exit_code == 2 and "pip install 'kit[ray]'" in r.output
    assert len([x for x in r.output.splitlines() if x.startswith("error:")]) == 1
