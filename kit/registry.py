"""Model families: how each embedding model wants its inputs, and how FlagEmbedding trains it.

This is the one place that knows that bge-zh v1.5 wants CLS pooling and a Chinese query instruction,
that bge-m3 wants none, and that e5 wants ``query: `` / ``passage: `` prefixes with mean pooling.
Mining, training, merging, the adapter and the benchmark all ask :func:`resolve`.

A model is named by a hub id (``BAAI/bge-large-zh-v1.5``) or a local folder. Local folders are
inspected: a ``kit_model.json`` written by ``kit train``/``kit merge`` wins, then sentence-transformers'
``1_Pooling/config.json`` and ``config_sentence_transformers.json`` prompts, then the folder name.
"""
from __future__ import annotations

import json
import os
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path

BGE_ZH_INSTRUCTION = "为这个句子生成表示以用于检索相关文章："
BGE_EN_INSTRUCTION = "Represent this sentence for searching relevant passages: "

BASE_MODULE = "FlagEmbedding.finetune.embedder.encoder_only.base"
M3_MODULE = "FlagEmbedding.finetune.embedder.encoder_only.m3"

KIT_MODEL_FILE = "kit_model.json"


@dataclass(frozen=True)
class ModelSpec:
    """Everything a stage needs to embed with, or train, one model."""

    name_or_path: str
    family: str                      # bge-zh | bge-en | bge-m3 | e5 | st
    pooling: str = "cls"             # cls | mean
    query_instruction: str = ""      # prepended to queries at inference and in training
    passage_instruction: str = ""    # prepended to passages
    normalize: bool = True
    max_length: int = 512
    finetune_module: str = BASE_MODULE
    extra: dict = field(default_factory=dict, compare=False, hash=False)

    def query_text(self, q: str) -> str:
        return f"{self.query_instruction}{q}"

    def passage_text(self, p: str) -> str:
        return f"{self.passage_instruction}{p}"

    @property
    def is_local(self) -> bool:
        return Path(self.name_or_path).is_dir()

    def training_flags(self) -> list[str]:
        """FlagEmbedding arguments that make training see inputs exactly as inference does."""
        flags = [
            "--query_instruction_for_retrieval", self.query_instruction,
            "--query_instruction_format", "{}{}",
            "--sentence_pooling_method", self.pooling,
            "--normalize_embeddings", str(self.normalize),
        ]
        if self.passage_instruction:
            flags += ["--passage_instruction_for_retrieval", self.passage_instruction,
                      "--passage_instruction_format", "{}{}"]
        return flags

    def to_json(self) -> dict:
        d = asdict(self)
        d.pop("extra", None)
        return d


FAMILIES: dict[str, dict] = {
    "bge-zh": dict(pooling="cls", query_instruction=BGE_ZH_INSTRUCTION, max_length=512),
    "bge-en": dict(pooling="cls", query_instruction=BGE_EN_INSTRUCTION, max_length=512),
    # bge-m3: dense retrieval uses the CLS vector and no instruction; 8192 tokens.
    "bge-m3": dict(pooling="cls", query_instruction="", max_length=8192, finetune_module=M3_MODULE),
    "e5": dict(pooling="mean", query_instruction="query: ", passage_instruction="passage: ", max_length=512),
    "st": dict(pooling="mean", max_length=512),
}


def family_from_name(name: str) -> str | None:
    n = name.lower().replace("_", "-")
    base = os.path.basename(n.rstrip("/"))
    for s in (base, n):
        if "bge-m3" in s:
            return "bge-m3"
        if "bge" in s and ("zh" in s or "chinese" in s):
            return "bge-zh"
        if "bge" in s:
            return "bge-en"
        if "e5" in s:
            return "e5"
    return None


def _read_json(path: Path) -> dict | None:
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None


def _inspect_folder(path: Path) -> dict:
    """Read what a local sentence-transformers / HF folder says about itself."""
    found: dict = {}
    pooling_cfg = _read_json(path / "1_Pooling" / "config.json")
    if pooling_cfg:
        if pooling_cfg.get("pooling_mode_cls_token"):
            found["pooling"] = "cls"
        elif pooling_cfg.get("pooling_mode_mean_tokens"):
            found["pooling"] = "mean"
    st_cfg = _read_json(path / "config_sentence_transformers.json") or {}
    prompts = st_cfg.get("prompts") or {}
    if "query" in prompts:
        found["query_instruction"] = prompts["query"]
    for key in ("passage", "document", "corpus"):
        if key in prompts:
            found["passage_instruction"] = prompts[key]
            break
    sbert = _read_json(path / "sentence_bert_config.json") or {}
    if sbert.get("max_seq_length"):
        found["max_length"] = int(sbert["max_seq_length"])
    cfg = _read_json(path / "config.json") or {}
    if "max_length" not in found and cfg.get("max_position_embeddings"):
        # XLM-R style models reserve two positions for the padding offset.
        mpe = int(cfg["max_position_embeddings"])
        found["max_length"] = mpe - 2 if cfg.get("model_type") in ("xlm-roberta", "roberta") else mpe
    if (path / "sparse_linear.pt").exists() or (path / "colbert_linear.pt").exists():
        found["family"] = "bge-m3"
    return found


def resolve(name_or_path: str, **overrides) -> ModelSpec:
    """Return the :class:`ModelSpec` for a hub id or local folder. ``overrides`` win over detection."""
    name_or_path = str(name_or_path)
    path = Path(name_or_path)
    found: dict = {}
    if path.is_dir():
        kit_cfg = _read_json(path / KIT_MODEL_FILE)
        if kit_cfg:
            kit_cfg = {k: v for k, v in kit_cfg.items() if k in ModelSpec.__dataclass_fields__}
            kit_cfg["name_or_path"] = name_or_path
            return replace(ModelSpec(**kit_cfg), **overrides) if overrides else ModelSpec(**kit_cfg)
        found = _inspect_folder(path)
    family = overrides.pop("family", None) or found.pop("family", None) or family_from_name(name_or_path) or "st"
    params = dict(FAMILIES[family])
    params.update(found)
    params.update(overrides)
    return ModelSpec(name_or_path=name_or_path, family=family, **params)


def write_kit_model(folder, spec: ModelSpec) -> None:
    """Record the spec inside a model folder so every later stage embeds it the same way."""
    from .io import write_json
    d = spec.to_json()
    d.pop("name_or_path", None)
    write_json(Path(folder) / KIT_MODEL_FILE, d)
