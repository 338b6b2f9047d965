"""Real texts for the encoding tests: cmrc2018 paragraphs (Wikipedia, simplified Chinese), cut short so the tiny
random model encodes them in milliseconds; a slice of stard_dev (real questions, their gold articles) as an eval set."""
from __future__ import annotations

import json
import random

import pytest

from conftest import CMRC, DATA

STARD = DATA / "retrieval" / "stard_dev"


@pytest.fixture(scope="session")
def paragraphs() -> list[str]:
    if not (CMRC / "corpus.jsonl").exists():
        pytest.skip(f"cmrc2018 not found at {CMRC}")
    texts = [json.loads(x)["text"][:120] for x in open(CMRC / "corpus.jsonl", encoding="utf-8")][:90]
    return texts + texts[:3]          # a few duplicates: shards must keep them in place


@pytest.fixture()
def encoder(tiny_bert, tmp_path):
    """fp32 (the engines are compared at fp32), its own cache file."""
    from kit.embed import EmbeddingCache, LocalEncoder

    return LocalEncoder(str(tiny_bert), precision="fp32", batch_size=8, cache=EmbeddingCache(tmp_path / "emb.sqlite"),
                        progress=False)


@pytest.fixture(scope="session")
def stard_eval(tmp_path_factory):
    """40 real questions, their gold articles and 160 other articles, in BEIR layout."""
    if not (STARD / "corpus.jsonl").exists():
        pytest.skip("stard_dev not available")
    d = tmp_path_factory.mktemp("stard_eval")
    qrels: dict[str, list[str]] = {}
    for line in (STARD / "qrels.tsv").read_text(encoding="utf-8").splitlines()[1:]:
        q, doc, rel = line.split("\t")[:3]
        if int(rel) > 0:
            qrels.setdefault(q, []).append(doc)
    queries = [json.loads(x) for x in open(STARD / "queries.jsonl", encoding="utf-8")]
    picked = random.Random(2).sample([q for q in queries if q["_id"] in qrels], 40)
    gold = {doc for q in picked for doc in qrels[q["_id"]]}
    corpus = [json.loads(x) for x in open(STARD / "corpus.jsonl", encoding="utf-8")]
    others = random.Random(2).sample([c for c in corpus if c["_id"] not in gold], 160)
    rows = [c for c in corpus if c["_id"] in gold] + others
    (d / "corpus.jsonl").write_text("".join(json.dumps(c, ensure_ascii=False) + "\n" for c in rows), encoding="utf-8")
    (d / "queries.jsonl").write_text("".join(json.dumps(q, ensure_ascii=False) + "\n" for q in picked),
                                     encoding="utf-8")
    (d / "qrels.tsv").write_text("query-id\tcorpus-id\tscore\n" + "".join(
        f"{q['_id']}\t{doc}\t1\n" for q in picked for doc in qrels[q["_id"]]), encoding="utf-8")
    return d
