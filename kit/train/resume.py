"""Resuming training from the last checkpoint, with what transformers 5 needs to do so."""
from __future__ import annotations

import re
import shutil
from pathlib import Path

from ..io import KitError
from ..modelfolder import HEAD_FILES


def latest_checkpoint(output_dir) -> Path | None:
    out = Path(output_dir)
    if not out.is_dir():
        return None
    found = []
    for d in out.glob("checkpoint-*"):
        m = re.fullmatch(r"checkpoint-(\d+)", d.name)
        if m and d.is_dir() and (d / "trainer_state.json").exists():
            found.append((int(m.group(1)), d))
    return max(found)[1] if found else None


def checkpoint_step(checkpoint: Path | None) -> int:
    return int(re.sub(r"\D", "", checkpoint.name) or 0) if checkpoint else 0


def make_resume_view(checkpoint: Path, family: str) -> Path:
    """A copy of ``checkpoint`` that transformers 5's Trainer can resume from.

    FlagEmbedding saves checkpoints with the inner encoder's ``save_pretrained`` (keys without the
    wrapper's ``model.`` prefix). transformers 5's ``Trainer._load_from_checkpoint`` loads them into the
    wrapper with strict=False, so every key is "missing", and then crashes reading the wrapper's
    ``_keys_to_ignore_on_save`` (AttributeError). Rather than patch site-packages, the kit writes a resume
    view whose weights carry the wrapper's key names (optimizer, scheduler, RNG and trainer state are
    linked unchanged), so resuming restores the weights AND the step, optimizer and schedule.
    """
    import safetensors.torch
    import torch

    view = checkpoint.parent / ".kit_resume" / checkpoint.name
    if view.exists():
        shutil.rmtree(view)
    view.mkdir(parents=True)
    weight_files = {"model.safetensors", "pytorch_model.bin", *HEAD_FILES}
    for f in checkpoint.iterdir():
        if f.name not in weight_files:
            (view / f.name).symlink_to(f.resolve())
    if (checkpoint / "model.safetensors").exists():
        inner = safetensors.torch.load_file(str(checkpoint / "model.safetensors"))
    elif (checkpoint / "pytorch_model.bin").exists():
        inner = torch.load(checkpoint / "pytorch_model.bin", map_location="cpu", weights_only=True)
    else:
        raise KitError(f"{checkpoint}: no model weights to resume from")
    state = {f"model.{k}": v.contiguous() for k, v in inner.items()}
    for head in HEAD_FILES:
        if (checkpoint / head).exists():
            prefix = head[: -len(".pt")]
            sd = torch.load(checkpoint / head, map_location="cpu", weights_only=True)
            state.update({f"{prefix}.{k}": v.contiguous() for k, v in sd.items()})
    safetensors.torch.save_file(state, str(view / "model.safetensors"), metadata={"format": "pt"})
    return view
