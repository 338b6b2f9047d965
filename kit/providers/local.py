"""``local:NAME_OR_PATH``: a model on this machine, through :class:`kit.embed.LocalEncoder` and its cache."""
from __future__ import annotations

import numpy as np

from ..embed import LocalEncoder
from .base import Provider


class LocalProvider(Provider):
    def __init__(self, name_or_path: str, *, cache=None, batch_size: int | None = None, precision: str = "auto",
                 max_length: int | None = None, progress: bool = True):
        super().__init__()
        self.encoder = LocalEncoder(name_or_path, precision=precision, batch_size=batch_size or 32,
                                    max_length=max_length, cache=cache, progress=progress)
        self.spec = f"local:{name_or_path}"
        self.kind = "dense"
        self.model_name = self.spec
        self.max_input_tokens = self.encoder.max_length
        self.dim = None  # known after the first encode (loading weights just for .dim would defeat the cache)

    @property
    def cache_key(self) -> str:
        return self.encoder.namespace

    def _after(self, vecs):
        self.account(self.encoder.last_stats)
        if vecs.size:
            self.dim = int(vecs.shape[1])
        return vecs

    def encode_queries(self, texts: list[str]) -> np.ndarray:
        return self._after(self.encoder.encode_queries(texts))

    def encode_corpus(self, texts: list[str]) -> np.ndarray:
        return self._after(self.encoder.encode_passages(texts))
