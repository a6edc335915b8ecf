"""Workers that retire mid-search (issue 19, item 6): a cluster whose workers retire while
they train and that adapts (as `flows.cluster.jobqueue_cluster` sets up SLURM/PBS jobs,
whose workers retire at the end of their lifetime) loses nothing: the run ends with the
tables of an uninterrupted run. The workers retire on the search's progress, not on a
clock, so the test never depends on how fast the machine trains."""

from __future__ import annotations

import pandas as pd
import pytest

from a4nn.config import load_config
from a4nn.search import run_search_local

pytestmark = [pytest.mark.usefixtures("prefect_api"), pytest.mark.slow]


def test_search_survives_workers_retiring_mid_search(tiny_config, tmp_path):
    """Workers retire while models train on them, as a batch job's workers do at the end
    of their lifetime (Dask's `--lifetime` calls the same `retire_workers` of the
    scheduler). Triggered on progress, not on time, so that it happens mid-search on any
    machine: when a model on a worker reports its second epoch, that worker is retired
    (twice, two different models and workers). The cluster adapts, as jobqueue_cluster
    sets it up: what retires is replaced."""
    import asyncio

    from distributed import LocalCluster
    from distributed.diagnostics.plugin import SchedulerPlugin

    from flows import progress
    from flows.cluster import TRAIN_RESOURCES
    from flows.search_flow import run_search_flow

    class RetireMidModel(SchedulerPlugin):
        def __init__(self, scheduler, times: int) -> None:
            self.scheduler = scheduler  # in this process (add_plugin does not call start)
            self.times = times
            self.retiring: list[tuple[int, str]] = []  # (model, worker address)
            self.removed: list[str] = []

        def log_event(self, topic, msg) -> None:
            if topic != progress.TOPIC or not isinstance(msg, dict):
                return
            if msg.get("kind") != "epoch" or msg.get("epoch") != 1:
                return
            if len(self.retiring) >= self.times:
                return
            w = msg["worker"]  # the worker's name as it publishes it (its address here)
            addr = next(
                (a for a, ws in self.scheduler.workers.items() if w in (a, str(ws.name))),
                None,
            )
            if addr is None or any(a == addr for _, a in self.retiring):
                return
            self.retiring.append((msg["model_id"], addr))
            asyncio.ensure_future(  # on the scheduler's event loop, where this hook runs
                self.scheduler.retire_workers(workers=[addr], close_workers=True)
            )

        def remove_worker(self, scheduler, worker, **kwargs) -> None:
            self.removed.append(worker)

    train = {"epochs": 6}
    reference = tmp_path / "reference"
    run_search_local(load_config(tiny_config(train=train)), reference)

    import dask

    with (
        dask.config.set({"distributed.deploy.lost-worker-timeout": "1s"}),
        LocalCluster(
            n_workers=2,
            threads_per_worker=1,
            resources=dict(TRAIN_RESOURCES),
            dashboard_address=":0",
            silence_logs=50,
        ) as cluster,
    ):
        retirer = RetireMidModel(cluster.scheduler, times=2)
        cluster.scheduler.add_plugin(retirer)
        cluster.adapt(minimum=2, maximum=2)  # as jobqueue_cluster: replace what retires
        cfg = load_config(
            tiny_config(
                train=train,
                orchestration={
                    "runner": "prefect",
                    "cluster": "address",
                    "address": cluster.scheduler_address,
                    "threads_per_worker": 1,
                },
            )
        )
        out = tmp_path / "retiring"
        run_search_flow(cfg, out)
        retiring, removed = list(retirer.retiring), list(retirer.removed)
    assert len(retiring) == 2 and {a for _, a in retiring} <= set(removed), (retiring, removed)
    models, epochs = pd.read_csv(out / "models.csv"), pd.read_csv(out / "epochs.csv")
    ref_models, ref_epochs = (
        pd.read_csv(reference / "models.csv"),
        pd.read_csv(reference / "epochs.csv"),
    )
    assert (models["status"] != "failed").all()
    assert sorted(models["model_id"]) == sorted(ref_models["model_id"])
    assert not epochs.duplicated(["model_id", "epoch"]).any()  # nothing recorded twice
    key, cols = ["model_id", "epoch"], ["model_id", "epoch", "val_acc", "prediction"]
    pd.testing.assert_frame_equal(  # nothing lost: every epoch, as without retirements
        epochs.sort_values(key).reset_index(drop=True)[cols],
        ref_epochs.sort_values(key).reset_index(drop=True)[cols],
        rtol=1e-6,
    )
