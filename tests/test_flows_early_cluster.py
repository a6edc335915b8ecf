"""`a4nn run` starts a local CPU cluster first thing; the flow takes it over."""

from __future__ import annotations

import os
import time

import pytest

from a4nn.config import OrchestrationConfig
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


def test_a_prestarted_cluster_that_does_not_match_the_plan_is_closed():
    assert early_cluster.prestart(OrchestrationConfig(n_workers=1, threads_per_worker=1))
    held = early_cluster._held
    with early_cluster.take(plan_cluster(OrchestrationConfig(n_workers=2))) as cluster:
        assert cluster is None
    assert held.cluster.status.name == "closed"


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
