"""Terminal progress for a search: one line per epoch and per finished model.

Plain lines rather than a live widget so the output reads the same in a terminal, a log
file, a Prefect log or CI. An epoch line shows the epoch against the budget (1-based),
the validation accuracy and the engine's prediction as the NAS would get it
(`prediction_text`: a prediction outside 0-100 % is marked "rejected").
"""

from __future__ import annotations

import json
import math
import sys
import time
from typing import Any, TextIO

from a4nn.types import Candidate, Result

VALUE_RANGE = (0.0, 100.0)  # accuracy in percent: the engine rejects predictions outside


def prediction_text(
    prediction: Any, value_range: tuple[float | None, float | None] = VALUE_RANGE
) -> str:
    """What the engine would hand the NAS, as the progress shows it.

    A prediction inside the fitness range is shown as is ("97.50"): were its predictions
    to converge, that is the fitness the NAS gets. One outside the range (the paper's
    curve fit easily overshoots: "101.29") is never handed on; it is shown as
    "rejected (101.29)". No prediction yet (the first epochs, a failed fit): "-".
    """
    try:
        p = float(prediction)
    except (TypeError, ValueError):
        return "-"
    if not math.isfinite(p):
        return "-"
    lo, hi = value_range
    if (lo is not None and p < lo) or (hi is not None and p > hi):
        shown = f"{p:.2f}" if abs(p) < 1e6 else f"{p:.3g}"
        return f"rejected ({shown})"
    return f"{p:.2f}"


def best_text(best: float, model_id: int | None = None) -> str:
    """The best accuracy so far, as the progress shows it: over the models that trained
    without failing; "none yet" while there is none (never "nan%")."""
    if not math.isfinite(best):
        return "none yet"
    return f"{best:.2f}%" + (f" (model {model_id})" if model_id is not None else "")


class ProgressReporter:
    """Prints what the search is doing; the driver calls the `on_*` hooks."""

    def __init__(self, epochs_budget: int, stream: TextIO | None = None, per_epoch: bool = True):
        self.epochs_budget = epochs_budget
        self.stream = stream or sys.stdout
        self.per_epoch = per_epoch
        self.models_done = 0
        self.epochs_done = 0
        self.best = float("nan")
        self.t0 = time.perf_counter()

    def _print(self, msg: str) -> None:
        print(msg, file=self.stream, flush=True)

    def on_start(self, cand: Candidate) -> None:
        self._print(
            f"[model {cand.model_id:>4} | gen {cand.generation}] training {cand.space} {json.dumps(cand.arch)}"
        )

    def on_epoch(self, cand: Candidate, row: dict[str, Any]) -> None:
        self.epochs_done += 1
        if not self.per_epoch:
            return
        pred_s = prediction_text(row.get("prediction"))
        self._print(
            f"  model {cand.model_id:>4} epoch {int(row['epoch']) + 1:>3}/{self.epochs_budget}: "
            f"val {row['val_acc']:6.2f}%  predicted {pred_s:>6}"
            + ("  -> converged: stopped early" if row.get("converged") else "")
        )

    def on_result(self, cand: Candidate, res: Result) -> None:
        self.models_done += 1
        acc = res.best_val_acc
        if not res.failed and math.isfinite(acc) and not acc <= self.best:  # NaN best: none yet
            self.best = acc  # a failed model's accuracy is no accuracy
        what = f"FAILED ({res.reason})" if res.failed else res.status
        elapsed = time.perf_counter() - self.t0
        self._print(
            f"[model {cand.model_id:>4}] {what}: fitness {res.fitness:.2f}, "
            f"{res.epochs_trained}/{self.epochs_budget} epochs, {res.mflops:.2f} MFLOPs | "
            f"{self.models_done} models, {self.epochs_done} epochs, best {best_text(self.best)} "
            f"| {elapsed:.0f}s"
        )
