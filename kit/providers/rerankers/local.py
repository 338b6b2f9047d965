"""``local:NAME_OR_PATH``: a cross-encoder on this machine (bge-reranker-*, or a folder `kit rerank-train` wrote).

Scored with transformers directly rather than through ``FlagReranker`` or sentence-transformers' ``CrossEncoder``,
for the reasons :class:`kit.embed.LocalEncoder` gives: the cache is consulted before the weights are loaded (a
fully cached run never loads them), pairs are batched sorted by length, and CPUs with AVX512-BF16 score under
bf16 autocast (about 3x faster). The inputs are built as FlagReranker builds them (query cut to 3/4 of
``max_length``, then only the passage truncated), and tests/rerank_train/test_rerank_train.py checks that the
fp32 scores equal FlagReranker's and CrossEncoder's on the same pairs.
"""
from __future__ import annotations

import json
from pathlib import Path

import numpy as np

from ...device import resolve_device, resolve_precision
from ...embed import weights_fingerprint
from ...io import KitError, stable_hash
from .base import Reranker

RERANKER_FILE = "kit_reranker.json"   # written by `kit rerank-train`: how the folder scores (max_length, ...)
DEFAULT_MAX_LENGTH = 512              # FlagReranker's default


def folder_settings(name_or_path: str) -> dict:
    """What a local folder says about itself: kit_reranker.json, else the config's position limit."""
    path = Path(name_or_path)
    if not path.is_dir():
        return {}
    kit = path / RERANKER_FILE
    if kit.exists():
        return json.loads(kit.read_text(encoding="utf-8"))
    cfg_file = path / "config.json"
    cfg = json.loads(cfg_file.read_text(encoding="utf-8")) if cfg_file.exists() else {}
    mpe = cfg.get("max_position_embeddings")
    if not mpe:
        return {}
    # XLM-R style models reserve two positions for the padding offset.
    return {"max_length": min(DEFAULT_MAX_LENGTH, int(mpe) - (2 if cfg.get("model_type") in ("xlm-roberta",
                                                                                           "roberta") else 0))}


class LocalReranker(Reranker):
    score_kind = "logit"
    price_per_1m_tokens = 0.0   # self-hosted: compute not included

    def __init__(self, name_or_path: str, *, batch_size: int | None = None, precision: str = "auto",
                 max_length: int | None = None, device: str | None = None, cache=None, progress: bool = True):
        super().__init__(cache, progress)
        self.name_or_path = str(name_or_path)
        self.spec = self.model_name = f"local:{self.name_or_path}"
        own = folder_settings(self.name_or_path)
        self.max_length = int(max_length or own.get("max_length") or DEFAULT_MAX_LENGTH)
        self.max_input_tokens = self.max_length
        self.query_max_length = self.max_length * 3 // 4      # FlagReranker's default split
        self.batch_size = int(batch_size or 32)
        self._precision, self._device = precision, device
        self._model = self._tok = None

    @property
    def device(self) -> str:
        return resolve_device(self._device)

    @property
    def precision(self) -> str:
        return resolve_precision(self._precision, self.device)

    @property
    def namespace(self) -> str:
        path = Path(self.name_or_path)
        fp = weights_fingerprint(path) if path.is_dir() else f"hub:{self.name_or_path}"
        return "rerank-local:" + stable_hash({"fp": fp, "max_length": self.max_length, "precision": self.precision})

    def _load(self):
        if self._model is None:
            import torch
            from transformers import AutoModelForSequenceClassification, AutoTokenizer
            try:
                self._tok = AutoTokenizer.from_pretrained(self.name_or_path)
                self._model = AutoModelForSequenceClassification.from_pretrained(self.name_or_path,
                                                                                  dtype=torch.float32)
            except OSError as e:
                raise KitError(f"cannot load reranker {self.name_or_path!r}: {e}. Offline, pass a local folder "
                               f"(e.g. one written by `kit rerank-train`).") from None
            if int(self._model.config.num_labels) != 1:
                raise KitError(f"{self.name_or_path}: a reranker has one output (num_labels=1), this model has "
                               f"{self._model.config.num_labels}")
            self._model.eval().to(self.device)
            if self.precision == "fp16":
                self._model.half()
        return self._model, self._tok

    def _inputs(self, pairs: list[tuple[str, str]]):
        _, tok = self._load()
        queries = []
        for q, _ in pairs:
            ids = tok(q, add_special_tokens=False, truncation=True, max_length=self.query_max_length)["input_ids"]
            queries.append(q if len(ids) < self.query_max_length else tok.decode(ids))
        return tok(queries, [p for _, p in pairs], padding=True, truncation="only_second",
                   max_length=self.max_length, return_tensors="pt")

    def compute(self, pairs: list[tuple[str, str]]) -> np.ndarray:
        """Raw logits of ``pairs`` (no cache)."""
        import contextlib

        import torch
        model, _ = self._load()
        enc = {k: v.to(self.device) for k, v in self._inputs(pairs).items()}
        bf16 = self.precision == "bf16"
        autocast = torch.autocast("cpu" if self.device == "cpu" else "cuda", dtype=torch.bfloat16) if bf16 \
            else contextlib.nullcontext()
        with torch.inference_mode(), autocast:
            logits = model(**enc, return_dict=True).logits.view(-1).float()
        return logits.cpu().numpy().astype(np.float64)

    def _fetch(self, ns, todo, have, bar) -> None:
        pairs = sorted(((q, p) for q, ps in todo.items() for p in ps), key=lambda x: len(x[0]) + len(x[1]))
        for i in range(0, len(pairs), self.batch_size):
            batch = pairs[i:i + self.batch_size]
            scores = self.compute(batch)
            if self.cache is not None:
                self.cache.put_many(ns, batch, scores)
            have.update(zip(batch, scores.tolist()))
            bar.update(len(batch))
