"""Shared fixtures: tiny learnable datasets and tiny run configs."""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import pytest
import yaml

os.environ.setdefault("DO_NOT_TRACK", "1")
os.environ.setdefault("PREFECT_SERVER_EPHEMERAL_STARTUP_TIMEOUT_SECONDS", "90")


def make_blob_arrays(
    n_train: int = 64, n_test: int = 32, size: int = 12, seed: int = 0, noise: float = 0.6
):
    """Two classes of noisy images: a bright blob left (class 0) or right (class 1).

    More `noise` makes the task harder: curves that climb over epochs instead of at once."""
    rng = np.random.default_rng(seed)

    def split(n: int):
        y = np.arange(n) % 2
        x = rng.normal(0.0, noise, size=(n, 1, size, size)).astype(np.float32)
        c = size // 4
        for i, label in enumerate(y):
            col = c if label == 0 else size - 1 - c
            x[i, 0, size // 2 - 1 : size // 2 + 2, col - 1 : col + 2] += 2.0
        return x, y.astype(np.int64)

    x_train, y_train = split(n_train)
    x_test, y_test = split(n_test)
    return x_train, y_train, x_test, y_test


def write_blob_npz(folder: Path) -> Path:
    x_train, y_train, x_test, y_test = make_blob_arrays()
    path = folder / "blobs.npz"
    np.savez(path, x_train=x_train, y_train=y_train, x_test=x_test, y_test=y_test)
    return path


@pytest.fixture
def blob_npz(tmp_path: Path) -> Path:
    return write_blob_npz(tmp_path)


def write_tiny_config(folder: Path, **over) -> Path:
    """Write blobs.npz and a tiny config using it into `folder`; return the config path."""
    npz = write_blob_npz(folder)
    path = folder / "tiny.yaml"
    path.write_text(yaml.safe_dump(tiny_config_dict(npz, **over)))
    return path


def tiny_config_dict(npz: Path, **over) -> dict:
    """A search that trains a handful of tiny models for a few epochs on `npz`."""
    cfg = {
        "name": "tiny",
        "seed": 0,
        "data": {"source": "npz", "path": str(npz), "normalize": "none"},
        "train": {"epochs": 7, "batch_size": 16, "lr": 0.05, "threads": 1},
        "search": {
            "adapter": "nsganet",
            "space": "nsganet-macro",
            "options": {
                "preset": "quickstart",
                "pop_size": 3,
                "n_offspring": 2,
                "n_generations": 2,
            },
            "space_options": {"channels": [4, 4, 4]},
        },
        "engine": {"preset": "paper"},
        "orchestration": {"runner": "plain"},  # tests of the Prefect flow set "prefect"
    }
    for key, value in over.items():
        if isinstance(value, dict) and isinstance(cfg.get(key), dict):
            cfg[key] = {**cfg[key], **value}
        else:
            cfg[key] = value
    return cfg


@pytest.fixture
def tiny_config(tmp_path: Path, blob_npz: Path):
    """Factory: write a tiny config YAML with overrides and return its path."""

    def make(**over) -> Path:
        path = tmp_path / "tiny.yaml"
        path.write_text(yaml.safe_dump(tiny_config_dict(blob_npz, **over)))
        return path

    return make


# -- flows (issue 4): one Prefect API per test session ------------------------------------
@pytest.fixture(scope="session")
def prefect_api():
    """Start Prefect's test server once per session; yields its API URL.

    In-process flows use it through Prefect's settings; subprocesses (`a4nn run` in the
    fault tests) get it as PREFECT_API_URL so they do not each start an ephemeral server.
    """
    os.environ.setdefault("PREFECT_SERVER_ANALYTICS_ENABLED", "false")  # no internet here
    from prefect.settings import PREFECT_API_URL
    from prefect.testing.utilities import prefect_test_harness

    with prefect_test_harness(server_startup_timeout=90):
        yield PREFECT_API_URL.value()
