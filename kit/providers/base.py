"""The provider interface: encode queries / corpus to L2-normalised float32, and top-k search."""
from __future__ import annotations

import numpy as np


def new_stats() -> dict:
    return {"tokens": 0, "api_calls": 0, "cached": 0, "encoded": 0, "encode_seconds": 0.0}


# Corpus passages embedded per call: corpora up to this size in one call, as before (bit-identical vectors); larger
# ones a block at a time, so the texts held at once are one block's (the corpus may be a spool: kit/spool.py).
BLOCK = 50_000


def blockwise(texts, encode, block: int | None = None) -> np.ndarray:
    """``encode`` (a list of texts -> their vectors) over ``texts`` a block at a time, into one preallocated
    float32 array (the only full copy)."""
    block = block or BLOCK
    out = None
    for start in range(0, len(texts), block):
        v = encode(list(texts[start:start + block]))
        if out is None:
            out = np.empty((len(texts), v.shape[1]), dtype=np.float32)
        out[start:start + len(v)] = v
    return out


def normalise(x: np.ndarray) -> np.ndarray:
    x = np.asarray(x, dtype=np.float32)
    n = np.linalg.norm(x, axis=1, keepdims=True)
    return x / np.maximum(n, 1e-12)


class Provider:
    """Base class of the embedding providers (local, API, BM25, adapters)."""

    spec: str = ""
    kind: str = "dense"
    dim: int | None = None
    max_input_tokens: int | None = None
    model_name: str = ""

    def __init__(self):
        self.stats = new_stats()

    def encode_queries(self, texts: list[str]) -> np.ndarray:
        raise NotImplementedError

    def encode_corpus(self, texts: list[str]) -> np.ndarray:
        raise NotImplementedError

    @property
    def cache_key(self) -> str:
        """What identifies this provider's vectors (for remembered latency/throughput)."""
        return getattr(self, "namespace", None) or self.spec

    def close(self) -> None:
        """Release what the provider holds beyond its lifetime's use (a local model's shard files)."""

    def account(self, st: dict) -> None:
        self.stats["cached"] += int(st.get("cached", 0))
        self.stats["encoded"] += int(st.get("encoded", 0))
        self.stats["encode_seconds"] += float(st.get("seconds", 0.0))

    def search(self, queries: list[str], corpus: list[str], k: int) -> tuple[np.ndarray, np.ndarray]:
        from ..search import top_k
        return top_k(self.encode_queries(list(queries)), self.encode_corpus(list(corpus)), k)
