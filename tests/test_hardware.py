"""run.json's hardware record: found without torch, GPUs from nvidia-smi."""

from __future__ import annotations

import os
import stat
import subprocess
import sys
from pathlib import Path

from a4nn.hardware import gpu_names, hardware

ROOT = Path(__file__).resolve().parents[1]


def _fake_smi(folder: Path, body: str) -> None:
    smi = folder / "nvidia-smi"
    smi.write_text(f"#!/bin/sh\n{body}\n")
    smi.chmod(smi.stat().st_mode | stat.S_IEXEC)


def test_hardware_without_a_gpu_driver_records_the_cpu_only(tmp_path, monkeypatch):
    monkeypatch.setenv("PATH", str(tmp_path))  # no nvidia-smi here
    monkeypatch.delenv("CUDA_VISIBLE_DEVICES", raising=False)
    info = hardware()
    assert info["cpus"] == os.cpu_count()
    assert "gpus" not in info and "cuda_visible_devices" not in info


def test_gpu_names_come_from_nvidia_smi_with_the_visible_devices(tmp_path, monkeypatch):
    _fake_smi(tmp_path, 'printf "NVIDIA H100 80GB HBM3\\nNVIDIA H100 80GB HBM3\\n"')
    monkeypatch.setenv("PATH", str(tmp_path))
    monkeypatch.setenv("CUDA_VISIBLE_DEVICES", "1")
    assert gpu_names() == ["NVIDIA H100 80GB HBM3"] * 2
    info = hardware()
    assert info["gpus"] == ["NVIDIA H100 80GB HBM3"] * 2
    assert info["cuda_visible_devices"] == "1"


def test_a_failing_nvidia_smi_means_no_gpus_not_an_error(tmp_path, monkeypatch):
    _fake_smi(tmp_path, 'echo "NVIDIA-SMI has failed" >&2; exit 9')
    monkeypatch.setenv("PATH", str(tmp_path))
    assert gpu_names() == []


def test_hardware_does_not_import_torch():
    """The flow process records hardware but never trains: no torch import for it."""
    code = (
        "import sys; from a4nn.hardware import hardware; hardware(); print('torch' in sys.modules)"
    )
    out = subprocess.run(
        [sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, check=True
    )
    assert out.stdout.strip() == "False"
