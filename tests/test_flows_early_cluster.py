"""`a4nn run` starts a local CPU cluster first thing; the flow takes it over."""

from __future__ import annotations

import os
import time

import pytest

from a4nn.config import OrchestrationConfig
from a4nn.data.loaders import DataError
from flows import cluster as cluster_mod
from flows import early_cluster
from flows.cluster import plan_cluster


@pytest.fixture(autouse=True)
def _cpu_only_and_nothing_held(monkeypatch):
    monkeypatch.setenv("CUDA_VISIBLE_DEVICES", "")  # a CPU plan whatever this machine has
    yield
    early_cluster._close_unclaimed()


def _worker_view(dask_worker) -> dict:
    import dask

    return {
        "profiler": bool(dask.config.get("distributed.worker.profile.enabled")),
        "api": os.environ.get("PREFECT_API_URL"),
    }


@pytest.mark.slow
def test_a_prestarted_cluster_is_handed_over_once_and_closed_after(monkeypatch):
    from distributed import Client

    # a user who wants the Dask dashboard's Profile tab back can say so
    monkeypatch.setenv("DASK_DISTRIBUTED__WORKER__PROFILE__ENABLED", "True")
    orch = OrchestrationConfig(n_workers=1, threads_per_worker=1)
    api = {"PREFECT_API_URL": "http://127.0.0.1:9/api"}
    assert early_cluster.prestart(orch, env=api) is True
    plan = plan_cluster(orch)
    with early_cluster.take(plan) as cluster:
        assert cluster is not None
        with Client(cluster) as client:
            views = list(client.run(_worker_view).values())
    assert cluster.status.name == "closed"
    assert views == [{"profiler": True, "api": "http://127.0.0.1:9/api"}]
    with early_cluster.take(plan) as again:  # handed over once
        assert again is None


@pytest.mark.slow
def test_a_prestarted_cluster_that_does_not_match_the_plan_is_closed():
    assert early_cluster.prestart(OrchestrationConfig(n_workers=1, threads_per_worker=1))
    held = early_cluster._held
    with early_cluster.take(plan_cluster(OrchestrationConfig(n_workers=2))) as cluster:
        assert cluster is None
    assert held.cluster.status.name == "closed"


@pytest.mark.slow
def test_workers_that_fail_to_start_fail_the_run_at_once(monkeypatch):
    # started in the background, a cluster whose workers cannot start must still raise
    # when the flow takes it, not leave the run waiting for workers
    monkeypatch.setattr(cluster_mod, "FAST_EXIT_PRELOAD", "no_such_preload_module")
    orch = OrchestrationConfig(n_workers=1, threads_per_worker=1)
    t0 = time.monotonic()
    assert early_cluster.prestart(orch)
    with (
        pytest.raises(RuntimeError, match="Nanny failed to start"),
        early_cluster.take(plan_cluster(orch)),
    ):
        pass
    assert time.monotonic() - t0 < 60


def test_only_local_cpu_clusters_start_early():
    orch = OrchestrationConfig(cluster="address", address="tcp://127.0.0.1:8786")
    assert early_cluster.prestart(orch) is False
    assert early_cluster._held is None


def _wait_for_loads(client, expected: int, timeout: float = 90.0) -> dict:
    from flows import worker_cache

    t_end = time.monotonic() + timeout
    while True:
        info = next(iter(client.run(worker_cache.cache_info).values()))
        if info["loads"] >= expected or time.monotonic() > t_end:
            return info
        time.sleep(0.2)


@pytest.mark.slow
def test_prestarted_workers_warm_up_before_any_task_is_submitted(tiny_config):
    """With the run's config, a worker loads the data on its own, once for the run."""
    from distributed import Client

    from a4nn.config import load_config
    from flows import worker_cache

    cfg = load_config(tiny_config(orchestration={"runner": "prefect", "n_workers": 1}))
    config = cfg.model_dump(mode="json")
    assert early_cluster.prestart(cfg.orchestration, warm_config=config)
    with early_cluster.take(plan_cluster(cfg.orchestration)) as cluster, Client(cluster) as c:
        warmed = _wait_for_loads(c, 1)  # no task submitted: the preload did it
        key = c.submit(lambda conf: worker_cache.get_context(conf).key, config).result()
        after = next(iter(c.run(worker_cache.cache_info).values()))
    assert warmed["loads"] == 1 and warmed["cached"] == [key]
    assert after["loads"] == 1  # the training task found it loaded


@pytest.mark.slow
def test_a_warm_up_that_fails_leaves_the_error_to_the_training_task(tiny_config, tmp_path):
    from distributed import Client

    from a4nn.config import load_config
    from flows import worker_cache

    missing = tmp_path / "gone.npz"
    cfg = load_config(tiny_config(data={"path": str(missing)}))
    config = cfg.model_dump(mode="json")
    orch = OrchestrationConfig(n_workers=1, threads_per_worker=1)
    assert early_cluster.prestart(orch, warm_config=config)
    with early_cluster.take(plan_cluster(orch)) as cluster, Client(cluster) as client:
        time.sleep(1.0)  # the warm-up thread has met the missing file by now
        assert client.submit(lambda: 6 * 7).result() == 42  # the worker lives on
        with pytest.raises(DataError, match="gone.npz does not exist"):
            client.submit(worker_cache.get_context, config, pure=False).result()


def test_data_that_needs_simulating_is_not_warmed_up_early(tmp_path):
    # `a4nn run` warms workers at once only when the data is ready: a worker must not
    # start simulating the XFEL set beside the flow process, which simulates it first
    from a4nn.config import DataConfig
    from a4nn.dataset import data_ready, xfel_cache_path

    xfel = DataConfig(source="xfel", cache_dir=tmp_path)
    assert not data_ready(xfel)
    xfel_cache_path(xfel).mkdir(parents=True)
    (xfel_cache_path(xfel) / "dataset.json").write_text("{}")
    assert data_ready(xfel)
    assert data_ready(DataConfig(source="npz", path=tmp_path / "any.npz"))
