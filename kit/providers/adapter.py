"""``adapter:DIR``: a trained query map (``kit adapter``) over a base provider; the corpus vectors are the
base's, unchanged. Loading needs numpy only (training lives in :mod:`kit.adapter`)."""
from __future__ import annotations

from pathlib import Path

import numpy as np

from ..io import KitError, read_json
from .base import Provider, normalise

ADAPTER_FILE = "adapter.json"


def adapter_meta(adapter_dir) -> dict:
    path = Path(adapter_dir) / ADAPTER_FILE
    if not path.exists():
        raise KitError(f"{path}: no {ADAPTER_FILE} (train one with `kit adapter`)")
    return read_json(path)


def load_adapter(adapter_dir):
    """A function mapping (n, dim) query embeddings through the saved adapter (numpy, no torch)."""
    d = Path(adapter_dir)
    meta = adapter_meta(d)
    w = np.load(d / meta.get("weights", "adapter.npz"))
    if int(meta.get("hidden", 0)) > 0:
        W1, b1, W2, b2 = w["up.weight"], w["up.bias"], w["down.weight"], w["down.bias"]
        return lambda q: q + np.maximum(q @ W1.T + b1, 0) @ W2.T + b2
    W, b = w["linear.weight"], w["linear.bias"]
    return lambda q: (q @ W.T + b).astype(np.float32)


class AdapterProvider(Provider):
    def __init__(self, adapter_dir: str, base: Provider):
        super().__init__()
        self.base = base
        self.adapter_dir = adapter_dir
        self.apply = load_adapter(adapter_dir)
        self.spec = f"adapter:{adapter_dir}"
        self.kind = "dense"
        self.model_name = base.model_name  # costs are the base model's tokens
        self.max_input_tokens = base.max_input_tokens
        self.dim = base.dim
        self.stats = base.stats  # the tokens paid are the base provider's

    @property
    def cache_key(self) -> str:
        return f"adapter:{self.base.cache_key}:{self.adapter_dir}"

    def __getattr__(self, name):
        if name == "count_tokens" and hasattr(self.base, "count_tokens"):
            return self.base.count_tokens   # an API base's tokens are what the adapter costs
        raise AttributeError(name)

    def encode_queries(self, texts: list[str]) -> np.ndarray:
        return normalise(self.apply(self.base.encode_queries(texts)))

    def encode_corpus(self, texts: list[str]):
        """The base's vectors, unchanged (an array, or shard files when a local base encodes through the layer)."""
        v = self.base.encode_corpus(texts)
        self.dim = self.base.dim
        return v

    def close(self) -> None:
        self.base.close()
