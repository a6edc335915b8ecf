"""Peer early-stopping methods replayed on the same curves: Optuna pruners, DeepHyper stoppers.

They come from the optional `bench` extra (`pip install -e '.[bench]'`). A pruner does not
predict, so the fitness it hands on is the last value it saw. Models are replayed one
after another in training order, as our engine is; each method sees only earlier models.
"""

from __future__ import annotations

import math
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

from engine.replay import Curves, summarize  # noqa: E402


def _walk(curves: Curves):
    """Per model (in order of first appearance): its key and finite (epoch, value) points."""
    for key in curves.models():
        epochs, values = curves.curve(key)
        yield key, [(e, v) for e, v in zip(epochs, values, strict=True) if math.isfinite(v)]


def optuna_pruners(budget: int) -> dict[str, Callable[[], Any]]:
    import optuna

    return {
        "optuna-median": lambda: optuna.pruners.MedianPruner(n_startup_trials=5),
        "optuna-percentile25": lambda: optuna.pruners.PercentilePruner(25.0, n_startup_trials=5),
        "optuna-sha": lambda: optuna.pruners.SuccessiveHalvingPruner(),
        "optuna-hyperband": lambda: optuna.pruners.HyperbandPruner(
            min_resource=1, max_resource=budget
        ),
    }


def replay_optuna(curves: Curves, name: str, make_pruner: Callable[[], Any]) -> dict:
    import optuna

    optuna.logging.set_verbosity(optuna.logging.WARNING)
    study = optuna.create_study(direction="maximize", pruner=make_pruner())
    fitness, used, stopped, seconds = {}, {}, {}, []
    for key, pts in _walk(curves):
        trial = study.ask()
        n, last, pruned = 0, float("nan"), False
        for e, v in pts:
            t0 = time.perf_counter()
            trial.report(v, step=e)
            pruned = trial.should_prune()
            seconds.append(time.perf_counter() - t0)
            n, last = n + 1, v
            if pruned:
                break
        if pruned:
            study.tell(trial, state=optuna.trial.TrialState.PRUNED)
        else:
            study.tell(
                trial,
                last if math.isfinite(last) else None,
                state=None if math.isfinite(last) else optuna.trial.TrialState.FAIL,
            )
        fitness[key], used[key], stopped[key] = last, n, pruned
    return summarize(curves, fitness, used, stopped, seconds, name=name)


def deephyper_stoppers(budget: int) -> dict[str, Callable[[], Any]]:
    from deephyper.stopper import LCModelStopper, MedianStopper
    from deephyper.stopper import SuccessiveHalvingStopper as ASHAStopper  # ASHA in 0.13

    return {
        "deephyper-lcmodel": lambda: LCModelStopper(max_steps=budget, random_state=0),
        "deephyper-asha": lambda: ASHAStopper(max_steps=budget),
        "deephyper-median": lambda: MedianStopper(max_steps=budget),
    }


def replay_deephyper(curves: Curves, name: str, make_stopper: Callable[[], Any]) -> dict:
    from deephyper.evaluator import RunningJob
    from deephyper.evaluator.storage import MemoryStorage

    storage = MemoryStorage()
    storage.connect()
    search_id = storage.create_new_search()
    fitness, used, stopped, seconds = {}, {}, {}, []
    for key, pts in _walk(curves):
        job_id = storage.create_new_job(search_id)
        stopper = make_stopper()
        job = RunningJob(id=job_id, parameters={}, storage=storage, stopper=stopper)
        stopper.job = job
        n, last, early = 0, float("nan"), False
        for i, (_, v) in enumerate(pts):
            t0 = time.perf_counter()
            stopper.observe(budget=i + 1, objective=v)
            halt = stopper.stop()
            seconds.append(time.perf_counter() - t0)
            n, last = n + 1, v
            if halt:
                early = i + 1 < len(pts)
                break
        storage.store_job_out(job_id, last)
        fitness[key], used[key], stopped[key] = last, n, early
    return summarize(curves, fitness, used, stopped, seconds, name=name)
