"""``local:NAME_OR_PATH``: a model on this machine, through :class:`kit.embed.LocalEncoder` and its cache.

With ``encode_options`` (the config's `encode:` section, kit/encode/) the corpus goes through the encoding layer:
local, torchrun or Ray workers write shard files and :meth:`encode_corpus` returns them
(:class:`kit.encode.ShardedVectors`, one shard in memory at a time), which :func:`kit.search.top_k` indexes shard by
shard; :meth:`close` releases them."""
from __future__ import annotations

import numpy as np

from ..embed import LocalEncoder
from . import base
from .base import Provider, blockwise

class LocalProvider(Provider):
    def __init__(self, name_or_path: str, *, cache=None, batch_size: int | None = None, precision: str = "auto",
                 max_length: int | None = None, progress: bool = True, encode_options=None):
        super().__init__()
        self.encode_options = encode_options
        self._encoded: list = []
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

    def encode_corpus(self, texts: list[str]):
        if self.encode_options is None:
            if len(texts) <= base.BLOCK:
                return self._after(self.encoder.encode_passages(texts))
            return self._blocks(texts)
        from ..encode import encode_texts

        enc = encode_texts(texts, encoder=self.encoder, kind="passage", options=self.encode_options,
                           desc=f"encoding {len(texts)} passages ({self.encode_options.engine})")
        self._encoded.append(enc)
        self.account(enc.stats)
        self.dim = enc.vectors.dim or self.dim
        return enc.vectors

    def _blocks(self, texts) -> np.ndarray:
        """A large corpus in this process (more than base.BLOCK passages), a block a call."""
        def one(block):
            v = self.encoder.encode_passages(block)
            self.account(self.encoder.last_stats)
            return v
        out = blockwise(texts, one)
        self.dim = int(out.shape[1])
        return out

    def close(self) -> None:
        """Release the shard folders of the corpora encoded through the layer."""
        for enc in self._encoded:
            enc.cleanup()
        self._encoded = []
