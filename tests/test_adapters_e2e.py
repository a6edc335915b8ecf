"""`search.adapter: random | evolution | ppo` end to end through `a4nn run`, with the engine.

Each adapter searches the NSGA-Net macro space (tiny channels) on the blobs data. With
the plain runner a run is interrupted (KeyboardInterrupt from `tell`, as Ctrl-C, through
`tests.adapter_plugins`) and resumed with `--resume`; it must train exactly the models
an uninterrupted run trains (architectures, choice vectors, parents, fitness). For PPO
the cut falls after its first update and the resumed run makes two more. The Prefect
runner (Dask workers import the plugin too) is one slow test per adapter.
"""

from __future__ import annotations

import os
from pathlib import Path

import pandas as pd
import pytest
import yaml

from lineage.adapter_state import load_state
from tests.adapter_plugins import INTERRUPT_AFTER

PLUGIN = "tests.adapter_plugins"

# adapter -> (options, the model whose tell is interrupted, models trained before the cut)
CASES = {
    "random": ({"max_models": 3}, 1, 2),
    "evolution": ({"max_models": 4, "population_size": 2, "sample_size": 2}, 2, 3),
    # generational, M=2: generations [0, 1] [2, 3] [4]; cut in the tell of [2, 3]
    "ppo": ({"max_models": 5, "batch_size": 2}, 2, 4),
}


def adapter_config(tiny_config, adapter: str, options: dict, **over) -> Path:
    return tiny_config(
        plugins=[PLUGIN],
        train={"epochs": 2, "batch_size": 16, "lr": 0.05, "threads": 1},
        search={
            "adapter": adapter,
            "space": "nsganet-macro",
            "options": options,
            "space_options": {"channels": [4, 4, 4]},
        },
        **over,
    )


def run_cli(args: list[str]) -> int:
    from a4nn.cli import main

    return main(args)


@pytest.mark.slow  # trains through a4nn run, four times per adapter
@pytest.mark.parametrize("adapter", list(CASES))
def test_a_killed_run_resumes_exactly_with_the_plain_runner(adapter, tiny_config, tmp_path):
    options, cut_at, trained = CASES[adapter]
    cfg = adapter_config(tiny_config, adapter, options)
    whole, cut = tmp_path / "whole", tmp_path / "cut"
    assert run_cli(["run", str(cfg), "--out", str(whole), "--quiet"]) == 0

    os.environ[INTERRUPT_AFTER] = str(cut_at)
    try:
        assert run_cli(["run", str(cfg), "--out", str(cut), "--quiet"]) == 130
    finally:
        os.environ.pop(INTERRUPT_AFTER, None)
    assert len(pd.read_csv(cut / "models.csv")) == trained
    assert run_cli(["run", str(cfg), "--out", str(cut), "--resume", "--quiet"]) == 0

    a, b = (pd.read_csv(d / "models.csv").sort_values("model_id") for d in (whole, cut))
    assert list(a["model_id"]) == list(range(options["max_models"]))
    assert set(a["proposer"]) == {adapter} and (a["status"] != "failed").all()
    for col in ("arch", "choices", "parents", "generation", "fitness"):
        assert list(a[col]) == list(b[col]), col
    states = [load_state(d / "adapter_state.json") for d in (whole, cut)]
    assert states[0]["rng"] == states[1]["rng"] and states[0]["adapter"] == adapter
    if adapter == "ppo":
        assert (cut / "adapter_state.npz").exists()
        assert states[0]["updates"] == states[1]["updates"] == 3
        for net in ("policy", "value"):
            for key, w in states[0][net].items():
                assert (w == states[1][net][key]).all(), (net, key)


@pytest.mark.slow
@pytest.mark.parametrize("adapter", list(CASES))
def test_each_adapter_runs_on_prefect_and_dask_workers(adapter, tiny_config, tmp_path, prefect_api):
    options = {"max_models": 3, **({"batch_size": 2} if adapter == "ppo" else {})}
    if adapter == "evolution":
        options["population_size"] = 2
    cfg = adapter_config(
        tiny_config,
        adapter,
        options,
        orchestration={"runner": "prefect", "n_workers": 2, "threads_per_worker": 1},
    )
    out = tmp_path / "flow"
    assert run_cli(["run", str(cfg), "--out", str(out), "--quiet"]) == 0
    models = pd.read_csv(out / "models.csv")
    assert len(models) == 3 and (models["status"] != "failed").all(), models["reason"].tolist()
    assert set(models["proposer"]) == {adapter}
    state = load_state(out / "adapter_state.json")
    assert state["adapter"] == adapter and len(state["results"]) == 3
    assert yaml.safe_load((out / "config.yaml").read_text())["search"]["adapter"] == adapter
