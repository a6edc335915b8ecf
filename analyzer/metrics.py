"""What the engine did: epochs and wall time saved, where it stopped, how far off it was.

All functions take `Tables` (see `analyzer.loading`) and return DataFrames with one row
per run (or per model), so several runs compare in one table.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from analyzer.loading import Tables
from analyzer.queries import hypervolumes, ok_models, pareto


def epochs_saved(t: Tables) -> pd.DataFrame:
    """Per run: models, models stopped early, epochs trained against the budget, % saved.

    The budget is the run's epochs per model times its models (failed ones included: they
    would have had the budget too). A stop at the budget's last epoch saves nothing and
    does not count as early.
    """
    rows = []
    for run in t.run_names:
        m = t.models[t.models["run"] == run]
        budget = m["budget"].iloc[0] if len(m) else np.nan
        total = float(budget) * len(m) if budget == budget else np.nan
        trained = int(m["epochs_trained"].sum())
        rows.append(
            {
                "run": run,
                "models": len(m),
                "failed": int((m["status"] == "failed").sum()),
                "stopped_early": int(m["stopped_early"].sum()),
                "budget_per_model": budget,
                "epochs_budget": total,
                "epochs_trained": trained,
                "epochs_saved": total - trained if total == total else np.nan,
                "epochs_saved_pct": 100.0 * (1 - trained / total) if total else np.nan,
            }
        )
    return pd.DataFrame(rows)


def termination_distribution(t: Tables, stopped_only: bool = False) -> pd.DataFrame:
    """Models per termination epoch (1-based: epochs trained) and run; `stopped_only`
    counts only the models the engine stopped early."""
    m = ok_models(t.models)
    if stopped_only:
        m = m[m["stopped_early"]]
    counts = m.groupby(["run", "epochs_trained"], sort=True).size().rename("models")
    return counts.reset_index()


def wall_time(t: Tables) -> pd.DataFrame:
    """Per run: training time recorded, and the time the stopped models' skipped epochs
    would have taken (each at the model's own mean epoch time), so `without_engine` is the
    training time had every model trained to the budget. `run_wall_seconds` is the run's
    whole wall time when recorded (start-up and the search included)."""
    rows = []
    e = t.epochs
    for run in t.run_names:
        m = t.models[t.models["run"] == run]
        er = e[e["run"] == run]
        per_epoch = er.groupby("model_id")["epoch_seconds"].mean()
        trained = er["epoch_seconds"].sum(min_count=1)
        budget = m["budget"].iloc[0] if len(m) else np.nan
        skipped = (budget - m["epochs_trained"]).clip(lower=0) * m["model_id"].map(per_epoch)
        skipped = skipped[m["status"] != "failed"]
        saved = float(skipped.sum(min_count=1)) if len(skipped) else np.nan
        run_wall = np.nan
        if not t.runs.empty and run in set(t.runs["run"]):
            run_wall = t.runs.loc[t.runs["run"] == run, "wall_seconds"].iloc[0]
        rows.append(
            {
                "run": run,
                "training_seconds": float(trained) if trained == trained else np.nan,
                "saved_seconds": saved,
                "without_engine_seconds": float(trained) + saved
                if trained == trained and saved == saved
                else np.nan,
                "time_saved_pct": 100.0 * saved / (float(trained) + saved)
                if trained == trained and saved == saved and (float(trained) + saved) > 0
                else np.nan,
                "run_wall_seconds": float(run_wall) if run_wall is not None else np.nan,
            }
        )
    return pd.DataFrame(rows)


def prediction_error(t: Tables, reference: Tables | None = None) -> pd.DataFrame:
    """The engine's prediction at termination against the truth, per stopped model.

    Columns: `prediction_at_stop` (what the NAS was told), `val_acc_at_stop` (measured at
    that epoch) and `extrapolation` (their difference). With `reference`, tables of an
    engine-off run (every model trained to its budget), a model matched by its choice
    vector gets `true_final` (its last validation accuracy there) and
    `error = prediction_at_stop - true_final`. For a run's own engine-off curves,
    `analyzer.whatif.replay` measures the same error without a second run.
    """
    m = t.models[t.models["stopped_early"]].copy()
    m["extrapolation"] = m["prediction_at_stop"] - m["val_acc_at_stop"]
    m["true_final"] = np.nan
    if reference is not None:
        ref = ok_models(reference.models)
        ref = ref[ref["epochs_trained"] >= ref["budget"]].dropna(subset=["choices"])
        truth = ref.groupby("choices")["last_val_acc"].mean()
        m["true_final"] = m["choices"].map(truth)
    m["error"] = m["prediction_at_stop"] - m["true_final"]
    cols = ["run", "model_id", "epochs_trained", "prediction_at_stop", "val_acc_at_stop"]
    return m[[*cols, "extrapolation", "true_final", "error"]].reset_index(drop=True)


def summary(t: Tables, acc: str = "fitness") -> pd.DataFrame:
    """One row per run: what the report's first table shows."""
    saved = epochs_saved(t)
    wall = wall_time(t)
    hv = hypervolumes(t.models, acc=acc)
    best = (
        ok_models(t.models)
        .dropna(subset=["best_val_acc"])
        .sort_values("best_val_acc", ascending=False)
        .groupby("run", sort=False)
        .head(1)
        .set_index("run")
    )
    out = saved.merge(wall, on="run", how="left").merge(hv, on="run", how="left")
    out["best_val_acc"] = out["run"].map(best["best_val_acc"])
    out["best_model"] = out["run"].map(best["model_id"]).astype("Int64")
    out["pareto_size"] = out["run"].map(
        {r: len(pareto(g, acc)) for r, g in t.models.groupby("run", sort=False)}
    )
    if not t.runs.empty:
        info = t.runs.set_index("run")
        for col in ("engine", "adapter", "space"):
            out[col] = out["run"].map(info[col])
    return out
