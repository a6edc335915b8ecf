"""How good is the fitness an engine hands to the NAS? Ranking and error metrics.

All take the fitness the NAS saw and the true last-epoch value, one entry per model.
"""

from __future__ import annotations

import math

import numpy as np


def kendall_tau(fitness: np.ndarray, true: np.ndarray) -> float:
    """Kendall tau-b (scipy) of fitness against truth; nan when undefined (e.g. < 2 models)."""
    from scipy.stats import kendalltau  # here: importing the engine stays cheap

    if len(fitness) < 2:
        return float("nan")
    tau = kendalltau(fitness, true).statistic
    return float(tau) if tau is not None else float("nan")


def kendall_tau_eps(fitness: np.ndarray, true: np.ndarray, eps: float = 0.5) -> float:
    """Kendall tau-b over the pairs whose true values differ by at least `eps`.

    (concordant - discordant) / sqrt(pairs not tied in fitness * pairs counted), i.e. tau-b
    restricted to the counted pairs: near-ties in the truth (say 99.9 against 99.95) do not
    count, because no engine and no neighbouring epoch can order them reliably.
    """
    n = len(true)
    if n < 2:
        return float("nan")
    i, j = np.triu_indices(n, 1)
    keep = np.abs(true[i] - true[j]) >= eps
    if not keep.any():
        return float("nan")
    sf = np.sign(fitness[i] - fitness[j])[keep]
    st = np.sign(true[i] - true[j])[keep]
    denom = math.sqrt(float(np.count_nonzero(sf)) * float(np.count_nonzero(st)))
    return float(np.sum(sf * st) / denom) if denom > 0 else float("nan")


def top_k_overlap(fitness: np.ndarray, true: np.ndarray, k: int = 10) -> float:
    """Fraction of the true top-k models that are also in the top-k by fitness."""
    n = len(true)
    if n == 0:
        return float("nan")
    k = min(k, n)
    top_f = set(np.argsort(-fitness, kind="stable")[:k].tolist())
    top_t = set(np.argsort(-true, kind="stable")[:k].tolist())
    return len(top_f & top_t) / k


def regret(fitness: np.ndarray, true: np.ndarray) -> float:
    """True value lost by picking the model with the best fitness instead of the true best."""
    if len(true) == 0:
        return float("nan")
    return float(np.max(true) - true[int(np.argmax(fitness))])
