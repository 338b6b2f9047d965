"""bge-m3's sparse head as an encoder the layer can run: every engine (this process, torchrun ranks, Ray actors)
encodes fixed-width vectors into shard files, so the sparse lexical weights are written as one fixed-width row
per text, ``[token ids..., weights...]`` padded with zeros to ``2 x max_length`` (a text has at most
``max_length`` tokens, so at most that many weights; a zero weight is no weight). The same resume, shards, cache
and engines as the dense vectors, with FlagEmbedding's ``BGEM3FlagModel`` doing the encoding.

ColBERT vectors stay out of the layer: one vector per token (hundreds of KB a chunk at 1024 dims) is not a
fixed-width row, and at corpus scale they are used to rerank a query's dense + sparse candidates, not stored for
millions of chunks (kit/providers/m3.py, kit/index/encode.py)."""
from __future__ import annotations

import numpy as np

from ..embed import LocalEncoder
from ..io import stable_hash


def sparse_to_array(weights: dict, width: int | None = None) -> np.ndarray:
    """{token id: weight} as one float32 row [ids..., weights...] (ids < 2**24 are exact in float32); with
    ``width``, each half zero-padded to ``width // 2`` (the layer's fixed-width rows)."""
    ids = sorted(int(t) for t in weights)
    w = [float(weights[t] if t in weights else weights[str(t)]) for t in ids]
    if width is None:
        return np.asarray(ids + w, np.float32)
    half = width // 2
    if len(ids) > half:       # cannot happen for max_length tokens; kept loud rather than silently cut
        raise ValueError(f"{len(ids)} sparse weights do not fit a row of {half}")
    row = np.zeros(width, np.float32)
    row[:len(ids)], row[half:half + len(w)] = ids, w
    return row


def array_to_sparse(row: np.ndarray) -> dict[int, float]:
    n = len(row) // 2
    return {int(i): float(w) for i, w in zip(row[:n], row[n:]) if w > 0}


class SparseHeadEncoder(LocalEncoder):
    """A bge-m3 folder's sparse lexical weights, as :class:`LocalEncoder`'s interface (``encode``, ``_compute``,
    ``namespace``, cache) so that :func:`kit.encode.encode_texts` and its three engines run it unchanged."""

    head = "sparse"

    def __init__(self, *args, **kw):
        super().__init__(*args, **kw)
        self._m3 = None

    @property
    def width(self) -> int:
        return 2 * self.max_length

    @property
    def namespace(self) -> str:
        return "m3-sparse:" + stable_hash({"dense": super().namespace, "width": self.width})

    @property
    def dim(self) -> int:
        return self.width

    def _load_m3(self):
        if self._m3 is None:
            from ..providers.m3 import load_m3

            self._m3 = load_m3(self.spec.name_or_path, self.batch_size, self.max_length,
                               device=self.device if self.device.startswith("cuda") else "cpu",
                               precision=self.precision)
        return self._m3

    def _compute(self, batch: list[str]) -> np.ndarray:
        from ..providers.m3 import flag_progress_bars

        with flag_progress_bars(False):
            got = self._load_m3().encode_corpus(list(batch), batch_size=len(batch), max_length=self.max_length,
                                                return_dense=False, return_sparse=True, return_colbert_vecs=False)
        return np.stack([sparse_to_array(w, self.width) for w in got["lexical_weights"]])
