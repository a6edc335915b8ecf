"""The Dask resource manager: which cluster trains the models, and how GPUs are handed out.

Every training task asks for `resources={"GPU": 1}` and every worker declares exactly one
such slot, so the Dask scheduler never puts two models on one GPU. A "GPU" slot is a
real GPU where there are some (the worker is pinned to it with `CUDA_VISIBLE_DEVICES`)
and a CPU slot where there are none.

`orchestration.cluster` in the run config picks the cluster:

- `local` (default): worker processes on this machine. With GPUs, dask-cuda's
  `LocalCUDACluster` when it is installed (`pip install 'a4nn[hpc]'`), else our own
  spec cluster with one nanny per GPU and `CUDA_VISIBLE_DEVICES` set per worker; without
  GPUs, a `distributed.LocalCluster` of CPU slots.
- `address`: an existing scheduler (`dask scheduler` + `dask worker --resources GPU=1`).
- `slurm` / `pbs`: dask-jobqueue; one worker per GPU (see docs/flows.md for the template).

The cluster reaches Prefect through `prefect_dask.DaskTaskRunner` (`make_task_runner`).
"""

from __future__ import annotations

import contextlib
import logging
import os
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

from a4nn.config import OrchestrationConfig
from a4nn.hardware import gpu_list
from flows import gpu_pin, no_interrupt, warm_start

GPU_RESOURCE = "GPU"
TRAIN_RESOURCES = {GPU_RESOURCE: 1}
"""What one training task asks of the scheduler: one GPU (or CPU) slot."""

PIN_PRELOAD = "flows.gpu_pin"
"""Worker preload that pins multi-GPU batch jobs' workers to one GPU each."""


def visible_gpus() -> list[str]:
    """GPU ids this process may use: `CUDA_VISIBLE_DEVICES` if set, else `nvidia-smi -L`.

    Deliberately not torch: the flow process should not initialise CUDA before it starts
    worker processes.
    """
    env = os.environ.get("CUDA_VISIBLE_DEVICES")
    if env is not None:
        ids = [g.strip() for g in env.split(",") if g.strip()]
        return [] if ids in ([], ["-1"]) else ids
    return [index for index, _ in gpu_list()]


def dask_cuda_available() -> bool:
    try:
        import dask_cuda  # noqa: F401
    except ImportError:
        return False
    return True


@dataclass
class ClusterPlan:
    """What `make_task_runner` will start, decided from the config and this machine."""

    kind: str  # local-cpu | local-gpu | local-cuda | address | slurm | pbs
    n_workers: int
    threads_per_worker: int
    gpus: list[str] = field(default_factory=list)
    address: str | None = None

    def describe(self) -> str:
        if self.kind == "address":
            return f"existing Dask scheduler at {self.address}"
        slots = f"GPUs {','.join(self.gpus)}" if self.gpus else "CPU slots"
        return (
            f"{self.kind} Dask cluster: {self.n_workers} worker(s) x "
            f"{self.threads_per_worker} thread(s), {slots}"
        )


def plan_cluster(
    orch: OrchestrationConfig, gpus: list[str] | None = None, cpu_count: int | None = None
) -> ClusterPlan:
    """Decide the cluster: one worker per GPU, else `n_workers` CPU slots (default 1).

    CPU slots share the cores: each gets `cpu_count // n_workers` torch threads unless
    `threads_per_worker` says otherwise (Dask's nannies set OMP_NUM_THREADS=1 otherwise).
    """
    gpus = visible_gpus() if gpus is None else list(gpus)
    cpus = cpu_count or os.cpu_count() or 1
    if orch.cluster == "address":
        return ClusterPlan("address", 0, orch.threads_per_worker or 1, address=orch.address)
    if orch.cluster in ("slurm", "pbs"):
        jq = orch.jobqueue
        n = orch.n_workers or jq.jobs * jq.gpus_per_job
        threads = orch.threads_per_worker or max(1, jq.cores // jq.gpus_per_job)
        return ClusterPlan(orch.cluster, n, threads)
    if gpus:
        if orch.n_workers is not None and orch.n_workers > len(gpus):
            raise ValueError(
                f"orchestration.n_workers is {orch.n_workers} but this machine shows only "
                f"{len(gpus)} GPU(s) ({','.join(gpus)}): one worker per GPU; lower n_workers "
                "or leave it unset"
            )
        gpus = gpus[: orch.n_workers or len(gpus)]
        threads = orch.threads_per_worker or max(1, cpus // len(gpus))
        kind = "local-cuda" if dask_cuda_available() else "local-gpu"
        return ClusterPlan(kind, len(gpus), threads, gpus=gpus)
    n = orch.n_workers or 1
    threads = orch.threads_per_worker or max(1, cpus // n)
    return ClusterPlan("local-cpu", n, threads)


def local_cluster(
    n_workers: int,
    threads_per_worker: int = 1,
    gpus: list[str] | None = None,
    processes: bool = True,
    dashboard_address: str | None = ":0",
    silence_logs: int | bool = 40,
    extra_env: dict[str, str] | None = None,
    warm_config: dict[str, Any] | None = None,
) -> Any:
    """A local cluster whose every worker holds one `GPU` slot.

    With `gpus`, worker i sees only `gpus[i]` (`CUDA_VISIBLE_DEVICES`); without, the
    workers are CPU slots. Each worker has `threads_per_worker` threads, which is also
    the torch thread count its training uses (one model at a time: one GPU slot).
    `extra_env` is added to the worker processes' environment. With `warm_config` (a run
    configuration whose data is ready to load), each worker starts importing the training
    stack and loading that data as soon as it starts (`flows/warm_start.py`).

    The workers' statistical profiler (Dask's dashboard "Profile" tab) is off: it wakes
    every 10 ms to walk the training thread's stack, and the GIL it takes slowed small
    models' epochs measurably on 2 cores. `DASK_DISTRIBUTED__WORKER__PROFILE__ENABLED=True`
    in the environment turns it back on.
    """
    from distributed import LocalCluster, Nanny, Scheduler, SpecCluster

    thread_env = {
        **(extra_env or {}),
        "OMP_NUM_THREADS": str(threads_per_worker),
        "MKL_NUM_THREADS": str(threads_per_worker),
    }
    # the workers ignore a Ctrl-C in the terminal: `a4nn run` stops them (flows/no_interrupt.py)
    preload: list[str] = [no_interrupt.PRELOAD]
    preload_argv: list[list[str]] = [[]]
    if warm_config is not None:
        preload.append(warm_start.PRELOAD)
        preload_argv.append(warm_start.argv(warm_config))
    nanny_options = {
        "env": thread_env,
        "preload": preload,
        "preload_argv": preload_argv,
        "config": _worker_config(),
    }
    if not gpus:
        return LocalCluster(
            n_workers=n_workers,
            threads_per_worker=threads_per_worker,
            processes=processes,
            resources=dict(TRAIN_RESOURCES),
            dashboard_address=dashboard_address,
            silence_logs=silence_logs,
            **(nanny_options if processes else {}),
        )
    workers = {
        f"gpu-{gpu}": {
            "cls": Nanny,
            "options": {
                "nthreads": threads_per_worker,
                "resources": dict(TRAIN_RESOURCES),
                **nanny_options,
                "env": {**thread_env, "CUDA_VISIBLE_DEVICES": gpu},
                "silence_logs": silence_logs,
            },
        }
        for gpu in gpus[:n_workers]
    }
    scheduler = {"cls": Scheduler, "options": {"dashboard_address": dashboard_address}}
    return SpecCluster(workers=workers, scheduler=scheduler, silence_logs=silence_logs)


def _worker_config() -> dict[str, Any]:
    """Dask settings the nannies hand to their workers (see `local_cluster`)."""
    if "DASK_DISTRIBUTED__WORKER__PROFILE__ENABLED" in os.environ:
        return {}
    return {"distributed.worker.profile.enabled": False}


def local_cuda_cluster(gpus: list[str], threads_per_worker: int = 1) -> Any:
    """dask-cuda's LocalCUDACluster: one worker per GPU, pinned by dask-cuda itself."""
    from dask_cuda import LocalCUDACluster

    return LocalCUDACluster(
        CUDA_VISIBLE_DEVICES=",".join(gpus),
        threads_per_worker=threads_per_worker,
        resources=dict(TRAIN_RESOURCES),
        dashboard_address=":0",
        env={"OMP_NUM_THREADS": str(threads_per_worker)},
    )


def gpu_directives(orch: OrchestrationConfig) -> tuple[list[str], str | None]:
    """The jobs' `job_extra_directives` and PBS `resource_spec`, with the GPU request
    derived from `gpus_per_job` unless the config states one (the config's validation has
    already refused a stated request for fewer GPUs than the workers claim)."""
    from a4nn.config import pbs_gpu_request, slurm_gpu_request

    jq = orch.jobqueue
    directives = list(jq.job_extra_directives)
    spec = jq.resource_spec
    n = jq.gpus_per_job
    if orch.cluster == "slurm" and slurm_gpu_request(directives) is None:
        directives.append(f"--gres=gpu:{n}")
    if orch.cluster == "pbs" and pbs_gpu_request(spec, directives) is None:
        from dask.utils import parse_bytes

        mem_gb = max(1, -(-parse_bytes(jq.memory) // 10**9))  # ceil, as dask-jobqueue does
        spec = f"select=1:ncpus={jq.cores}:ngpus={n}:mem={mem_gb}GB"
    return directives, spec


def jobqueue_kwargs(orch: OrchestrationConfig) -> dict[str, Any]:
    """Keyword arguments for `dask_jobqueue.SLURMCluster`/`PBSCluster` from the config.

    One batch job runs `gpus_per_job` worker processes, each declaring `GPU=1`, and asks
    the batch system for that many GPUs (`gpu_directives`). The `flows.gpu_pin` preload
    gives worker i the job's i-th GPU, and stops a worker whose job sees fewer GPUs than it
    has workers (unless `share_gpus`). Workers retire after `worker_lifetime`, staggered
    (`JobqueueConfig.lifetime`); `jobqueue_cluster` then replaces their jobs.
    """
    jq = orch.jobqueue
    extra = ["--resources", f"{GPU_RESOURCE}=1", "--preload", PIN_PRELOAD]
    lifetime = jq.lifetime()
    if lifetime is not None:
        extra += ["--lifetime", lifetime[0], "--lifetime-stagger", lifetime[1]]
    directives, spec = gpu_directives(orch)
    prologue = [
        f"export {gpu_pin.WORKERS_ENV}={jq.gpus_per_job}",
        f"export {gpu_pin.SHARE_ENV}={int(jq.share_gpus)}",
        *jq.job_script_prologue,
    ]
    kw: dict[str, Any] = {
        "cores": jq.cores,
        "processes": jq.gpus_per_job,
        "memory": jq.memory,
        "walltime": jq.walltime,
        "worker_extra_args": extra,
        "job_extra_directives": directives,
        "job_script_prologue": prologue,
    }
    names = ["queue", "account", "interface", "local_directory", "log_directory"]
    for name in names:
        value = getattr(jq, name)
        if value is not None:
            kw[name] = value
    if orch.cluster == "pbs" and spec is not None:
        kw["resource_spec"] = spec
    return kw


def jobqueue_cluster(orch: OrchestrationConfig, n_workers: int | None = None) -> Any:
    """Start a SLURM or PBS cluster of `n_workers` GPU workers (default jobs x gpus_per_job).

    With `adapt` (the default) the cluster adapts between that many workers and that many:
    a job that ends (its workers retired before the walltime, or a node failed) is
    replaced by a new one, and the tasks of a retiring worker move to the others (a model
    resumes from its last checkpoint). Without, it is scaled once.
    """
    import dask_jobqueue

    cls = dask_jobqueue.SLURMCluster if orch.cluster == "slurm" else dask_jobqueue.PBSCluster
    cluster = cls(**jobqueue_kwargs(orch))
    n = n_workers or plan_cluster(orch).n_workers
    if orch.jobqueue.adapt:
        cluster.adapt(minimum=n, maximum=n)
    else:
        cluster.scale(n=n)
    return cluster


def job_script(orch: OrchestrationConfig) -> str:
    """The batch script dask-jobqueue would submit for this config (nothing is submitted)."""
    import dask_jobqueue

    cls = dask_jobqueue.SLURMCluster if orch.cluster == "slurm" else dask_jobqueue.PBSCluster
    cluster = cls(**jobqueue_kwargs(orch), scheduler_options={"dashboard_address": ":0"})
    try:
        return cluster.job_script()
    finally:
        cluster.close()


def make_task_runner(orch: OrchestrationConfig, plan: ClusterPlan | None = None) -> Any:
    """A `prefect_dask.DaskTaskRunner` that starts (or connects to) the planned cluster."""
    from prefect_dask import DaskTaskRunner

    plan = plan or plan_cluster(orch)
    if plan.kind == "address":
        return DaskTaskRunner(address=plan.address)
    if plan.kind in ("slurm", "pbs"):
        return DaskTaskRunner(
            cluster_class=jobqueue_cluster,
            cluster_kwargs={"orch": orch, "n_workers": plan.n_workers},
        )
    if plan.kind == "local-cuda":
        return DaskTaskRunner(
            cluster_class=local_cuda_cluster,
            cluster_kwargs={"gpus": plan.gpus, "threads_per_worker": plan.threads_per_worker},
        )
    return DaskTaskRunner(
        cluster_class=local_cluster,
        cluster_kwargs={
            "n_workers": plan.n_workers,
            "threads_per_worker": plan.threads_per_worker,
            "gpus": plan.gpus or None,
        },
    )


@contextlib.contextmanager
def quiet_dask_logs() -> Iterator[None]:
    """Keep Dask's INFO chatter (worker start/stop) off the terminal; warnings still show."""
    key = "DASK_LOGGING__DISTRIBUTED"
    saved_env = os.environ.get(key)
    os.environ.setdefault(key, "warning")  # worker processes read it at start
    logger = logging.getLogger("distributed")
    nanny = logging.getLogger("distributed.nanny")  # "still alive after 4 s" at shutdown
    saved_level, saved_nanny = logger.level, nanny.level
    logger.setLevel(logging.WARNING)
    nanny.setLevel(logging.ERROR)
    try:
        yield
    finally:
        logger.setLevel(saved_level)
        nanny.setLevel(saved_nanny)
        if saved_env is None:
            os.environ.pop(key, None)
