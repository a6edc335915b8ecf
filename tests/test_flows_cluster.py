"""The Dask resource manager (flows/cluster.py, flows/gpu_pin.py) and its config."""

from __future__ import annotations

import os

import pytest

from a4nn.config import ConfigError, OrchestrationConfig, config_from_dict, load_config
from flows.cluster import (
    TRAIN_RESOURCES,
    job_script,
    jobqueue_kwargs,
    local_cluster,
    make_task_runner,
    plan_cluster,
    visible_gpus,
)
from flows.gpu_pin import pinned_device


def test_default_is_local_generational_prefect():
    cfg = config_from_dict({})
    orch = cfg.orchestration
    assert (orch.runner, orch.cluster) == ("prefect", "local")
    assert cfg.create_adapter().mode == "generational"  # the adapter declares its schedule
    assert orch.task_retries == 2


def test_cpu_plan_shares_cores_between_slots():
    plan = plan_cluster(OrchestrationConfig(), gpus=[], cpu_count=8)
    assert (plan.kind, plan.n_workers, plan.threads_per_worker) == ("local-cpu", 1, 8)
    plan = plan_cluster(OrchestrationConfig(n_workers=4), gpus=[], cpu_count=8)
    assert (plan.n_workers, plan.threads_per_worker) == (4, 2)
    assert "4 worker(s)" in plan.describe() and "CPU slots" in plan.describe()


def test_gpu_plan_one_worker_per_gpu():
    plan = plan_cluster(OrchestrationConfig(), gpus=["0", "1", "2", "3"], cpu_count=16)
    assert plan.kind in ("local-gpu", "local-cuda")
    assert (plan.n_workers, plan.gpus, plan.threads_per_worker) == (4, ["0", "1", "2", "3"], 4)
    plan = plan_cluster(OrchestrationConfig(n_workers=2), gpus=["0", "1", "2", "3"])
    assert plan.gpus == ["0", "1"]


def test_more_workers_than_gpus_is_refused():
    with pytest.raises(ValueError, match=r"n_workers is 3 .* only 2 GPU\(s\)"):
        plan_cluster(OrchestrationConfig(n_workers=3), gpus=["0", "1"])


def test_visible_gpus_reads_cuda_visible_devices(monkeypatch):
    monkeypatch.setenv("CUDA_VISIBLE_DEVICES", "2,5")
    assert visible_gpus() == ["2", "5"]
    monkeypatch.setenv("CUDA_VISIBLE_DEVICES", "-1")
    assert visible_gpus() == []
    monkeypatch.setenv("CUDA_VISIBLE_DEVICES", "")
    assert visible_gpus() == []


def test_visible_gpus_without_cuda_visible_devices_asks_nvidia_smi(tmp_path, monkeypatch):
    """GPU indices from `nvidia-smi -L`, MIG device lines left out."""
    smi = tmp_path / "nvidia-smi"
    smi.write_text(
        "#!/bin/sh\n"
        'printf "GPU 0: NVIDIA A100 (UUID: GPU-a)\\n  MIG 1g.5gb Device 0: (UUID: MIG-b)\\n'
        'GPU 1: NVIDIA A100 (UUID: GPU-c)\\n"\n'
    )
    smi.chmod(0o755)
    monkeypatch.delenv("CUDA_VISIBLE_DEVICES", raising=False)
    monkeypatch.setenv("PATH", str(tmp_path))
    assert visible_gpus() == ["0", "1"]


def test_address_cluster_needs_an_address():
    with pytest.raises(ConfigError, match="orchestration.address is required"):
        config_from_dict({"orchestration": {"cluster": "address"}}, "run.yaml")
    with pytest.raises(ConfigError, match="cluster is 'local'"):
        config_from_dict({"orchestration": {"address": "tcp://1.2.3.4:8786"}}, "run.yaml")
    orch = config_from_dict(
        {"orchestration": {"cluster": "address", "address": "tcp://127.0.0.1:8786"}}
    ).orchestration
    runner = make_task_runner(orch)
    assert runner.address == "tcp://127.0.0.1:8786"


@pytest.mark.parametrize(
    "bad, field",
    [
        ({"mode": "parallel"}, "orchestration.mode"),
        ({"cluster": "k8s"}, "orchestration.cluster"),
        ({"n_workers": 0}, "orchestration.n_workers"),
        ({"task_retries": -1}, "orchestration.task_retries"),
        ({"jobqueue": {"gpus_per_job": 0}}, "orchestration.jobqueue.gpus_per_job"),
        ({"workers": 4}, "orchestration.workers"),
    ],
)
def test_bad_orchestration_fields_are_named(bad, field):
    with pytest.raises(ConfigError) as err:
        config_from_dict({"orchestration": bad}, "search.yaml")
    assert "search.yaml" in str(err.value) and field in str(err.value)


def test_slurm_job_script_one_worker_per_gpu():
    orch = OrchestrationConfig(
        cluster="slurm",
        jobqueue={
            "queue": "gpu",
            "account": "proj42",
            "cores": 16,
            "memory": "64GB",
            "gpus_per_job": 4,
            "jobs": 2,
            "job_extra_directives": ["--gres=gpu:4"],
            "job_script_prologue": ["module load cuda"],
        },
    )
    plan = plan_cluster(orch)
    assert (plan.kind, plan.n_workers, plan.threads_per_worker) == ("slurm", 8, 4)
    kw = jobqueue_kwargs(orch)
    assert kw["processes"] == 4 and "--preload" in kw["worker_extra_args"]
    script = job_script(orch)
    assert "#SBATCH -p gpu" in script and "#SBATCH -A proj42" in script
    assert "#SBATCH --gres=gpu:4" in script and "module load cuda" in script
    assert "--resources GPU=1" in script and "--nworkers 4" in script
    assert "--preload flows.gpu_pin" in script


def test_pbs_job_script_single_gpu_jobs():
    orch = OrchestrationConfig(
        cluster="pbs", jobqueue={"queue": "gpuq", "job_extra_directives": ["-l ngpus=1"]}
    )
    script = job_script(orch)
    assert "#PBS -q gpuq" in script and "#PBS -l ngpus=1" in script
    assert "--resources GPU=1" in script
    assert "export A4NN_WORKERS_PER_JOB=1" in script  # the preload checks the job's GPU


# -- issue 19, item 6: jobs that get their GPUs, workers that outlive no job ----------------
def test_slurm_gpu_request_is_derived_from_gpus_per_job():
    orch = OrchestrationConfig(cluster="slurm", jobqueue={"gpus_per_job": 4, "cores": 16})
    script = job_script(orch)
    assert "#SBATCH --gres=gpu:4" in script and "--nworkers 4" in script
    assert "export A4NN_WORKERS_PER_JOB=4" in script and "export A4NN_SHARE_GPUS=0" in script
    # an explicit request for as many (or more) GPUs is kept as written, not doubled
    orch = OrchestrationConfig(
        cluster="slurm", jobqueue={"gpus_per_job": 2, "job_extra_directives": ["--gpus=a100:2"]}
    )
    script = job_script(orch)
    assert "#SBATCH --gpus=a100:2" in script and "--gres" not in script


def test_pbs_gpu_request_is_derived_from_gpus_per_job():
    orch = OrchestrationConfig(
        cluster="pbs", jobqueue={"gpus_per_job": 2, "cores": 8, "memory": "32GB"}
    )
    assert "#PBS -l select=1:ncpus=8:ngpus=2:mem=32GB" in job_script(orch)


@pytest.mark.parametrize(
    "jobqueue, fields",
    [
        ({"gpus_per_job": 4, "job_extra_directives": ["--gres=gpu:2"]}, "job_extra_directives"),
        ({"gpus_per_job": 2, "job_extra_directives": ["-G 1"]}, "job_extra_directives"),
        ({"gpus_per_job": 1, "resource_spec": "select=1:ncpus=4:mem=8GB"}, "resource_spec"),
        ({"gpus_per_job": 2, "resource_spec": "select=1:ncpus=4:ngpus=1"}, "resource_spec"),
    ],
)
def test_workers_claiming_gpus_their_jobs_do_not_request_is_an_error(jobqueue, fields):
    with pytest.raises(ConfigError) as err:
        config_from_dict({"orchestration": {"cluster": "slurm", "jobqueue": jobqueue}}, "c.yaml")
    text = str(err.value)
    assert f"orchestration.jobqueue.{fields}" in text
    assert "orchestration.jobqueue.gpus_per_job" in text


def test_worker_lifetime_is_shorter_than_the_walltime_and_staggered():
    orch = OrchestrationConfig(cluster="slurm", jobqueue={"walltime": "12:00:00"})
    script = job_script(orch)
    assert "--lifetime 11h19m --lifetime-stagger 5m" in script
    orch = OrchestrationConfig(
        cluster="slurm", jobqueue={"walltime": "01:00:00", "worker_lifetime": "50m"}
    )
    assert "--lifetime 50m --lifetime-stagger 3m" in job_script(orch)
    orch = OrchestrationConfig(cluster="slurm", jobqueue={"worker_lifetime": "off"})
    assert "--lifetime" not in job_script(orch)
    with pytest.raises(ConfigError, match="must be shorter than orchestration.jobqueue.walltime"):
        config_from_dict(
            {"orchestration": {"cluster": "pbs", "jobqueue": {"worker_lifetime": "5h"}}}, "c.yaml"
        )


@pytest.mark.parametrize(
    "name, visible, workers, share, expected",
    [
        ("J-0", "4,5,6,7", 4, False, "4"),
        ("J-3", "4,5,6,7", 4, False, "7"),
        ("J", "3", 1, False, None),  # one GPU: the batch system pinned it already
        ("J", "2,3", 1, False, "2"),
        ("J-3", "4,5", 4, True, "5"),  # sharing allowed: 2 workers per GPU
    ],
)
def test_gpu_pin_with_the_jobs_worker_count(name, visible, workers, share, expected):
    assert pinned_device(name, visible, workers, share) == expected


@pytest.mark.parametrize(
    "visible, workers, message",
    [
        ("4,5", 4, "sees only 2 GPU"),
        ("", 1, "sees no GPU"),
        (None, 2, "sees no GPU"),
        ("-1", 1, "sees no GPU"),
    ],
)
def test_gpu_pin_never_puts_two_workers_on_one_gpu(visible, workers, message):
    from flows.gpu_pin import GpuPinError

    with pytest.raises(GpuPinError, match=message):
        pinned_device("J-1", visible, workers)
    with pytest.raises(GpuPinError, match="would share a GPU"):
        pinned_device("J-2", "0,1", None)  # an older job script: no wrap-around either


@pytest.mark.parametrize(
    "name, visible, expected",
    [
        ("SLURMCluster-3-0", "4,5,6,7", "4"),
        ("SLURMCluster-3-2", "4,5,6,7", "6"),
        ("SLURMCluster-3-2", "4", None),  # one GPU: the batch system pinned it already
        ("worker", "0,1", None),  # not a multi-worker job name
        ("SLURMCluster-3-1", None, None),
    ],
)
def test_gpu_pin_by_worker_index(name, visible, expected):
    assert pinned_device(name, visible) == expected


def _worker_env(dask_worker) -> dict:
    import dask

    return {
        "cuda": os.environ.get("CUDA_VISIBLE_DEVICES"),
        "omp": os.environ.get("OMP_NUM_THREADS"),
        "resources": dict(dask_worker.state.total_resources),
        "profiler": dask.config.get("distributed.worker.profile.enabled"),
    }


@pytest.mark.slow
def test_local_gpu_cluster_pins_one_gpu_per_worker():
    """Without dask-cuda: our spec cluster gives worker i only GPU i (real processes)."""
    from distributed import Client

    with (
        local_cluster(2, 3, gpus=["0", "1"], dashboard_address=":0") as cluster,
        Client(cluster) as client,
    ):
        client.wait_for_workers(2, timeout=120)
        envs = client.run(_worker_env)
    assert sorted(e["cuda"] for e in envs.values()) == ["0", "1"]
    assert all(e["resources"] == TRAIN_RESOURCES and e["omp"] == "3" for e in envs.values())
    assert not any(e["profiler"] for e in envs.values())  # off: it contends for the GIL


@pytest.mark.slow
def test_local_cpu_cluster_slots():
    from distributed import Client

    from flows.allocator import relax_malloc_trim

    with local_cluster(2, 1, dashboard_address=":0") as cluster, Client(cluster) as client:
        client.wait_for_workers(2, timeout=120)
        envs = client.run(_worker_env)
        # Dask's nanny lowers glibc's trim threshold in its workers (a 2x slower training
        # step, benchmarks/scheduling/malloc_trim.md); the worker cache raises it again
        relaxed = client.run(relax_malloc_trim)
    assert len(envs) == 2
    assert all(e["resources"] == TRAIN_RESOURCES and e["omp"] == "1" for e in envs.values())
    assert not any(e["profiler"] for e in envs.values())
    assert all(relaxed.values()), relaxed


def test_prefect_yaml_deployments_point_at_the_flow():
    """Each deployment's entrypoint is a Prefect flow that accepts its parameters."""
    import importlib
    import inspect
    from pathlib import Path

    import yaml
    from prefect import Flow

    root = Path(__file__).resolve().parents[1]
    spec = yaml.safe_load((root / "prefect.yaml").read_text())
    assert {d["name"] for d in spec["deployments"]} == {"quickstart", "hpc-slurm"}
    for dep in spec["deployments"]:
        path, _, name = dep["entrypoint"].partition(":")
        module = importlib.import_module(path.removesuffix(".py").replace("/", "."))
        flow = getattr(module, name)
        assert isinstance(flow, Flow)
        inspect.signature(flow.fn).bind(**dep["parameters"])
        config = root / dep["parameters"]["config_path"]
        assert config.is_file(), config
        load_config(config)  # the example configs validate
