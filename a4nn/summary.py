"""What a finished (or partial) run achieved, read back from its run directory.

Used by `a4nn run` at the end and by `a4nn report RUN_DIR`.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd
import yaml
from pymoo.util.nds.non_dominated_sorting import NonDominatedSorting


@dataclass
class RunSummary:
    run_dir: Path
    models: int
    failed: int
    converged: int
    epochs_trained: int
    epochs_budget: int
    best_val_acc: float
    best_model: int | None
    pareto: pd.DataFrame
    wall_seconds: float | None

    @property
    def epochs_saved_pct(self) -> float:
        if self.epochs_budget == 0:
            return 0.0
        return 100.0 * (1 - self.epochs_trained / self.epochs_budget)


def pareto_front(models: pd.DataFrame) -> pd.DataFrame:
    """Non-dominated models: maximize fitness, minimize MFLOPs (pymoo's sorting)."""
    ok = models[models["status"] != "failed"].dropna(subset=["fitness", "mflops"])
    if ok.empty:
        return ok
    objectives = np.column_stack([-ok["fitness"].to_numpy(float), ok["mflops"].to_numpy(float)])
    front = NonDominatedSorting().do(objectives, only_non_dominated_front=True)
    return ok.iloc[np.sort(front)].sort_values("mflops")


def summarize(run_dir: Path) -> RunSummary:
    """Summarise the run-level tables of `run_dir`."""
    run_dir = Path(run_dir)
    models_path = run_dir / "models.csv"
    if not models_path.exists():
        raise FileNotFoundError(
            f"{run_dir} has no models.csv: it is not a run directory, or no model finished yet"
        )
    models = pd.read_csv(models_path)
    cfg = yaml.safe_load((run_dir / "config.yaml").read_text())
    budget_per_model = int(cfg["train"]["epochs"])
    ok = models[models["status"] != "failed"]
    failed_epochs = models.loc[models["status"] == "failed", "epochs_trained"].sum()
    best_idx = ok["best_val_acc"].idxmax() if not ok.empty else None
    meta = json.loads((run_dir / "run.json").read_text())
    return RunSummary(
        run_dir=run_dir,
        models=len(models),
        failed=int((models["status"] == "failed").sum()),
        # a stop at the budget's last epoch saves nothing: not "early"
        converged=int(
            (
                (models["status"] == "converged") & (models["epochs_trained"] < budget_per_model)
            ).sum()
        ),
        epochs_trained=int(models["epochs_trained"].sum()),
        # a failed model saved nothing: its budget is the epochs it trained
        epochs_budget=budget_per_model * len(ok) + int(failed_epochs),
        best_val_acc=float(ok["best_val_acc"].max()) if not ok.empty else float("nan"),
        best_model=int(models.loc[best_idx, "model_id"]) if best_idx is not None else None,
        pareto=pareto_front(models),
        wall_seconds=meta.get("wall_seconds"),
    )


def format_summary(s: RunSummary) -> str:
    """Plain-text summary (the CLI prints it with rich when a terminal is attached)."""
    lines = [
        f"Run directory: {s.run_dir}",
        f"Models trained: {s.models} ({s.converged} stopped early by the engine, {s.failed} failed)",
        f"Epochs trained: {s.epochs_trained} of a {s.epochs_budget}-epoch budget "
        f"({s.epochs_saved_pct:.1f}% saved)",
        f"Best validation accuracy: {s.best_val_acc:.2f}% (model {s.best_model})"
        if s.best_model is not None
        else "Best validation accuracy: none (no model trained without failing)",
    ]
    if s.wall_seconds is not None:
        lines.append(f"Wall time: {s.wall_seconds:.1f} s")
    lines.append("Pareto set (fitness handed to the NAS vs MFLOPs per sample):")
    lines.append(
        f"  {'model':>5}  {'fitness %':>9}  {'best val %':>10}  {'MFLOPs':>9}  {'params':>8}"
    )
    if s.pareto.empty:
        lines.append("  (empty: no model trained without failing)")
    for _, r in s.pareto.iterrows():
        lines.append(
            f"  {int(r['model_id']):>5}  {r['fitness']:>9.2f}  {r['best_val_acc']:>10.2f}  "
            f"{r['mflops']:>9.3f}  {int(r['params']):>8}"
        )
    lines.append(f"Load it: pandas.read_csv('{s.run_dir / 'epochs.csv'}')")
    return "\n".join(lines)
