"""What machine a run ran on, found without importing torch or touching CUDA.

The flow process records this in `run.json` but never trains, so it should neither pay
torch's import (over a second on a small machine, on the critical path of every run) nor
initialise CUDA beside the workers that use the GPUs. GPUs come from `nvidia-smi`.
"""

from __future__ import annotations

import os
import platform
import shutil
import subprocess


def nvidia_smi(*args: str) -> str | None:
    """`nvidia-smi ARGS` output, or None where there is no NVIDIA driver (or it fails)."""
    smi = shutil.which("nvidia-smi")
    if smi is None:
        return None
    try:
        proc = subprocess.run([smi, *args], capture_output=True, text=True, timeout=20)
    except (OSError, subprocess.SubprocessError):
        return None
    return proc.stdout if proc.returncode == 0 else None


def gpu_names() -> list[str]:
    """Names of the machine's NVIDIA GPUs, in nvidia-smi's order (empty without any)."""
    out = nvidia_smi("--query-gpu=name", "--format=csv,noheader")
    return [line.strip() for line in (out or "").splitlines() if line.strip()]


def hardware() -> dict[str, object]:
    """Host, CPU, cores and GPUs (all the machine's, with `CUDA_VISIBLE_DEVICES` if set)."""
    info: dict[str, object] = {
        "host": platform.node(),
        "machine": platform.machine(),
        "processor": platform.processor(),
        "cpus": os.cpu_count(),
    }
    gpus = gpu_names()
    if gpus:
        info["gpus"] = gpus
    visible = os.environ.get("CUDA_VISIBLE_DEVICES")
    if visible is not None:
        info["cuda_visible_devices"] = visible
    return info
