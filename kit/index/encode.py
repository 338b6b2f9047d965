"""Chunks and questions as the model embeds them: dense vectors through :class:`kit.embed.LocalEncoder` (the
model's own instruction, pooling, normalisation and the shared embedding cache), and for a bge-m3 folder its
sparse lexical weights and ColBERT vectors through FlagEmbedding's ``BGEM3FlagModel``, cached in the same SQLite
file under their own namespaces, so that a resumed run embeds no chunk twice."""
from __future__ import annotations

from pathlib import Path

import numpy as np

from ..embed import EmbeddingCache, LocalEncoder
from ..encode.heads import SparseHeadEncoder, array_to_sparse, sparse_to_array
from ..io import stable_hash
from ..providers.m3 import flag_progress_bars, is_m3_folder

__all__ = ["ChunkEncoder", "array_to_sparse", "sparse_to_array"]


class ChunkEncoder:
    """``passages(texts)`` -> {"dense": (n, dim), "sparse": [{id: w}] | None, "colbert": [(tokens, dim)] | None}."""

    def __init__(self, model: str, *, sparse: bool, colbert: bool, precision: str = "auto",
                 max_length: int | None = None, batch_size: int = 64, cache_path=None):
        self.cache = EmbeddingCache(cache_path)
        self.dense = LocalEncoder(model, precision=precision, batch_size=batch_size, max_length=max_length,
                                  cache=self.cache, progress=False)
        self.spec = self.dense.spec
        self.has_heads = is_m3_folder(model)
        self.sparse = sparse and self.has_heads
        self.colbert = colbert and self.has_heads
        self.batch_size = batch_size
        self.encoded = {"dense": 0, "sparse": 0, "colbert": 0}
        self._m3 = None

    @property
    def identity(self) -> str:
        """Same identity, same vectors: the weights' fingerprint, pooling, normalisation, length, precision (the
        encoder's cache namespace), the instructions, and which bge-m3 outputs are kept."""
        s = self.spec
        return stable_hash({"ns": self.dense.namespace, "q": s.query_instruction, "p": s.passage_instruction,
                            "sparse": self.sparse, "colbert": self.colbert})

    def describe(self) -> dict:
        """How the collection's vectors were made: what a search service needs to embed its questions the same way."""
        s = self.spec
        return {"model": s.name_or_path, "family": s.family, "pooling": s.pooling, "normalize": s.normalize,
                "query_instruction": s.query_instruction, "passage_instruction": s.passage_instruction,
                "max_length": self.dense.max_length, "precision": self.dense.precision, "model_id": self.identity}

    def sparse_encoder(self) -> SparseHeadEncoder:
        """The sparse head as the encoding layer runs it (fixed-width rows: kit/encode/heads.py)."""
        return SparseHeadEncoder(self.spec, precision=self.dense._precision_arg, batch_size=self.batch_size,
                                 max_length=self.dense.max_length, cache=self.cache, progress=False)

    def passages(self, texts: list[str], dense: np.ndarray | None = None, sparse: np.ndarray | None = None) -> dict:
        """``dense``/``sparse``: the texts' vectors / sparse rows when the encoding layer made them already
        (kit/encode/: this process, torchrun ranks or Ray actors); ColBERT vectors are made here."""
        if dense is None:
            dense = self.dense.encode_passages(texts)
            self.encoded["dense"] += self.dense.last_stats.get("encoded", 0)
        out = {"dense": dense, "sparse": None, "colbert": None}
        if self.sparse and sparse is not None:
            out["sparse"] = [array_to_sparse(a) for a in sparse]
        kinds = [k for k in ("sparse", "colbert") if getattr(self, k) and out[k] is None]
        if kinds:
            got = self._m3_outputs([self.spec.passage_text(t) for t in texts], kinds)
            if "sparse" in kinds:
                out["sparse"] = [array_to_sparse(a) for a in got["sparse"]]
            if "colbert" in kinds:
                out["colbert"] = got["colbert"]
        return out

    def queries(self, texts: list[str]) -> np.ndarray:
        return self.dense.encode_queries(texts)

    # -- bge-m3's heads ----------------------------------------------------------------------------------
    def _ns(self, kind: str) -> str:
        return f"m3-{kind}:{self.dense.namespace}"

    def _m3_outputs(self, texts: list[str], kinds: list[str]) -> dict[str, list[np.ndarray]]:
        have = {k: self.cache.get_many(self._ns(k), texts) for k in kinds}
        todo = [t for t in dict.fromkeys(texts) if any(t not in have[k] for k in kinds)]
        if todo:
            model = self._load_m3()
            with flag_progress_bars(False):   # the index draws one bar of its own
                got = model.encode_corpus(todo, batch_size=self.batch_size, max_length=self.dense.max_length,
                                          return_dense=False, return_sparse="sparse" in kinds,
                                          return_colbert_vecs="colbert" in kinds)
            for i, t in enumerate(todo):   # one transaction per text: a kill loses at most the text in hand
                if "sparse" in kinds:
                    have["sparse"][t] = sparse_to_array(got["lexical_weights"][i])
                if "colbert" in kinds:
                    have["colbert"][t] = np.asarray(got["colbert_vecs"][i], np.float32).reshape(-1)
                for k in kinds:
                    self.cache.put_many(self._ns(k), [t], have[k][t][None, :])
            for k in kinds:
                self.encoded[k] += len(todo)
        out = {k: [have[k][t] for t in texts] for k in kinds}
        if "colbert" in kinds:
            dim = self.colbert_dim
            out["colbert"] = [v.reshape(-1, dim) for v in out["colbert"]]
        return out

    @property
    def colbert_dim(self) -> int:
        import json

        cfg = json.loads((Path(self.spec.name_or_path) / "config.json").read_text(encoding="utf-8"))
        return int(cfg["hidden_size"])

    def _load_m3(self):
        if self._m3 is None:
            from ..providers.m3 import load_m3

            self._m3 = load_m3(self.spec.name_or_path, self.batch_size, self.dense.max_length)
        return self._m3

    def close(self) -> None:
        self.cache.close()
