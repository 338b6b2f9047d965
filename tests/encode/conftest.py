"""Real texts for the encoding tests: cmrc2018 paragraphs (Wikipedia, simplified Chinese), cut short so the tiny
random model encodes them in milliseconds."""
from __future__ import annotations

import json

import pytest

from conftest import CMRC


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
