"""Terminal progress for a search: one line per epoch and per finished model.

Plain lines rather than a live widget so the output reads the same in a terminal, a log
file, a Prefect log or CI.
"""

from __future__ import annotations

import json
import sys
import time
from typing import Any, TextIO

from a4nn.types import Candidate, Result


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
        pred = row.get("prediction")
        pred_s = f"{pred:6.2f}" if isinstance(pred, float) and pred == pred else "   -  "
        self._print(
            f"  model {cand.model_id:>4} epoch {int(row['epoch']):>3}: "
            f"val {row['val_acc']:6.2f}%  pred {pred_s}"
            + ("  converged" if row.get("converged") else "")
        )

    def on_result(self, cand: Candidate, res: Result) -> None:
        self.models_done += 1
        if not res.failed and (self.best != self.best or res.best_val_acc > self.best):
            self.best = res.best_val_acc
        what = f"FAILED ({res.reason})" if res.failed else res.status
        elapsed = time.perf_counter() - self.t0
        self._print(
            f"[model {cand.model_id:>4}] {what}: fitness {res.fitness:.2f}, "
            f"{res.epochs_trained}/{self.epochs_budget} epochs, {res.mflops:.2f} MFLOPs | "
            f"{self.models_done} models, {self.epochs_done} epochs, best {self.best:.2f}% "
            f"| {elapsed:.0f}s"
        )
