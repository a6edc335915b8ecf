"""The ask/tell protocol every NAS adapter implements, and helpers they share.

The workflow drives an adapter like this, whatever the NAS method:

    while not adapter.done():
        cands = adapter.ask()          # or ask(1) whenever one worker frees up
        ...train them...
        adapter.tell(results)          # any order, any grouping
        save(adapter.state_dict())     # JSON; load_state_dict() resumes exactly

`ask` returns an empty list when the adapter cannot propose anything right now: it is
waiting for results (e.g. the end of a generation) or its budget is spent.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any, Protocol, runtime_checkable

import numpy as np
from pymoo.util.nds.non_dominated_sorting import NonDominatedSorting

from a4nn.types import Candidate, Result


class AdapterError(ValueError):
    """Misuse of an adapter (unknown result, mismatched state...), with what to do."""


@runtime_checkable
class Adapter(Protocol):
    """A NAS method behind ask/tell (see the module docstring)."""

    name: str

    def ask(self, n: int | None = None) -> list[Candidate]:
        """Up to `n` new candidates (None: the next natural batch, e.g. a generation)."""
        ...

    def tell(self, results: list[Result]) -> None:
        """Results of previously asked candidates, in any order."""
        ...

    def done(self) -> bool:
        """True once the whole budget has been asked AND told."""
        ...

    def state_dict(self) -> dict[str, Any]:
        """JSON-serializable state (RNG, population, counters) for an exact resume."""
        ...

    def load_state_dict(self, state: dict[str, Any]) -> None:
        """Restore a `state_dict()`; the adapter then proposes what it would have."""
        ...

    def pareto(self) -> list[Result]:
        """Non-dominated successful results so far (fitness max, mflops min)."""
        ...


def usable(result: Result) -> bool:
    """A result that may take part in selection: not failed, finite objectives."""
    return (
        not result.failed
        and math.isfinite(float(result.fitness))
        and math.isfinite(float(result.mflops))
    )


def objectives(results: Sequence[Result]) -> np.ndarray:
    """Minimization objectives, one row per result: (-fitness, mflops)."""
    return np.array([[-float(r.fitness), float(r.mflops)] for r in results], dtype=float).reshape(
        -1, 2
    )


def pareto_results(results: Sequence[Result]) -> list[Result]:
    """The non-dominated usable results (pymoo's sorting), cheapest first."""
    pool = [r for r in results if usable(r)]
    if not pool:
        return []
    front = NonDominatedSorting().do(objectives(pool), only_non_dominated_front=True)
    return sorted((pool[i] for i in front), key=lambda r: (r.mflops, -r.fitness, r.model_id))


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
