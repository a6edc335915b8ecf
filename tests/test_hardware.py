"""run.json's hardware record: found without torch, GPUs from nvidia-smi."""

from __future__ import annotations

import os
import stat
import subprocess
import sys
from pathlib import Path

import pytest

from a4nn.hardware import gpu_list, gpu_names, hardware

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


SMI_L = (
    "GPU 0: NVIDIA A100-SXM4-40GB (UUID: GPU-0a1b)\\n"
    "  MIG 1g.5gb     Device  0: (UUID: MIG-9f8e)\\n"
    "GPU 1: NVIDIA H100 80GB HBM3 (UUID: GPU-2c3d)\\n"
)


def test_gpu_names_come_from_nvidia_smi_with_the_visible_devices(tmp_path, monkeypatch):
    _fake_smi(tmp_path, f'printf "{SMI_L}"')
    monkeypatch.setenv("PATH", str(tmp_path))
    monkeypatch.setenv("CUDA_VISIBLE_DEVICES", "1")
    assert gpu_list() == [("0", "NVIDIA A100-SXM4-40GB"), ("1", "NVIDIA H100 80GB HBM3")]
    info = hardware()
    assert info["gpus"] == ["NVIDIA A100-SXM4-40GB", "NVIDIA H100 80GB HBM3"]
    assert info["cuda_visible_devices"] == "1"


def test_gpus_listed_by_a_failing_nvidia_smi_still_count(tmp_path, monkeypatch):
    """nvidia-smi exits non-zero when one GPU is in an error state, and lists the rest."""
    body = 'printf "GPU 0: NVIDIA H100 (UUID: GPU-1)\\nUnable to determine GPU 1\\n"; exit 15'
    _fake_smi(tmp_path, body)
    monkeypatch.setenv("PATH", str(tmp_path))
    assert gpu_list() == [("0", "NVIDIA H100")]


def test_a_failing_nvidia_smi_means_no_gpus_not_an_error(tmp_path, monkeypatch):
    _fake_smi(tmp_path, 'echo "NVIDIA-SMI has failed" >&2; exit 9')
    monkeypatch.setenv("PATH", str(tmp_path))
    assert gpu_names() == []


@pytest.mark.slow
def test_the_flow_process_imports_no_torch():
    """What `a4nn run` imports to drive the flow, and its hardware record, leave torch
    out: the flow process never trains, and torch's import is seconds of its start-up."""
    code = (
        "import sys\n"
        "import a4nn.progress, a4nn.search, a4nn.summary, flows.search_flow\n"
        "from a4nn.hardware import hardware; hardware()\n"
        "print(sorted(m for m in ('torch', 'torchvision') if m in sys.modules))\n"
    )
    out = subprocess.run(
        [sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, check=True
    )
    assert out.stdout.strip() == "[]"
