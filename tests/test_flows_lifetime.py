"""Workers that retire mid-search (issue 19, item 6): a cluster whose workers have a lifetime
and that adapts (as `flows.cluster.jobqueue_cluster` sets up SLURM/PBS jobs) loses nothing:
the run ends with the tables of an uninterrupted run."""

from __future__ import annotations

import pandas as pd
import pytest

from a4nn.config import load_config
from a4nn.search import run_search_local

pytestmark = [pytest.mark.usefixtures("prefect_api"), pytest.mark.slow]


def test_search_survives_workers_retiring_mid_search(tiny_config, tmp_path):
    from distributed import LocalCluster
    from distributed.diagnostics.plugin import SchedulerPlugin

    from flows.cluster import TRAIN_RESOURCES
    from flows.search_flow import run_search_flow

    class Retired(SchedulerPlugin):
        def __init__(self) -> None:
            self.removed: list[str] = []

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
            lifetime="25s",  # what --lifetime / --lifetime-stagger give a batch job's workers
            lifetime_stagger="5s",
            silence_logs=50,
        ) as cluster,
    ):
        retired = Retired()
        cluster.scheduler.add_plugin(retired)
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
        n_retired = len(retired.removed)
    if n_retired == 0:  # timing: on a fast machine the search can end within one lifetime
        pytest.skip("no worker retired during this search (it ended within the 25 s lifetime)")
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
