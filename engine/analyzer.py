"""The prediction analyzer: has the sequence of predictions converged to a stable value?

`spread_converged` is the paper's rule (Sec. 2.1.2): the N most recent predictions are all
valid fitness values (finite, inside the declared range) and each lies within r of their
median. A failed fit enters the prediction list as +inf, so it blocks convergence for the
next N predictions, as in the paper's engine (this reproduces the in-situ `converged`
column of the published A4NN data on 1,644 of 1,647 epochs).

`probability_converged` is the rule in probabilities used by the `default` preset: stop
when the predictive distribution of the final fitness puts at least `confidence` of its
mass within `delta` of the current prediction, and the last N predictions agree within r.
"""

from __future__ import annotations

import math
from collections.abc import Sequence


def in_range(p: float, lo: float | None, hi: float | None) -> bool:
    """A finite prediction inside the declared fitness range (None: unbounded side)."""
    if not math.isfinite(p):
        return False
    return (lo is None or p >= lo) and (hi is None or p <= hi)


def spread_converged(
    preds: Sequence[float], n: int, r: float, lo: float | None, hi: float | None
) -> bool:
    """The paper's rule: the last n predictions are valid and within r of their median."""
    if len(preds) < n:
        return False
    last = list(preds[-n:])
    if not all(in_range(p, lo, hi) for p in last):
        return False
    s = sorted(last)
    m = n // 2
    med = s[m] if n % 2 else 0.5 * (s[m - 1] + s[m])
    return all(abs(p - med) <= r for p in last)


def prob_within(std: float, delta: float) -> float:
    """P(|final - prediction| <= delta) under a normal predictive error of the given std."""
    if not math.isfinite(std):
        return 0.0
    if std <= 0:
        return 1.0
    z = delta / std
    return math.erf(z / math.sqrt(2.0))  # = ndtr(z) - ndtr(-z), without importing scipy


def probability_converged(
    preds: Sequence[float],
    std: float | None,
    n: int,
    r: float,
    delta: float,
    confidence: float,
    lo: float | None,
    hi: float | None,
    p_within: float | None = None,
) -> bool:
    """Stop when the last n predictions agree within r and P(|error| <= delta) >= confidence.

    `p_within` is that probability when the predictor estimated it (calibrated on past
    models); otherwise a normal error with standard deviation `std` is assumed.
    """
    if not spread_converged(preds, n, r, lo, hi):
        return False
    if p_within is None:
        if std is None:
            return False
        p_within = prob_within(std, delta)
    return p_within >= confidence
