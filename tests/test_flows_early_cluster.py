"""`a4nn run` starts a local CPU cluster first thing; the flow takes it over."""

from __future__ import annotations

import pytest

from a4nn.config import OrchestrationConfig
from flows import early_cluster
from flows.cluster import plan_cluster


@pytest.fixture(autouse=True)
def _cpu_only_and_nothing_held(monkeypatch):
    monkeypatch.setenv("CUDA_VISIBLE_DEVICES", "")  # a CPU plan whatever this machine has
    yield
    early_cluster._close_unclaimed()


def _worker_profiler(dask_worker) -> bool:
    import dask

    return bool(dask.config.get("distributed.worker.profile.enabled"))


def test_a_prestarted_cluster_is_handed_over_once_and_closed_after(monkeypatch):
    from distributed import Client

    # a user who wants the Dask dashboard's Profile tab back can say so
    monkeypatch.setenv("DASK_DISTRIBUTED__WORKER__PROFILE__ENABLED", "True")
    orch = OrchestrationConfig(n_workers=1, threads_per_worker=1)
    assert early_cluster.prestart(orch) is True
    plan = plan_cluster(orch)
    with early_cluster.take(plan) as cluster:
        assert cluster is not None
        with Client(cluster) as client:
            client.wait_for_workers(1, timeout=120)  # the workers started in the background
            profilers = client.run(_worker_profiler)
    assert cluster.status.name == "closed"
    assert list(profilers.values()) == [True]
    with early_cluster.take(plan) as again:  # handed over once
        assert again is None


def test_a_prestarted_cluster_that_does_not_match_the_plan_is_closed():
    assert early_cluster.prestart(OrchestrationConfig(n_workers=1, threads_per_worker=1))
    held = early_cluster._held[1]
    with early_cluster.take(plan_cluster(OrchestrationConfig(n_workers=2))) as cluster:
        assert cluster is None
    assert held.status.name == "closed"


def test_only_local_cpu_clusters_start_early():
    orch = OrchestrationConfig(cluster="address", address="tcp://127.0.0.1:8786")
    assert early_cluster.prestart(orch) is False
    assert early_cluster._held is None
