"""The engine each model trains with: one that has learned exactly the models finished before it.

An engine with a "previous builds" prior learns from finished models. For a search to give
the same result whichever runner trains it (the plain loop, or the Prefect flow over Dask
workers) and whether or not it was interrupted, what a model's engine knew must depend only
on *which* models had finished when it was submitted (`prior_ids`, completion order), not
on the process that trains it or on what that process trained before.

`EngineFeed` keeps one base engine, teaches it the recorded curves of `prior_ids` it has not
seen (from `models/<id>/epochs.csv` and `model.json`), and hands out a copy to train with.
A finished model is taught with what its own engine decided in situ (stopped early or not)
and the predictions it logged (`engine_log` in `model.json`), so the base engine ends up in
the state `Engine.finish` would have left it in. The paper's engine learns nothing across
models: it is handed out as is.
"""

from __future__ import annotations

import copy
from collections.abc import Callable
from typing import Any

from engine import Engine
from lineage.run_dir import RunDir


def engine_learns(engine: Any) -> bool:
    """Whether `engine.finish` teaches the engine anything (the paper's method: no)."""
    method = getattr(getattr(engine, "config", None), "method", "paper")
    return method not in ("paper", "off")


def feed_finished_model(engine: Engine, run: RunDir, model_id: int) -> None:
    """Teach `engine` one finished model's recorded curve (failed models teach nothing)."""
    md = run.model(model_id)
    res = md.result()
    if res is None or res.failed:
        return
    rows = md.read_epochs()
    meta = md.read_meta()
    engine.learn_curve(
        [int(r["epoch"]) for r in rows],
        [float(r["val_acc"]) for r in rows],
        stopped=res.status == "converged",
        log=meta.get("engine_log") or None,
        model_id=model_id,
        features=meta.get("choices"),  # the architecture, for an architecture-aware prior
    )


class EngineFeed:
    """A base engine fed with finished models, and a copy of it for each model to train."""

    def __init__(self, make_engine: Callable[[], Engine]) -> None:
        self._make = make_engine
        self.engine = make_engine()
        self.fed: list[int] = []

    def engine_for(self, run: RunDir, prior_ids: list[int]) -> Engine:
        """The engine to train the next model with, having learned `prior_ids` (in order)."""
        if not engine_learns(self.engine):
            return self.engine
        if self.fed != list(prior_ids[: len(self.fed)]):  # another history: start again
            self.engine, self.fed = self._make(), []
        for mid in prior_ids[len(self.fed) :]:
            feed_finished_model(self.engine, run, mid)
            self.fed.append(mid)
        return copy.deepcopy(self.engine)
