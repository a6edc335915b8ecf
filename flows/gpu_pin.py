"""Dask worker preload: one GPU per worker of a batch job, and no worker without its GPU.

`dask worker --nworkers K --name JOB --preload flows.gpu_pin` names its workers
`JOB-0` ... `JOB-(K-1)` (a single worker keeps the name `JOB`). The job script exports
`A4NN_WORKERS_PER_JOB=K` and `A4NN_SHARE_GPUS=0|1` (flows/cluster.py). Each worker, before
any task and before CUDA is initialised:

- finds the GPUs its job may use: `CUDA_VISIBLE_DEVICES` (set by SLURM/PBS for the job's
  GPUs), else `nvidia-smi -L`;
- refuses to start (a RuntimeError in the job's log) when the job sees no GPU at all, or
  fewer GPUs than it has workers while GPU sharing is off: each worker claims `GPU=1`, so
  either would silently put models on a CPU or two models on one GPU;
- with K > 1, keeps only its own GPU: worker i gets the i-th id (with sharing, i mod n).

Imports no torch.
"""

from __future__ import annotations

import os
import re
from typing import Any

WORKERS_ENV = "A4NN_WORKERS_PER_JOB"
SHARE_ENV = "A4NN_SHARE_GPUS"


class GpuPinError(RuntimeError):
    """A job's workers cannot each get a GPU of their own."""


def _ids(visible: str | None) -> list[str]:
    if visible is None:
        return []
    ids = [g.strip() for g in visible.split(",") if g.strip()]
    return [] if ids == ["-1"] else ids


def pinned_device(
    worker_name: str, visible: str | None, workers: int | None = None, share: bool = False
) -> str | None:
    """The GPU id worker `worker_name` should keep, or None to leave the environment.

    `workers` is the number of workers in the job (None: unknown, from an older job
    script; then a multi-GPU job pins by the name's index, never wrapping around).
    GpuPinError when the job's GPUs do not go round.
    """
    ids = _ids(visible)
    match = re.search(r"-(\d+)$", str(worker_name))
    if workers is None:  # no job-script hint: pin only what is unambiguous
        if len(ids) <= 1 or match is None:
            return None
        index = int(match.group(1))
        if index >= len(ids):
            raise GpuPinError(
                f"worker {worker_name} is worker {index} of its job, but the job sees only "
                f"{len(ids)} GPU(s) ({','.join(ids)}): it would share a GPU"
            )
        return ids[index]
    if not ids:
        raise GpuPinError(
            f"worker {worker_name}: its job sees no GPU (CUDA_VISIBLE_DEVICES "
            f"{visible!r}, no GPU from nvidia-smi) but each of its {workers} worker(s) claims "
            "GPU=1; the job must request GPUs (orchestration.jobqueue.gpus_per_job derives "
            "the --gres / ngpus request unless job_extra_directives or resource_spec override it)"
        )
    if len(ids) < workers and not share:
        raise GpuPinError(
            f"worker {worker_name}: the job has {workers} workers but sees only {len(ids)} "
            f"GPU(s) ({','.join(ids)}); two workers would train on one GPU. Request "
            "gpus_per_job GPUs per job, or set orchestration.jobqueue.share_gpus: true"
        )
    if workers == 1:
        return ids[0] if len(ids) > 1 else None
    index = int(match.group(1)) if match else 0
    return ids[index % len(ids)]


def _visible_now() -> str | None:
    env = os.environ.get("CUDA_VISIBLE_DEVICES")
    if env is not None:
        return env
    from a4nn.hardware import gpu_list

    found = [index for index, _ in gpu_list()]
    return ",".join(found) if found else None


def dask_setup(worker: Any) -> None:
    workers = os.environ.get(WORKERS_ENV)
    share = os.environ.get(SHARE_ENV, "0") == "1"
    gpu = pinned_device(worker.name, _visible_now(), int(workers) if workers else None, share)
    if gpu is not None:
        os.environ["CUDA_VISIBLE_DEVICES"] = gpu
