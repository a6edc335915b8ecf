"""A search for the flow tests and benchmarks/faults/inject.py whose epochs take a
fraction of a second, so that kills land mid-training: 6 NSGA-Net models (2 + 2 x 2
generations) on blob images, under Prefect with two CPU workers."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import yaml

from tests.conftest import make_blob_arrays, tiny_config_dict

FLOW = {"runner": "prefect", "n_workers": 2, "threads_per_worker": 1}


def write_blobs(path: Path, n_train: int) -> Path:
    """16x16 blob images with noise 2.0 (curves that climb over epochs), `n_train`
    training and 96 test images, as an npz at `path`."""
    x_train, y_train, x_test, y_test = make_blob_arrays(
        n_train=n_train, n_test=96, size=16, noise=2.0
    )
    path.parent.mkdir(parents=True, exist_ok=True)
    np.savez(path, x_train=x_train, y_train=y_train, x_test=x_test, y_test=y_test)
    return path


def write_flow_config(path: Path, npz: Path, name: str, epochs: int) -> Path:
    """The search's config at `path`: run `name`, up to `epochs` epochs a model."""
    cfg: dict[str, Any] = tiny_config_dict(
        npz,
        name=name,
        train={"epochs": epochs, "batch_size": 16, "threads": 1},
        search={
            "options": {
                "preset": "quickstart",
                "pop_size": 2,
                "n_offspring": 2,
                "n_generations": 3,
            },
            "space_options": {"channels": [8, 8, 8]},
        },
        # the default engine learns from finished models: the flow's workers must teach
        # it the same models the plain loop does (a4nn.engine_feed), resumed or not
        engine={"preset": "default", "overrides": {"prior_min_curves": 2}},
        orchestration=FLOW,
    )
    path.write_text(yaml.safe_dump(cfg))
    return path
