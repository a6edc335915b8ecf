"""A search space and a NAS method from outside the product packages plug in unchanged.

This file is itself the plugin: importing it registers a toy CNN space ("toy-cnn") and a
random-search adapter ("toy-random"); a run config lists it under `plugins:`, so every
process that reads the config (the CLI, the flow, each Dask worker, `load_model`)
imports it. Nothing in a4nn/, lineage/ or flows/ knows either by name.
"""

from __future__ import annotations

import os
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest
import torch
import yaml
from pydantic import BaseModel, ConfigDict, Field
from torch import nn

from a4nn.registry import register_adapter, register_space, validate_options
from a4nn.space import check_vector, sample_vector
from a4nn.types import Candidate, Objective, Result

WIDTHS = (2, 4, 8)


class ToyOptions(BaseModel):
    model_config = ConfigDict(extra="forbid")
    max_depth: int = Field(2, ge=1, le=3)


class ToyCNNSpace:
    """Architecture: {"width": w, "depth": d, "kernel": k}; choice vector (w, d-1, k)."""

    name = "toy-cnn"

    def __init__(self, options: ToyOptions) -> None:
        self.max_depth = options.max_depth

    def choices(self) -> list[int]:
        return [len(WIDTHS), self.max_depth, 2]

    def sample(self, rng: np.random.Generator) -> dict[str, int]:
        return self.decode(sample_vector(self.choices(), rng))

    def encode(self, arch: dict[str, int]) -> list[int]:
        return [WIDTHS.index(arch["width"]), arch["depth"] - 1, (arch["kernel"] - 1) // 2]

    def decode(self, vector: Sequence[int]) -> dict[str, int]:
        w, d, k = check_vector(vector, self.choices(), self.name)
        return {"width": WIDTHS[w], "depth": d + 1, "kernel": 1 + 2 * k}

    def build(self, arch: dict[str, int], input_shape: Sequence[int], num_classes: int):
        layers: list[nn.Module] = []
        c = int(input_shape[0])
        for _ in range(arch["depth"]):
            k = arch["kernel"]
            layers += [nn.Conv2d(c, arch["width"], k, padding=k // 2), nn.ReLU()]
            c = arch["width"]
        return nn.Sequential(
            *layers, nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(c, num_classes)
        )

    def cost(self, arch, input_shape, num_classes, model=None) -> tuple[float, int]:
        model = model or self.build(arch, input_shape, num_classes)
        params = sum(p.numel() for p in model.parameters())
        return float(params) / 1e6, params  # a toy's "MFLOPs"

    def describe(self, arch: dict[str, int]) -> dict[str, Any]:
        nodes = [{"id": f"c{i}", "label": f"conv{arch['kernel']}"} for i in range(arch["depth"])]
        edges = [[f"c{i}", f"c{i + 1}"] for i in range(arch["depth"] - 1)]
        return {"graph": {"nodes": nodes, "edges": edges}}


class RandomOptions(BaseModel):
    model_config = ConfigDict(extra="forbid")
    budget: int = Field(4, ge=1)
    interrupt_after: int | None = None  # test hook: Ctrl-C once this model id is told


class ToyRandomSearch:
    """Random search in steady state; keeps a numpy array in its state (visit counts)."""

    name = "toy-random"
    mode = "steady_state"
    objectives = (Objective("fitness", "max"), Objective("params", "min"))

    def __init__(self, space: Any, options: RandomOptions, seed: int) -> None:
        self.space, self.options = space, options
        self.rng = np.random.default_rng(seed)
        self.next_id = 0
        self.told: list[int] = []
        self.visits = np.zeros(space.choices()[0], dtype=np.int64)

    def ask(self, n: int | None = None) -> list[Candidate]:
        k = min(n or 1, self.options.budget - self.next_id)
        out = []
        for _ in range(max(k, 0)):
            arch = self.space.sample(self.rng)
            self.visits[self.space.encode(arch)[0]] += 1
            out.append(Candidate(self.next_id, self.space.name, arch, proposer=self.name))
            self.next_id += 1
        return out

    def tell(self, results: list[Result]) -> None:
        self.told += [r.model_id for r in results]
        stop = self.options.interrupt_after
        if stop is not None and stop in self.told and os.environ.get("TOY_INTERRUPT") == "1":
            os.environ["TOY_INTERRUPT"] = "0"  # once
            raise KeyboardInterrupt

    def done(self) -> bool:
        return len(set(self.told)) >= self.options.budget

    def state_dict(self) -> dict[str, Any]:
        return {
            "rng": self.rng.bit_generator.state,
            "next_id": self.next_id,
            "told": self.told,
            "visits": self.visits,
        }

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self.rng.bit_generator.state = state["rng"]
        self.next_id, self.told = state["next_id"], list(state["told"])
        assert isinstance(state["visits"], np.ndarray)  # came back from the .npz
        self.visits = state["visits"]


def make_toy_space(options: Mapping[str, Any]) -> ToyCNNSpace:
    return ToyCNNSpace(validate_options(ToyOptions, options, "search.space_options"))


def make_toy_random(space: Any, options: Mapping[str, Any], seed: int) -> ToyRandomSearch:
    return ToyRandomSearch(space, validate_options(RandomOptions, options, "search.options"), seed)


register_space("toy-cnn", make_toy_space, replace=True)
register_adapter("toy-random", make_toy_random, replace=True)

PLUGIN = __name__  # "tests.test_composable": importable wherever the tests run


def toy_config(tiny_config, **search: Any) -> Path:
    return tiny_config(
        plugins=[PLUGIN],
        train={"epochs": 3, "batch_size": 16, "lr": 0.05, "threads": 1},
        search={
            "adapter": "toy-random",
            "space": "toy-cnn",
            "options": search,
            "space_options": {},
        },
    )


def run_cli(args: list[str]) -> int:
    from a4nn.cli import main

    return main(args)


@pytest.mark.slow
def test_plugin_search_runs_resumes_and_reloads_with_the_plain_runner(tiny_config, tmp_path):
    cfg_path = toy_config(tiny_config, budget=4, interrupt_after=1)
    whole, cut = tmp_path / "whole", tmp_path / "cut"
    assert run_cli(["run", str(cfg_path), "--out", str(whole), "--quiet"]) == 0

    os.environ["TOY_INTERRUPT"] = "1"
    try:
        assert run_cli(["run", str(cfg_path), "--out", str(cut), "--quiet"]) == 130
    finally:
        os.environ.pop("TOY_INTERRUPT", None)
    assert len(pd.read_csv(cut / "models.csv")) == 2  # killed after model 1
    assert (cut / "adapter_state.npz").exists()
    assert run_cli(["run", str(cfg_path), "--out", str(cut), "--resume", "--quiet"]) == 0

    a, b = (pd.read_csv(d / "models.csv").sort_values("model_id") for d in (whole, cut))
    assert list(a["space"]) == ["toy-cnn"] * 4 and list(a["proposer"]) == ["toy-random"] * 4
    for col in ("arch", "choices", "fitness", "params"):  # the same search, resumed exactly
        assert list(a[col]) == list(b[col]), col
    assert (a["status"] != "failed").all()
    assert_reload_matches_record(cut)


def assert_reload_matches_record(run_dir: Path) -> None:
    """`load_model` rebuilds a plugin space's model that scores its recorded accuracy."""
    from a4nn.reload import load_model
    from a4nn.train import evaluate

    cfg = yaml.safe_load((run_dir / "config.yaml").read_text())
    data = np.load(cfg["data"]["path"])
    x, y = torch.from_numpy(data["x_test"]), torch.from_numpy(data["y_test"])
    epochs = pd.read_csv(run_dir / "epochs.csv")
    for model_id in (0, 3):
        row = epochs[epochs["model_id"] == model_id].iloc[-1]
        model = load_model(run_dir, model_id, int(row["epoch"]))
        _, acc = evaluate(model, x, y, 64, torch.device("cpu"))
        assert acc == pytest.approx(row["val_acc"], abs=1e-9)


@pytest.mark.slow
def test_plugin_search_runs_on_prefect_and_dask_workers(tiny_config, tmp_path, prefect_api):
    """Dask worker processes import the plugin too: no model fails for an unknown space."""
    cfg_path = toy_config(tiny_config, budget=4)
    cfg = yaml.safe_load(cfg_path.read_text())
    cfg["orchestration"] = {"runner": "prefect", "n_workers": 2, "threads_per_worker": 1}
    cfg_path.write_text(yaml.safe_dump(cfg))
    out = tmp_path / "flow"
    assert run_cli(["run", str(cfg_path), "--out", str(out), "--quiet"]) == 0
    models = pd.read_csv(out / "models.csv")
    assert len(models) == 4 and (models["status"] != "failed").all(), models["reason"].tolist()
    assert set(models["space"]) == {"toy-cnn"}
    before = (out / "epochs.csv").read_text()
    assert run_cli(["run", str(cfg_path), "--out", str(out), "--resume", "--quiet"]) == 0
    assert (out / "epochs.csv").read_text() == before  # resumed on Prefect: nothing retrained
    assert_reload_matches_record(out)
