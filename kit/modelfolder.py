"""Model folders the kit writes (fine-tuned, merged): what makes them load the same way everywhere.

A folder leaves ``kit train`` / ``kit merge`` with the model's own weights and config, plus:
``kit_model.json`` (how the kit embeds with it: pooling, instructions, max length; see :mod:`kit.registry`),
sentence-transformers' files with the model's real pooling and prompts, bge-m3's sparse/ColBERT heads, and
``kit_manifest.json`` (how it was made: command, data, packages, git revision, times).
"""
from __future__ import annotations

import datetime as _dt
import importlib.metadata
import shutil
import subprocess
from dataclasses import replace
from pathlib import Path

from .io import write_json
from .registry import ModelSpec, write_kit_model

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
            print(f"[kit train] sparse/ColBERT heads were not trained: copied {', '.join(copied)} from the base")
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
