"""One model's observed curve as the engine uses it: valid points only, one per epoch.

Both a live `Tracker` and `Engine.learn_curve` (a curve recorded elsewhere) clean their
input here, so that a curve taught afterwards is exactly the curve a tracker would have kept.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np


def as_epoch(epoch: Any) -> int | None:
    """A 0-based epoch index, or None when `epoch` is not a whole number >= 0."""
    try:
        f = float(epoch)
    except (TypeError, ValueError):
        return None
    if not math.isfinite(f) or f < 0 or f != int(f):
        return None
    return int(f)


def in_range(p: float, lo: float | None, hi: float | None) -> bool:
    """A finite value inside the declared fitness range (None: unbounded side)."""
    if not math.isfinite(p):
        return False
    return (lo is None or p >= lo) and (hi is None or p <= hi)


def check_value(
    value: Any, epoch: int, value_range: tuple[float | None, float | None]
) -> tuple[float | None, str]:
    """(the value as a float, "") when valid, else (None, why it is ignored)."""
    try:
        v = float(value)
    except (TypeError, ValueError):
        return None, f"value {value!r} at epoch {epoch} is not a number; ignored"
    if not math.isfinite(v):
        return None, f"value {v} at epoch {epoch} is not finite; ignored"
    lo, hi = value_range
    if not in_range(v, lo, hi):
        return None, f"value {v} at epoch {epoch} is outside value_range [{lo}, {hi}]; ignored"
    return v, ""


class Curve:
    """Valid (epoch, value) points; a repeated epoch replaces the earlier value."""

    def __init__(self) -> None:
        self.points: dict[int, float] = {}

    def __len__(self) -> int:
        return len(self.points)

    def add(self, epoch: int, value: float) -> str:
        """Record one valid point; the note says when it replaced or re-sorted the curve."""
        note = ""
        if epoch in self.points:
            note = f"epoch {epoch} repeated; the new value replaces {self.points[epoch]}"
        elif self.points and epoch < max(self.points):
            note = f"epoch {epoch} arrived after epoch {max(self.points)}; curve re-sorted"
        self.points[epoch] = value
        return note

    def arrays(self) -> tuple[np.ndarray, np.ndarray]:
        """x (0-based epochs) and values, sorted by epoch."""
        if not self.points:
            return np.zeros(0), np.zeros(0)
        xs = sorted(self.points)
        return np.array(xs, float), np.array([self.points[e] for e in xs], float)

    def last(self) -> float:
        """The value at the latest epoch (nan when empty)."""
        if not self.points:
            return float("nan")
        return float(self.points[max(self.points)])
