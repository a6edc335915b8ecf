"""The run summary of a run whose models failed (NaN loss): a failed model saves no
epochs, and a run without a successful model says so instead of 'nan% (model None)'."""

from __future__ import annotations

import json
from pathlib import Path

import pandas as pd
import pytest
import yaml

from a4nn.summary import format_summary, summarize


def _run(folder: Path, rows: list[dict], epochs: int = 7) -> Path:
    folder.mkdir()
    (folder / "config.yaml").write_text(yaml.safe_dump({"train": {"epochs": epochs}}))
    (folder / "run.json").write_text(json.dumps({"status": "finished", "wall_seconds": 1.0}))
    base = {"fitness": 0.0, "best_val_acc": float("nan"), "mflops": 0.1, "params": 10}
    pd.DataFrame([{**base, **r} for r in rows]).to_csv(folder / "models.csv", index=False)
    return folder


def test_failed_models_save_no_epochs(tmp_path):
    run = _run(
        tmp_path / "r",
        [
            {"model_id": 0, "status": "converged", "epochs_trained": 4, "fitness": 80.0,
             "best_val_acc": 79.0},
            {"model_id": 1, "status": "failed", "epochs_trained": 2},  # NaN loss at epoch 2
            {"model_id": 2, "status": "failed", "epochs_trained": 0},  # NaN loss at epoch 0
        ],
    )  # fmt: skip
    s = summarize(run)
    assert s.epochs_trained == 6
    assert s.epochs_budget == 7 + 2 + 0  # only the converged model had budget to save
    assert s.epochs_saved_pct == pytest.approx(100 * (1 - 6 / 9))
    text = format_summary(s)
    assert "Best validation accuracy: 79.00% (model 0)" in text
    assert "6 of a 9-epoch budget (33.3% saved)" in text


def test_a_run_where_every_model_failed_says_so(tmp_path):
    run = _run(
        tmp_path / "r",
        [{"model_id": i, "status": "failed", "epochs_trained": i} for i in range(3)],
    )
    s = summarize(run)
    assert s.best_model is None and s.epochs_budget == s.epochs_trained == 3
    text = format_summary(s)
    assert "nan" not in text.lower() and "None" not in text
    assert "Best validation accuracy: none (no model trained without failing)" in text
    assert "0.0% saved" in text
    assert "(empty: no model trained without failing)" in text


@pytest.mark.slow
def test_a_nan_loss_run_prints_a_plain_summary(tiny_config, tmp_path, capsys):
    """The real thing, on the plain runner: a learning rate that makes every loss NaN."""
    from a4nn.cli import main

    cfg = tiny_config(train={"lr": 1e30, "epochs": 2, "lr_schedule": "constant"})
    assert main(["run", str(cfg), "--out", str(tmp_path / "nan"), "--quiet"]) == 0
    out = capsys.readouterr().out
    progress, out = out[: out.index("Run directory:")], out[out.index("Run directory:") :]
    assert "nan%" not in progress and "best none yet" in progress  # every model failed
    models = pd.read_csv(tmp_path / "nan" / "models.csv")
    trained = int(models["epochs_trained"].sum())
    ok = models[models["status"] != "failed"]
    budget = 2 * len(ok) + int(models.loc[models["status"] == "failed", "epochs_trained"].sum())
    assert f"Epochs trained: {trained} of a {budget}-epoch budget" in out
    assert "nan%" not in out and "model None" not in out


@pytest.mark.slow
def test_a_nan_loss_flow_shows_no_nan_best_and_no_savings(
    tiny_config, tmp_path, capsys, prefect_api
):
    """The same under the Prefect runner: the board's lines (one per finished model) show
    no "best nan%" and count a failed model's unused epochs as nothing saved."""
    from a4nn.config import load_config
    from flows.search_flow import run_search_flow

    orch = {"runner": "prefect", "n_workers": 1, "threads_per_worker": 1}
    train = {"lr": 1e30, "epochs": 3, "lr_schedule": "constant"}
    run_search_flow(load_config(tiny_config(train=train, orchestration=orch)), tmp_path / "nan")
    lines = [ln for ln in capsys.readouterr().out.splitlines() if ln.startswith("[model")]
    models = pd.read_csv(tmp_path / "nan" / "models.csv")
    assert (models["status"] == "failed").all() and len(lines) == len(models)
    trained = int(models["epochs_trained"].sum())
    assert f"epochs {trained}/{trained} of budget (0% saved)" in lines[-1], lines[-1]
    assert all("best none yet" in ln and "nan%" not in ln for ln in lines), lines
