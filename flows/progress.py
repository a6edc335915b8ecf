"""Live terminal view of a search running on a Dask cluster.

Workers publish small events (`start`, `epoch`) on the Dask event topic `a4nn-progress`
(`publish`); the flow process subscribes and keeps a `ProgressBoard`: per worker slot
(GPU) the model it trains, its epoch against the budget, its validation accuracy and the
engine's prediction as the NAS would get it (one outside 0-100 % is shown as
"rejected (101.29)": the engine never hands it on), models done and running,
epochs trained against the budget of the finished models, and the best accuracy so far.
On a terminal it redraws in place (rich Live); elsewhere (a log file, CI, a Prefect log)
it prints one line per finished model, so logs stay readable.
"""

from __future__ import annotations

import contextlib
import math
import os
import sys
import threading
import time
from dataclasses import dataclass
from typing import Any, TextIO

from a4nn.progress import best_text, prediction_text
from a4nn.types import Candidate, Result

TOPIC = "a4nn-progress"


def publish(kind: str, model_id: int, **fields: Any) -> None:
    """Send a progress event from inside a Dask worker; a no-op anywhere else."""
    try:
        from distributed import get_worker

        worker = get_worker()
    except (ImportError, ValueError):
        return
    gpu = os.environ.get("CUDA_VISIBLE_DEVICES") or "cpu"
    msg = {"kind": kind, "model_id": int(model_id), "worker": str(worker.name), "gpu": gpu}
    msg.update({k: v for k, v in fields.items() if isinstance(v, int | float | str | bool)})
    with contextlib.suppress(Exception):  # progress must never fail a training task
        worker.log_event(TOPIC, msg)


def as_float(value: Any) -> float:
    """A float from an event field; NaN for anything missing or not a number."""
    try:
        return float(value)
    except (TypeError, ValueError):
        return float("nan")


@dataclass
class Slot:
    worker: str
    gpu: str
    model_id: int | None = None
    epoch: int = -1
    val_acc: float = float("nan")
    prediction: float = float("nan")


class ProgressBoard:
    """The search's state as the flow sees it; `render()` draws it with rich."""

    def __init__(
        self,
        epochs_budget: int,
        total_models: int | None = None,
        stream: TextIO | None = None,
        live: bool | None = None,
    ):
        self.epochs_budget = epochs_budget
        self.total_models = total_models
        self.stream = stream or sys.stdout
        self.live_enabled = self.stream.isatty() if live is None else live
        self.slots: dict[str, Slot] = {}
        self.running: set[int] = set()  # started on a worker
        self.queued: set[int] = set()  # submitted, waiting for a free slot
        self.submitted = 0
        self.done = 0
        self.failed = 0
        self.epochs_trained = 0
        self.failed_epochs = 0  # epochs the failed models trained: their whole budget
        self.best = float("nan")
        self.best_model: int | None = None
        self.t0 = time.perf_counter()
        self._lock = threading.Lock()
        self._live: Any = None

    # -- events --------------------------------------------------------------------------
    def on_submit(self, cand: Candidate) -> None:
        with self._lock:
            self.submitted += 1
            self.queued.add(cand.model_id)
        self.refresh()

    def on_event(self, event: Any) -> None:
        """A worker event; accepts distributed's `(timestamp, msg)` or the msg itself."""
        msg = event[1] if isinstance(event, tuple) and len(event) == 2 else event
        if not isinstance(msg, dict) or "worker" not in msg:
            return
        with self._lock:
            slot = self.slots.setdefault(msg["worker"], Slot(msg["worker"], msg.get("gpu", "")))
            slot.gpu = msg.get("gpu", slot.gpu)
            if msg.get("kind") == "start":
                self.queued.discard(msg["model_id"])
                self.running.add(msg["model_id"])
                slot.model_id = msg["model_id"]
                slot.epoch = int(msg.get("resume_epoch", 0)) - 1
                slot.val_acc = slot.prediction = float("nan")
            elif msg.get("kind") == "epoch":
                slot.model_id = msg["model_id"]
                slot.epoch = int(msg.get("epoch", -1))
                slot.val_acc = as_float(msg.get("val_acc"))
                slot.prediction = as_float(msg.get("prediction"))
        self.refresh()

    def on_result(self, cand: Candidate, res: Result) -> None:
        with self._lock:
            self.done += 1
            self.running.discard(cand.model_id)
            self.queued.discard(cand.model_id)
            self.epochs_trained += res.epochs_trained
            if res.failed:
                self.failed += 1
                self.failed_epochs += res.epochs_trained
            elif math.isfinite(res.best_val_acc) and not res.best_val_acc <= self.best:
                self.best, self.best_model = res.best_val_acc, res.model_id
            for slot in self.slots.values():
                if slot.model_id == cand.model_id:
                    slot.model_id = None
        if not self.live_enabled:
            print(self.result_line(cand, res), file=self.stream, flush=True)
        self.refresh()

    # -- text ----------------------------------------------------------------------------
    def headline(self) -> str:
        total = f"/{self.total_models}" if self.total_models else ""
        # a failed model's unused epochs are not the engine's savings: its budget is the
        # epochs it trained (as in the run's summary, `a4nn.summary`)
        budget = (self.done - self.failed) * self.epochs_budget + self.failed_epochs
        saved = 100.0 * (1 - self.epochs_trained / budget) if budget else 0.0
        best = best_text(self.best, self.best_model)
        return (
            f"models done {self.done}{total} ({self.failed} failed), running {len(self.running)}, "
            f"queued {len(self.queued)} | "
            f"epochs {self.epochs_trained}/{budget} of budget ({saved:.0f}% saved) | "
            f"best {best} | {time.perf_counter() - self.t0:.0f}s"
        )

    def result_line(self, cand: Candidate, res: Result) -> str:
        what = f"FAILED ({res.reason})" if res.failed else res.status
        return (
            f"[model {cand.model_id:>4} | gen {cand.generation}] {what}: fitness "
            f"{res.fitness:.2f}, {res.epochs_trained}/{self.epochs_budget} epochs | "
            + self.headline()
        )

    def render(self) -> Any:
        from rich.console import Group
        from rich.table import Table
        from rich.text import Text

        table = Table(box=None, pad_edge=False)
        for col in ("worker", "GPU", "model", "epoch", "val acc", "predicted (to the NAS)"):
            table.add_column(col, justify="left" if col == "worker" else "right")
        with self._lock:
            for slot in sorted(self.slots.values(), key=lambda s: s.worker):
                busy = slot.model_id is not None
                table.add_row(
                    slot.worker,
                    slot.gpu,
                    str(slot.model_id) if busy else "idle",
                    f"{slot.epoch + 1}/{self.epochs_budget}" if busy else "",
                    f"{slot.val_acc:.2f}" if busy and slot.val_acc == slot.val_acc else "",
                    prediction_text(slot.prediction)
                    if busy and slot.val_acc == slot.val_acc
                    else "",
                )
            head = self.headline()
        return Group(Text(head, style="bold"), table)

    # -- lifecycle -----------------------------------------------------------------------
    def refresh(self) -> None:
        if self._live is not None:
            self._live.update(self.render())

    def __enter__(self) -> ProgressBoard:
        if self.live_enabled:
            from rich.console import Console
            from rich.live import Live

            self._live = Live(
                self.render(), console=Console(file=self.stream), refresh_per_second=4
            )
            self._live.__enter__()
        return self

    def __exit__(self, *exc: Any) -> None:
        if self._live is not None:
            self._live.update(self.render())
            self._live.__exit__(*exc)
            self._live = None
