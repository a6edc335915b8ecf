"""Benchmark: the paper preset on the published 1e15 curves (issue 2, item 7).

1. Replays the standalone curves (`1gpu_1e15_training_data.csv`, every model trained to 25
   epochs) through `paper` and checks the saving against the in-situ run (1,647 of 2,500
   epochs used, 34.1% saved; pass within +-3 points).
2. Checks the engine against what it did in situ: each epoch of the engine-on run
   (`1gpu_1e15_stopping_training_data.csv`) recorded the engine's prediction; we refit the
   same history and compare, and compare the stop epochs recorded in the standalone file.

Writes benchmarks/engine/RESULTS_paper.json and RESULTS_paper.md. Run:
    .venv/bin/python benchmarks/engine/replay_paper.py
"""

from __future__ import annotations

import csv
import math
import platform
import sys
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
ROOT = HERE.parents[1]
sys.path.insert(0, str(ROOT))

from engine import Engine, read_curves, replay, to_json  # noqa: E402

DATA = ROOT / "benchmarks" / "data" / "a4nn-icpp23"
IN_SITU_SAVED = 100 * (2500 - 1647) / 2500


def in_situ_predictions() -> dict:
    """Refit every epoch of the engine-on run and compare with its recorded predictions."""
    path = DATA / "1gpu_1e15_stopping_training_data.csv"
    rows = list(csv.DictReader(path.open(newline="")))
    eng = Engine.from_preset("paper")
    tr = None
    n = agree = both_inf = conv_agree = 0
    for row in rows:
        if row["epoch"] == "0":
            tr = eng.start(len(rows))
        d = tr.observe(int(row["epoch"]), float(row["val_accs"]))
        rec = float(row["predictions"])
        conv_agree += d.converged == (row["converged"] == "True")
        if int(row["epoch"]) < 3:
            continue
        n += 1
        ours = d.prediction if d.prediction is not None else math.inf
        if math.isinf(rec) and math.isinf(ours):
            both_inf += 1
        elif abs(ours - rec) <= 1e-3:
            agree += 1
    return {
        "epochs_compared": n,
        "predictions_within_1e-3": agree,
        "failed_fits_both": both_inf,
        "converged_flags_agree": conv_agree,
        "epochs": len(rows),
    }


def recorded_stops(report: dict) -> dict:
    """Stop epochs of our replay against the `converged` flags recorded in the same file."""
    path = DATA / "1gpu_1e15_training_data.csv"
    first: dict[int, int] = {}
    m = -1
    for row in csv.DictReader(path.open(newline="")):
        m += int(row["epoch"] == "0")
        if row["converged"] == "True":
            first.setdefault(m, int(row["epoch"]))
    same = sum(pm["stop_epoch"] == first.get(i) for i, pm in enumerate(report["per_model"]))
    return {"models": len(report["per_model"]), "same_stop_epoch": same}


def main() -> None:
    t0 = time.time()
    curves = read_curves(DATA / "1gpu_1e15_training_data.csv")
    rep = replay(curves, "paper", details=True)
    stops = recorded_stops(rep)
    insitu = in_situ_predictions()
    rep.pop("per_model")
    ok = abs(rep["epochs_saved_pct"] - IN_SITU_SAVED) <= 3.0
    out = {
        "machine": f"{platform.node()} {platform.processor() or platform.machine()}, "
        f"Python {platform.python_version()}",
        "command": ".venv/bin/python benchmarks/engine/replay_paper.py",
        "replay": rep,
        "in_situ_saved_pct": IN_SITU_SAVED,
        "check_within_3_points": ok,
        "recorded_stops": stops,
        "in_situ_predictions": insitu,
        "wall_seconds": time.time() - t0,
    }
    (HERE / "RESULTS_paper.json").write_text(to_json(out) + "\n")
    r = rep
    md = f"""# Paper preset on the published 1e15 curves

Command: `{out["command"]}` on {out["machine"]} (2 cores), {out["wall_seconds"]:.0f} s.

| metric | replay of `1gpu_1e15_training_data.csv` | in situ (paper's run) |
|---|---|---|
| models | {r["models"]} | 100 |
| epochs used / budget | {r["epochs_used"]} / {r["epochs_budget"]} | 1,647 / 2,500 |
| epochs saved | {r["epochs_saved_pct"]:.1f}% | {IN_SITU_SAVED:.1f}% |
| models stopped | {r["models_stopped"]} | 69 |
| MAE on stopped models | {r["mae_stopped"]:.2f} points (bias {r["bias_stopped"]:+.2f}) | |
| Kendall tau / tau_eps | {r["kendall_tau"]:.3f} / {r["kendall_tau_eps"]:.3f} | |
| top-10 overlap | {r["top10_overlap"]:.2f} | |
| median ms per call | {r["ms_per_call"]:.1f} | 10.3 (median of `penguin_times`) |

Check (issue 2, item 7): saving within +-3 points of 34.1%: **{"PASS" if ok else "FAIL"}**
({r["epochs_saved_pct"]:.1f}%). The in-situ run is a different search trajectory (the NAS
saw the engine's fitness), so the saving is compared, not the models.

Faithfulness to the engine that ran in situ:
- stop epochs: on {stops["same_stop_epoch"]} of {stops["models"]} models our stop epoch equals
  the first epoch flagged `converged` in the standalone file (the engine ran there too);
- predictions: refitting each epoch of the engine-on run,
  {insitu["predictions_within_1e-3"]} of {insitu["epochs_compared"]} epochs (from epoch 3 on)
  match the recorded prediction within 1e-3 and {insitu["failed_fits_both"]} are failed
  fits in both; `converged` flags agree on {insitu["converged_flags_agree"]} of
  {insitu["epochs"]} epochs.

This pins down the paper's conventions: x is the 0-based epoch, the prediction is F(25)
(x = e_pred, not e_pred - 1), the first prediction comes at x = C_min = 3 (4 points), the
fit is scipy's bounded least squares from curve_fit's default start, and a failed fit
enters the prediction list as +inf, blocking convergence for the next N predictions.
"""
    (HERE / "RESULTS_paper.md").write_text(md)
    print(md)


if __name__ == "__main__":
    main()
