"""Dask worker preload: pin each worker of a multi-GPU batch job to one GPU.

`dask worker --nworkers K --name JOB --preload flows.gpu_pin` names its workers
`JOB-0` ... `JOB-(K-1)`; worker i keeps only the i-th id of the job's
`CUDA_VISIBLE_DEVICES` (set by SLURM/PBS for the job's GPUs). It runs in the worker
process before any task, so CUDA has not been initialised yet. Imports no torch.
"""

from __future__ import annotations

import os
import re
from typing import Any


def pinned_device(worker_name: str, visible: str | None) -> str | None:
    """The GPU id worker `worker_name` should keep, or None to leave the environment."""
    if not visible:
        return None
    ids = [g.strip() for g in visible.split(",") if g.strip()]
    if len(ids) <= 1:
        return None
    match = re.search(r"-(\d+)$", str(worker_name))
    if match is None:
        return None
    return ids[int(match.group(1)) % len(ids)]


def dask_setup(worker: Any) -> None:
    gpu = pinned_device(worker.name, os.environ.get("CUDA_VISIBLE_DEVICES"))
    if gpu is not None:
        os.environ["CUDA_VISIBLE_DEVICES"] = gpu
