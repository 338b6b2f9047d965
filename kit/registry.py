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

    def flagembedding_kwargs(self) -> dict:
        """The arguments FlagEmbedding needs to embed like the kit. ``FlagAutoModel.from_finetuned`` takes pooling
        and instruction format from the folder's *name* only (its table of hub models) and ``FlagModel`` defaults
        to CLS pooling, so a fine-tuned folder is loaded with these (kit_model.json and the model card carry them):
        ``FlagAutoModel.from_finetuned(folder, **kwargs)``."""
        kw = {"model_class": "encoder-only-m3" if self.family == "bge-m3" else "encoder-only-base",
              "pooling_method": self.pooling, "normalize_embeddings": self.normalize,
              "query_instruction_for_retrieval": self.query_instruction or None, "query_instruction_format": "{}{}",
              "query_max_length": int(self.max_length), "passage_max_length": int(self.max_length)}
        if self.passage_instruction:
            kw.update(passage_instruction_for_retrieval=self.passage_instruction, passage_instruction_format="{}{}")
        return kw

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
            if kit_cfg.get("family") not in FAMILIES:
                raise _error(f"{path / KIT_MODEL_FILE}: 'family' must be one of {', '.join(FAMILIES)}, "
                             f"got {kit_cfg.get('family')!r}")
            return replace(ModelSpec(**kit_cfg), **overrides) if overrides else ModelSpec(**kit_cfg)
        found = _inspect_folder(path)
    family = overrides.pop("family", None) or found.pop("family", None) or family_from_name(name_or_path) or "st"
    if family not in FAMILIES:
        raise _error(f"unknown model family {family!r} (known: {', '.join(FAMILIES)})")
    params = dict(FAMILIES[family])
    params.update(found)
    params.update(overrides)
    return ModelSpec(name_or_path=name_or_path, family=family, **params)


def write_kit_model(folder, spec: ModelSpec) -> None:
    """Record the spec inside a model folder so every later stage embeds it the same way."""
    from .io import write_json
    d = spec.to_json()
    d.pop("name_or_path", None)
    d["flagembedding"] = spec.flagembedding_kwargs()   # for readers other than the kit (see the model card)
    write_json(Path(folder) / KIT_MODEL_FILE, d)


def _error(message: str) -> Exception:
    from .io import KitError
    return KitError(message)


def _offline() -> bool:
    return any(os.environ.get(v, "").strip().upper() in {"1", "ON", "YES", "TRUE"}
               for v in ("HF_HUB_OFFLINE", "TRANSFORMERS_OFFLINE"))


def _looks_like_path(name: str) -> bool:
    """A hub id is ``name`` or ``owner/name``; anything else (``./x``, ``/abs``, ``a/b/c``, ``~/x``) is a path."""
    return name.startswith((".", "/", "~")) or "\\" in name or name.count("/") > 1 or name.endswith("/")


def ensure_available(name_or_path: str, what: str = "model", dry_run: bool = False) -> str | None:
    """Raise one clear line (a KitError) unless ``name_or_path`` is a model folder, or a hub id that is cached
    (offline) or can be fetched: instead of a traceback from deep inside transformers, torchrun or LM_Cocktail.

    ``dry_run``: the command is prepared for another machine (a GPU cluster), so a valid hub id whose weights are
    not on this machine (not cached while offline, or the Hub unreachable) is not an error: the warning line is
    returned for the caller to show on stderr. A missing folder, a file or an invalid id still raise. Returns None
    when the model is here."""
    name = str(name_or_path)
    path = Path(name).expanduser()
    if path.is_dir():
        if not (path / "config.json").exists():
            raise _error(f"{what} {name}: the folder has no config.json (not a Hugging Face model folder)")
        return None
    if path.exists():
        raise _error(f"{what} {name}: is a file; expected a model folder or a Hugging Face model id")
    if _looks_like_path(name):
        raise _error(f"{what} {name}: no such folder")
    from huggingface_hub import hf_hub_download
    from huggingface_hub.utils import HFValidationError, validate_repo_id
    try:
        validate_repo_id(name)
    except HFValidationError:
        raise _error(f"{what} {name}: neither a folder nor a valid Hugging Face model id") from None
    offline = _offline()
    try:
        hf_hub_download(name, "config.json", local_files_only=offline)
    except Exception as e:  # noqa: BLE001 - every way of not getting it (missing, offline, 401, DNS) is one line
        if offline:
            why = "not in the Hugging Face cache while offline (HF_HUB_OFFLINE=1)"
            message = f"{what} {name}: not a local folder, and {why}; pass a model folder, or download it first"
        else:
            reason = str(e).strip().splitlines()[0] if str(e).strip() else type(e).__name__
            why = f"cannot be fetched from the Hugging Face Hub ({type(e).__name__}: {reason[:200]})"
            message = f"{what} {name}: not a local folder, and {why}"
        if dry_run:
            return (f"warning: {what} {name}: the weights are not on this machine, {why}; the printed command is "
                    f"for a machine that has them or can download them")
        raise _error(message) from None
    return None
