"""What a predictor hands the engine after one epoch (`Prediction`), and what a predictor is.

Kept apart from the engine and the predictors so that both can import it without importing
each other.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Protocol

import numpy as np


@dataclass
class Prediction:
    """What a predictor says about one model after one epoch."""

    value: float  # +inf when no valid prediction could be made
    std: float | None = None  # predictive standard deviation (fitness units), if known
    params: dict[str, float] | None = None
    family: str | None = None
    note: str = ""
    p_within: float | None = None  # P(|final - value| <= delta), if the predictor knows it
    source: str | None = None  # what made it: "paper", "families" or "prior" (None: failed)
    pool: int | None = None  # models in the previous-builds pool (None: no prior configured)
    # P(|final - value| <= d) for any tolerance d (fitness units), calibrated like p_within
    p_within_at: Callable[[float], float] | None = None
    pool_view: Any = None  # the pool's final values (quantiles, CDF), for a scaled tolerance
    seed: str | None = None  # a seeded prior's state: probation, trusted, rejected (None: none)
    seed_checked: int | None = None  # the search's own models the seed was checked on


class Predictor(Protocol):
    """Predicts a model's final fitness from its curve, and learns from finished models."""

    def predict(self, state: dict[str, Any], x: np.ndarray, y: np.ndarray) -> Prediction:
        """Predict from the valid points so far; `state` is the model's scratch space."""
        ...

    def learn_curve(
        self,
        x: np.ndarray,
        y: np.ndarray,
        stopped: bool,
        log: list | None = None,
        features: np.ndarray | None = None,
    ) -> None:
        """Learn from a finished model's curve (only what was trained); `features`: its
        architecture's choice vector, if known."""
        ...
