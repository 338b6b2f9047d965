"""Model folders the kit writes (fine-tuned, merged): what makes them load the same way everywhere.

A folder leaves ``kit train`` / ``kit merge`` with the model's own weights and config, plus:
``kit_model.json`` (how the kit embeds with it: pooling, instructions, max length; see :mod:`kit.registry`),
sentence-transformers' files with the model's real pooling and prompts, bge-m3's sparse/ColBERT heads,
``kit_manifest.json`` (how it was made: command, data, packages, git revision, times) and a model card
(``README.md``, :mod:`kit.modelcard`). Weights are stored in the training dtype by default (:func:`cast_weights`):
half the size of fp32 for fp16/bf16 training, which is the precision the model was trained in anyway. Loaded as
stored, such weights run in fp16/bf16 on a CPU (slow): ``kit_model.json`` (``cpu_inference``) and the card say to
load them in float32 there, and the kit's own encoder (:class:`kit.embed.LocalEncoder`) does.
"""
from __future__ import annotations

import datetime as _dt
import importlib.metadata
import json
import os
import shutil
import subprocess
from collections import Counter
from dataclasses import replace
from pathlib import Path

from .io import write_json
from .registry import KIT_MODEL_FILE, ModelSpec, write_kit_model
from .logs import note

MANIFEST_FILE = "kit_manifest.json"
HEAD_FILES = ("colbert_linear.pt", "sparse_linear.pt")


def write_sentence_transformers_files(folder, spec: ModelSpec) -> None:
    """Make ``folder`` a sentence-transformers model with the spec's pooling, normalisation and prompts.

    Written by hand in the classic layout (``sentence_transformers.models.*`` module names, the
    ``pooling_mode_*`` keys, as in ../shared/models/zh-e5-small and the hub's bge models), which every
    sentence-transformers release reads. Building a SentenceTransformer to ``save()`` would import the
    library, reload the weights and write them again: seconds per run for tiny models, minutes for bge-m3.
    """
    import json as _json

    folder = Path(folder)
    cfg = _json.loads((folder / "config.json").read_text(encoding="utf-8"))
    dim = int(cfg.get("hidden_size") or cfg.get("d_model") or cfg["dim"])
    modules = [{"idx": 0, "name": "0", "path": "", "type": "sentence_transformers.models.Transformer"},
               {"idx": 1, "name": "1", "path": "1_Pooling", "type": "sentence_transformers.models.Pooling"}]
    if spec.normalize:
        modules.append({"idx": 2, "name": "2", "path": "2_Normalize",
                        "type": "sentence_transformers.models.Normalize"})
    write_json(folder / "modules.json", modules)
    write_json(folder / "1_Pooling" / "config.json", {
        "word_embedding_dimension": dim,
        "pooling_mode_cls_token": spec.pooling == "cls",
        "pooling_mode_mean_tokens": spec.pooling == "mean",
        "pooling_mode_max_tokens": False,
        "pooling_mode_mean_sqrt_len_tokens": False,
        "pooling_mode_weightedmean_tokens": False,
        "pooling_mode_lasttoken": spec.pooling == "last_token",
        "include_prompt": True,
    })
    if spec.normalize:
        (folder / "2_Normalize").mkdir(exist_ok=True)
    else:
        shutil.rmtree(folder / "2_Normalize", ignore_errors=True)
    max_len = int(spec.max_length)
    mpe = cfg.get("max_position_embeddings")
    if mpe:   # XLM-R style models reserve two positions for the padding offset
        max_len = min(max_len, int(mpe) - (2 if cfg.get("model_type") in ("xlm-roberta", "roberta") else 0))
    write_json(folder / "sentence_bert_config.json", {"max_seq_length": max_len, "do_lower_case": False})
    prompts = {}
    if spec.query_instruction:
        prompts["query"] = spec.query_instruction
    if spec.passage_instruction:
        prompts["document"] = prompts["passage"] = spec.passage_instruction
    write_json(folder / "config_sentence_transformers.json", {
        "prompts": prompts, "default_prompt_name": None, "similarity_fn_name": "cosine"})


def local_model_dir(name_or_path: str) -> Path | None:
    if Path(name_or_path).is_dir():
        return Path(name_or_path)
    try:  # a hub id FlagEmbedding already downloaded
        from huggingface_hub import snapshot_download
        return Path(snapshot_download(name_or_path, local_files_only=True))
    except Exception:  # noqa: BLE001 - not cached: nothing to copy from
        return None


def carry_m3_heads(base: str, output: Path) -> list[str]:
    """Copy bge-m3's sparse/ColBERT heads from the base when training did not write them."""
    missing = [h for h in HEAD_FILES if not (output / h).exists()]
    if not missing:
        return []
    base_dir = local_model_dir(base)
    copied = []
    for h in missing:
        if base_dir is not None and (base_dir / h).exists():
            shutil.copy2(base_dir / h, output / h)
            copied.append(h)
    return copied


def finish_output(output: Path, base_spec: ModelSpec) -> ModelSpec:
    """Write kit_model.json + sentence-transformers files (and m3 heads) so the folder loads anywhere."""
    spec = replace(base_spec, name_or_path=str(output))
    if base_spec.family == "bge-m3":
        copied = carry_m3_heads(base_spec.name_or_path, output)
        if copied:
            note(f"[kit train] sparse/ColBERT heads were not trained: copied {', '.join(copied)} from the base")
    write_sentence_transformers_files(output, spec)
    write_kit_model(output, spec)
    return spec


def package_versions() -> dict:
    out = {}
    for pkg in ("torch", "transformers", "FlagEmbedding", "sentence-transformers", "LM_Cocktail", "deepspeed"):
        try:
            out[pkg] = importlib.metadata.version(pkg)
        except importlib.metadata.PackageNotFoundError:
            pass
    return out


def git_revision() -> str | None:
    repo = Path(__file__).resolve().parent.parent
    try:
        rev = subprocess.run(["git", "-C", str(repo), "rev-parse", "HEAD"], capture_output=True, text=True,
                             timeout=10)
        if rev.returncode != 0:
            return None
        dirty = subprocess.run(["git", "-C", str(repo), "status", "--porcelain"], capture_output=True,
                               text=True, timeout=10).stdout.strip()
        return rev.stdout.strip() + ("-dirty" if dirty else "")
    except (OSError, subprocess.SubprocessError):
        return None


def now() -> str:
    return _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds")


# ------------------------------------------------------------------------------------------ stored dtype
SAVE_DTYPES = ("auto", "fp32", "fp16", "bf16")
TORCH_NAMES = {"fp32": "float32", "fp16": "float16", "bf16": "bfloat16"}
_SAFETENSORS = {"F32": "fp32", "F16": "fp16", "BF16": "bf16", "F64": "fp32"}


def weight_files(folder) -> list[Path]:
    """The model's own weight files (not the checkpoints' nor bge-m3's heads)."""
    folder = Path(folder)
    return sorted(folder.glob("*.safetensors")) or sorted(folder.glob("pytorch_model*.bin"))


def stored_dtype(folder) -> str | None:
    """fp32 / fp16 / bf16: the floating dtype most of a folder's weights are stored in (None: no weights)."""
    from safetensors import safe_open

    counts: Counter = Counter()
    for f in weight_files(folder):
        if f.suffix != ".safetensors":
            return "fp32"   # pytorch_model.bin: what transformers wrote before safetensors, in practice fp32
        with safe_open(str(f), "pt") as sf:
            for k in sf.keys():
                counts[_SAFETENSORS.get(sf.get_slice(k).get_dtype())] += 1
    counts.pop(None, None)
    return counts.most_common(1)[0][0] if counts else None


def _cast_file(path: Path, target, safetensors_file: bool) -> tuple[int, int]:
    """Cast the floating tensors of one weight file in place (atomically). Returns (bytes now, fp32 bytes)."""
    import safetensors.torch
    import torch

    if safetensors_file:
        from safetensors import safe_open
        with safe_open(str(path), "pt") as sf:
            meta = sf.metadata() or {}
        state = safetensors.torch.load_file(str(path))
    else:
        state = torch.load(path, map_location="cpu", weights_only=True)
    fp32_bytes = sum(v.numel() * (4 if v.is_floating_point() else v.element_size()) for v in state.values())
    state = {k: (v.to(target) if v.is_floating_point() else v).contiguous() for k, v in state.items()}
    tmp = path.with_name(f".{path.name}.tmp")
    if safetensors_file:
        safetensors.torch.save_file(state, str(tmp), metadata={**meta, "format": meta.get("format", "pt")})
    else:
        torch.save(state, tmp)
    os.replace(tmp, path)
    return path.stat().st_size, fp32_bytes


def cast_weights(folder, dtype: str) -> dict:
    """Store a finished model folder's weights (and bge-m3 heads) in ``dtype`` (fp32/fp16/bf16); config.json
    says so, as transformers' own ``save_pretrained`` would. Returns {dtype, weights_bytes, fp32_bytes}."""
    import torch

    folder = Path(folder)
    if dtype not in TORCH_NAMES:
        raise ValueError(f"dtype must be one of {sorted(TORCH_NAMES)}, got {dtype!r}")
    target = getattr(torch, TORCH_NAMES[dtype])
    size = fp32 = 0
    files = weight_files(folder)
    for f in files:
        a, b = _cast_file(f, target, f.suffix == ".safetensors")
        size, fp32 = size + a, fp32 + b
    for head in HEAD_FILES:
        if (folder / head).exists():
            a, b = _cast_file(folder / head, target, False)
            size, fp32 = size + a, fp32 + b
    index = folder / "model.safetensors.index.json"
    if index.exists():
        idx = json.loads(index.read_text(encoding="utf-8"))
        idx.setdefault("metadata", {})["total_size"] = sum(f.stat().st_size for f in files)
        write_json(index, idx)
    cfg_path = folder / "config.json"
    if cfg_path.exists():
        cfg = json.loads(cfg_path.read_text(encoding="utf-8"))
        cfg["dtype"] = TORCH_NAMES[dtype]
        if "torch_dtype" in cfg:
            cfg["torch_dtype"] = TORCH_NAMES[dtype]
        write_json(cfg_path, cfg)
    kit_model = folder / KIT_MODEL_FILE
    if kit_model.exists():   # written by finish_output just before; a cross-encoder folder has none
        d = json.loads(kit_model.read_text(encoding="utf-8"))
        d.update(cpu_loading(dtype))
        write_json(kit_model, d)
    return {"dtype": dtype, "weights_bytes": size, "fp32_bytes": fp32}


def cpu_loading(dtype: str | None) -> dict:
    """How to load a folder whose weights are stored in ``dtype`` for CPU inference (kept in kit_model.json and
    said in the model card). transformers 5 and sentence-transformers load weights in the dtype config.json names,
    i.e. the stored one: fp16/bf16 on a CPU is slow (sentence-transformers warns), so ask for float32 there."""
    stored = TORCH_NAMES.get(dtype or "", "float32")
    why = ("weights stored in float32: they load in float32 everywhere" if stored == "float32" else
           f"weights stored in {stored}: loaded as stored, a CPU computes in {stored} (slow; sentence-transformers "
           "warns), so load them in float32 for CPU inference; on a GPU they can stay in " + stored)
    return {"weights_dtype": stored,
            "cpu_inference": {
                "dtype": "float32", "why": why,
                "sentence_transformers": 'SentenceTransformer(PATH, model_kwargs={"dtype": "float32"})',
                "transformers": "AutoModel.from_pretrained(PATH, dtype=torch.float32)",
                "before_transformers_4_56": "torch_dtype instead of dtype: model_kwargs={\"torch_dtype\": "
                                            "\"float32\"}, from_pretrained(PATH, torch_dtype=torch.float32)"}}


def save_dtype_for(requested: str, trained_in: str | None) -> str:
    """``auto`` = the dtype the model was trained (or, for a merge, stored) in; fp32 when unknown."""
    return (trained_in or "fp32") if requested == "auto" else requested

