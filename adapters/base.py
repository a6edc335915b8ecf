"""Helpers every NAS adapter shares: objective matrices, the Pareto set, strict-JSON state.

The protocol itself (`Adapter`: ask/tell/done/state, its `mode` and `objectives`) is
`a4nn.adapter.Adapter`, re-exported here.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

import numpy as np
from pymoo.util.nds.non_dominated_sorting import NonDominatedSorting

from a4nn.adapter import Adapter, Mode
from a4nn.types import Objective, Result

__all__ = [
    "Adapter",
    "AdapterError",
    "FITNESS_AND_MFLOPS",
    "Mode",
    "json_float",
    "jsonable",
    "objectives",
    "pareto_results",
    "result_from_state",
    "usable",
]

FITNESS_AND_MFLOPS = (Objective("fitness", "max"), Objective("mflops", "min"))
"""The A4NN paper's objectives: maximize the fitness, minimize the FLOPs."""


class AdapterError(ValueError):
    """Misuse of an adapter (unknown result, mismatched state...), with what to do."""


def usable(result: Result, objs: Sequence[Objective] = FITNESS_AND_MFLOPS) -> bool:
    """A result that may take part in selection: not failed, finite objectives."""
    return not result.failed and all(math.isfinite(result.metric(o.name)) for o in objs)


def objectives(
    results: Sequence[Result], objs: Sequence[Objective] = FITNESS_AND_MFLOPS
) -> np.ndarray:
    """Minimization objectives, one row per result (a maximized metric negated)."""
    rows = [[o.minimized(r.metric(o.name)) for o in objs] for r in results]
    return np.array(rows, dtype=float).reshape(-1, len(objs))


def pareto_results(
    results: Sequence[Result], objs: Sequence[Objective] = FITNESS_AND_MFLOPS
) -> list[Result]:
    """The non-dominated usable results (pymoo's sorting), by the last objective first."""
    pool = [r for r in results if usable(r, objs)]
    if not pool:
        return []
    front = NonDominatedSorting().do(objectives(pool, objs), only_non_dominated_front=True)
    return sorted(
        (pool[i] for i in front),
        key=lambda r: (*(o.minimized(r.metric(o.name)) for o in reversed(objs)), r.model_id),
    )


def json_float(x: float) -> float | str:
    """A float that strict JSON accepts: inf/nan become the strings 'inf', '-inf', 'nan'."""
    x = float(x)
    return x if math.isfinite(x) else str(x)


def jsonable(value: Any) -> Any:
    """`value` with every non-finite float replaced by its string (strict JSON, allow_nan=False)."""
    if isinstance(value, float | np.floating):
        return json_float(float(value))
    if isinstance(value, np.integer):
        return int(value)
    if isinstance(value, dict):
        return {str(k): jsonable(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [jsonable(v) for v in value]
    return value


_RESULT_FLOATS = ("fitness", "mflops", "last_val_acc", "best_val_acc", "train_seconds")


def result_from_state(d: dict[str, Any]) -> Result:
    """Inverse of `jsonable(result.to_dict())`."""
    d = dict(d)
    for k in _RESULT_FLOATS:
        if k in d:
            d[k] = float(d[k])
    return Result.from_dict(d)
