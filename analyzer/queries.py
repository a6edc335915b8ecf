"""Queries over the `models` table: filters, top-k, the Pareto set and its hypervolume.

Accuracy is in percent and maximized; cost is `mflops` (forward MFLOPs per sample) and
minimized. By default a model's accuracy is its `fitness`, what the NAS was told (the
engine's converged prediction, else the last validation accuracy); pass
`acc="best_val_acc"` or `"last_val_acc"` to rank by what was measured instead.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

import numpy as np
import pandas as pd

from analyzer.architectures import matches

ACCURACY_COLUMNS = ("fitness", "best_val_acc", "last_val_acc")


def _check_acc(models: pd.DataFrame, acc: str) -> None:
    if acc not in models.columns:
        raise KeyError(f"no column {acc!r} in the models table; use one of {ACCURACY_COLUMNS}")


def ok_models(models: pd.DataFrame) -> pd.DataFrame:
    """Models that did not fail."""
    if "status" not in models:
        return models
    return models[models["status"] != "failed"]


def select(
    models: pd.DataFrame,
    *,
    min_acc: float | None = None,
    max_acc: float | None = None,
    acc: str = "fitness",
    min_mflops: float | None = None,
    max_mflops: float | None = None,
    termination_epoch: int | Sequence[int] | None = None,
    min_termination_epoch: int | None = None,
    max_termination_epoch: int | None = None,
    status: str | Sequence[str] | None = None,
    adapter: str | Sequence[str] | None = None,
    space: str | None = None,
    run: str | Sequence[str] | None = None,
    pattern: str | Callable[[tuple[int, ...]], bool] | None = None,
    include_failed: bool = False,
) -> pd.DataFrame:
    """Models by attributes; every given condition must hold.

    `adapter` matches the model's `proposer`; `pattern` its choice vector (see
    `analyzer.architectures.matches`: `"1?1????|???????|0??????"`, or a callable).
    """
    _check_acc(models, acc)
    m = models if include_failed else ok_models(models)
    keep = pd.Series(True, index=m.index)

    def one_of(col: str, value: Any) -> None:
        nonlocal keep
        values = [value] if isinstance(value, str | int | np.integer) else list(value)
        keep &= m[col].isin(values)

    if min_acc is not None:
        keep &= m[acc] >= min_acc
    if max_acc is not None:
        keep &= m[acc] <= max_acc
    if min_mflops is not None:
        keep &= m["mflops"] >= min_mflops
    if max_mflops is not None:
        keep &= m["mflops"] <= max_mflops
    if termination_epoch is not None:
        one_of("termination_epoch", termination_epoch)
    if min_termination_epoch is not None:
        keep &= m["termination_epoch"] >= min_termination_epoch
    if max_termination_epoch is not None:
        keep &= m["termination_epoch"] <= max_termination_epoch
    if status is not None:
        one_of("status", status)
    if adapter is not None:
        one_of("proposer", adapter)
    if space is not None:
        keep &= m["space"] == space
    if run is not None:
        one_of("run", run)
    if pattern is not None:
        if isinstance(pattern, str):
            n = len([c for c in pattern if c not in " |,[]"])
            bad = sorted({c for c in pattern if c not in " |,[]?." and not c.isdigit()})
            if bad:
                raise ValueError(f"pattern {pattern!r}: use digits and ? only, not {bad}")
            lengths = {len(c) for c in m["choices"] if isinstance(c, tuple)}
            if lengths and n not in lengths:
                raise ValueError(
                    f"pattern {pattern!r} has {n} positions; the choice vectors have "
                    f"{sorted(lengths)}"
                )
        keep &= m["choices"].map(lambda c: matches(pattern, c)).astype(bool)
    return m[keep]


def top_k(models: pd.DataFrame, k: int = 10, acc: str = "fitness", by_run: bool = False):
    """The k most accurate models (ties: fewer MFLOPs first); per run with `by_run`."""
    _check_acc(models, acc)
    m = ok_models(models).dropna(subset=[acc])
    order = m.sort_values([acc, "mflops"], ascending=[False, True], na_position="last")
    if by_run:
        return order.groupby("run", sort=False).head(k)
    return order.head(k)


def pareto(models: pd.DataFrame, acc: str = "fitness", by_run: bool = True) -> pd.DataFrame:
    """The non-dominated models (accuracy up, MFLOPs down), sorted by MFLOPs; per run
    unless `by_run=False`. A model is dominated when another is at least as accurate with
    no more MFLOPs, and strictly better in one; of identical points all are kept."""
    _check_acc(models, acc)
    m = ok_models(models).dropna(subset=[acc, "mflops"])
    if by_run and "run" in m and m["run"].nunique() > 1:
        parts = [pareto(g, acc, by_run=False) for _, g in m.groupby("run", sort=False)]
        return pd.concat(parts)
    if m.empty:
        return m
    a, f = m[acc].to_numpy(float), m["mflops"].to_numpy(float)
    dominated = np.zeros(len(m), bool)
    for i in range(len(m)):
        better_eq = (a >= a[i]) & (f <= f[i])
        strictly = (a > a[i]) | (f < f[i])
        dominated[i] = bool(np.any(better_eq & strictly))
    return m[~dominated].sort_values(["mflops", acc], ascending=[True, False])


def reference_point(*model_tables: pd.DataFrame, acc_ref: float = 0.0) -> tuple[float, float]:
    """A common reference point for hypervolumes of several runs: accuracy `acc_ref` and
    the largest MFLOPs of any model given (so every model counts)."""
    flops = [t["mflops"].max() for t in model_tables if len(t)]
    return (acc_ref, float(np.nanmax(flops)) if flops else float("nan"))


def hypervolume(
    models: pd.DataFrame,
    ref: tuple[float, float] | None = None,
    acc: str = "fitness",
) -> float:
    """Area dominated by the Pareto set in the (MFLOPs, accuracy) plane, bounded by the
    reference point `ref = (accuracy, MFLOPs)`: the points with at most `ref` MFLOPs and
    at least `ref` accuracy that some model is at least as good as. Units: % x MFLOPs.

    State the reference point with the number (`reference_point` gives a common one for
    several runs: accuracy 0 and the largest MFLOPs). Models beyond it do not count.
    """
    _check_acc(models, acc)
    if ref is None:
        ref = reference_point(models)
    acc_ref, flops_ref = ref
    front = pareto(models, acc, by_run=False)
    pts = sorted(
        (float(f), float(a))
        for f, a in zip(front["mflops"], front[acc], strict=True)
        if f <= flops_ref and a >= acc_ref
    )
    area, best = 0.0, acc_ref
    # sweep MFLOPs upward; the staircase's height is the best accuracy seen so far
    for i, (f, a) in enumerate(pts):
        best = max(best, a)
        nxt = pts[i + 1][0] if i + 1 < len(pts) else flops_ref
        area += (nxt - f) * (best - acc_ref)
    return area


def hypervolumes(models: pd.DataFrame, ref: tuple[float, float] | None = None, acc="fitness"):
    """Per run: hypervolume with a common reference point (columns run, hypervolume,
    ref_acc, ref_mflops, normalized = the fraction of the reference box)."""
    ref = ref or reference_point(ok_models(models), acc_ref=0.0)
    rows = []
    for run, group in models.groupby("run", sort=False):
        hv = hypervolume(group, ref, acc)
        box = ref[1] * (100.0 - ref[0])
        rows.append(
            {
                "run": run,
                "hypervolume": hv,
                "normalized": hv / box if box > 0 else float("nan"),
                "ref_acc": ref[0],
                "ref_mflops": ref[1],
            }
        )
    return pd.DataFrame(rows)
