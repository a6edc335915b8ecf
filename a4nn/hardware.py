"""What machine a run ran on, found without importing torch or touching CUDA.

The flow process records this in `run.json` but never trains, so it should neither pay
torch's import (over a second on a small machine, on the critical path of every run) nor
initialise CUDA beside the workers that use the GPUs. GPUs come from `nvidia-smi`.
"""

from __future__ import annotations

import os
import platform
import re
import shutil
import subprocess


def nvidia_smi(*args: str) -> subprocess.CompletedProcess | None:
    """`nvidia-smi ARGS`, run; None where there is no NVIDIA driver or it cannot run.

    Callers read its stdout whatever the exit code: nvidia-smi exits non-zero when one
    GPU is in an error state and still lists the others.
    """
    smi = shutil.which("nvidia-smi")
    if smi is None:
        return None
    try:
        return subprocess.run([smi, *args], capture_output=True, text=True, timeout=20)
    except (OSError, subprocess.SubprocessError):
        return None


GPU_LINE = re.compile(r"^GPU (\d+): (.+?)(?: \(UUID: [^)]*\))?$")
"""One GPU in `nvidia-smi -L`: its index and name (MIG devices are indented lines)."""


def gpu_list() -> list[tuple[str, str]]:
    """(index, name) of the machine's NVIDIA GPUs, as `nvidia-smi -L` lists them."""
    proc = nvidia_smi("-L")
    lines = proc.stdout.splitlines() if proc is not None else []
    return [(m.group(1), m.group(2)) for m in map(GPU_LINE.match, lines) if m]


def gpu_names() -> list[str]:
    """Names of the machine's NVIDIA GPUs, in nvidia-smi's order (empty without any)."""
    return [name for _, name in gpu_list()]


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
