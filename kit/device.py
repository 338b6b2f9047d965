"""Where and in what precision the kit runs a model: one answer for every stage that loads one (embedding,
reranking, training), so `auto` means the same thing everywhere."""
from __future__ import annotations

import shutil
from pathlib import Path


def cuda_available() -> bool:
    # Importing torch costs seconds; a machine without NVIDIA device nodes or driver has no CUDA anyway.
    if not (Path("/proc/driver/nvidia").exists() or list(Path("/dev").glob("nvidia*"))
            or shutil.which("nvidia-smi")):
        return False
    try:
        import torch
        return bool(torch.cuda.is_available())
    except Exception:  # noqa: BLE001 - no torch means no CUDA
        return False


def cpu_supports_bf16() -> bool:
    """bf16 is fast on a CPU only with native instructions (AVX-512 BF16 or AMX); elsewhere it is emulated."""
    try:
        with open("/proc/cpuinfo") as f:
            flags = f.read()
        return "avx512_bf16" in flags or "amx_bf16" in flags
    except OSError:
        return False


def resolve_device(device: str | None) -> str:
    """The device asked for, else CUDA when present, else the CPU."""
    return device or ("cuda" if cuda_available() else "cpu")


def resolve_precision(precision: str, device: str) -> str:
    """``auto``: fp16 on CUDA, bf16 on CPUs that have it natively, else fp32; anything else as asked."""
    if precision != "auto":
        return precision
    if device.startswith("cuda"):
        return "fp16"
    return "bf16" if cpu_supports_bf16() else "fp32"
