"""The local clusters `a4nn run` builds warm their workers up as soon as they start
(flows/warm_start.py, a Dask preload given the run's configuration)."""

from __future__ import annotations

import os
import time

import pytest

from a4nn.data.loaders import DataError
from flows.cluster import local_cluster


def _worker_view(dask_worker) -> dict:
    import dask

    return {
        "profiler": bool(dask.config.get("distributed.worker.profile.enabled")),
        "api": os.environ.get("PREFECT_API_URL"),
    }


@pytest.mark.slow  # starts a Prefect server or a Dask cluster
def test_workers_get_the_env_and_a_user_may_turn_the_profiler_back_on(monkeypatch):
    from distributed import Client

    # a user who wants the Dask dashboard's Profile tab back can say so
    monkeypatch.setenv("DASK_DISTRIBUTED__WORKER__PROFILE__ENABLED", "True")
    api = {"PREFECT_API_URL": "http://127.0.0.1:9/api"}
    with local_cluster(1, 1, extra_env=api) as cluster, Client(cluster) as client:
        views = list(client.run(_worker_view).values())
    assert views == [{"profiler": True, "api": "http://127.0.0.1:9/api"}]


def _wait_for_loads(client, expected: int, timeout: float = 90.0) -> dict:
    from flows import worker_cache

    t_end = time.monotonic() + timeout
    while True:
        info = next(iter(client.run(worker_cache.cache_info).values()))
        if info["loads"] >= expected or time.monotonic() > t_end:
            return info
        time.sleep(0.2)


@pytest.mark.slow  # starts a Prefect server or a Dask cluster
def test_workers_warm_up_before_any_task_is_submitted(tiny_config):
    """With the run's config, a worker loads the data on its own, once for the run."""
    from distributed import Client

    from a4nn.config import load_config
    from flows import worker_cache

    cfg = load_config(tiny_config(orchestration={"runner": "prefect", "n_workers": 1}))
    config = cfg.model_dump(mode="json")
    with local_cluster(1, 1, warm_config=config) as cluster, Client(cluster) as c:
        warmed = _wait_for_loads(c, 1)  # no task submitted: the preload did it
        key = c.submit(lambda conf: worker_cache.get_context(conf).key, config).result()
        after = next(iter(c.run(worker_cache.cache_info).values()))
    assert warmed["loads"] == 1 and warmed["cached"] == [key]
    assert after["loads"] == 1  # the training task found it loaded


@pytest.mark.slow  # starts a Prefect server or a Dask cluster
def test_a_warm_up_that_fails_leaves_the_error_to_the_training_task(tiny_config, tmp_path):
    from distributed import Client

    from a4nn.config import load_config
    from flows import worker_cache

    missing = tmp_path / "gone.npz"
    cfg = load_config(tiny_config(data={"path": str(missing)}))
    config = cfg.model_dump(mode="json")
    with local_cluster(1, 1, warm_config=config) as cluster, Client(cluster) as client:
        time.sleep(1.0)  # the warm-up thread has met the missing file by now
        assert client.submit(lambda: 6 * 7).result() == 42  # the worker lives on
        with pytest.raises(DataError, match="gone.npz does not exist"):
            client.submit(worker_cache.get_context, config, pure=False).result()
