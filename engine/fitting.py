"""Least-squares fitting of one curve family to one learning curve.

`fit_paper` is the paper's engine, kept faithful: scipy's trust-region-reflective least
squares with bounds, a finite-difference Jacobian, plain squared loss and curve_fit's
starting point, i.e. exactly what `scipy.optimize.curve_fit(F, x, y, bounds=...)` does
(minus the covariance it computes and the engine never used). A fit that does not
converge is a failed prediction, as curve_fit's RuntimeError was in situ.

`fit_family` is the fast path of the ensemble engine: analytic Jacobian, an optional
warm start from the previous epoch's parameters, a robust loss, and few iterations.
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass

import numpy as np

from .families import PAPER, Family


@dataclass
class Fit:
    """A fitted family: parameters, the prediction at the target, and residual scale."""

    family: str
    params: np.ndarray
    prediction: float
    rmse: float  # root mean squared residual on the fitted points (fit scale)
    cost: float
    ok: bool
    note: str = ""

    def params_dict(self, names: tuple[str, ...]) -> dict[str, float]:
        return {k: float(v) for k, v in zip(names, self.params, strict=True)}


def _failed(family: str, k: int, note: str) -> Fit:
    return Fit(family, np.full(k, np.nan), float("inf"), float("inf"), float("inf"), False, note)


def fit_paper(x: np.ndarray, y: np.ndarray, target_x: float) -> Fit:
    """The paper's fit of a - b^(c - x), as `curve_fit(F, x, y, bounds=...)` did it."""
    from scipy.optimize import least_squares  # here: importing engine stays cheap

    lo, hi = PAPER.bounds()
    p0 = PAPER.p0(x, y)

    def resid(p: np.ndarray) -> np.ndarray:
        return PAPER.f(x, p) - y

    try:
        with warnings.catch_warnings(), np.errstate(all="ignore"):
            warnings.simplefilter("ignore")
            res = least_squares(resid, p0, jac="2-point", bounds=(lo, hi), method="trf")
    except (ValueError, FloatingPointError, np.linalg.LinAlgError) as e:
        return _failed(PAPER.name, PAPER.k, f"fit failed: {e}")
    if not res.success:
        return _failed(PAPER.name, PAPER.k, f"fit did not converge: {res.message}")
    with np.errstate(all="ignore"):
        pred = float(PAPER.f(np.array([float(target_x)]), res.x)[0])
    rmse = float(np.sqrt(np.mean(res.fun**2)))
    if not np.isfinite(pred):
        return _failed(PAPER.name, PAPER.k, "fit gave a non-finite prediction")
    return Fit(PAPER.name, res.x, pred, rmse, float(res.cost), True)


def fit_family(
    fam: Family,
    x: np.ndarray,
    y: np.ndarray,
    target_x: float,
    *,
    p0: np.ndarray | None = None,
    loss: str = "soft_l1",
    f_scale: float = 0.02,
    max_nfev: int = 30,
    weights: np.ndarray | None = None,
) -> Fit:
    """Fit `fam` to (x, y) with an analytic Jacobian, robust loss and optional warm start."""
    from scipy.optimize import least_squares

    lo, hi = fam.bounds()
    start = fam.clip(np.asarray(p0 if p0 is not None else fam.p0(x, y), float))
    w = np.ones_like(y) if weights is None else weights

    def resid(p: np.ndarray) -> np.ndarray:
        return w * (fam.f(x, p) - y)

    def jac(p: np.ndarray) -> np.ndarray:
        return w[:, None] * fam.jac(x, p)

    try:
        with warnings.catch_warnings(), np.errstate(all="ignore"):
            warnings.simplefilter("ignore")
            r0 = resid(start)
            if not np.all(np.isfinite(r0)):
                start = fam.clip(fam.p0(x, y))
            res = least_squares(
                resid,
                start,
                jac=jac,
                bounds=(lo, hi),
                method="trf",
                loss=loss,
                f_scale=f_scale,
                max_nfev=max_nfev,
                x_scale="jac",
            )
            pred = float(fam.f(np.array([float(target_x)]), res.x)[0])
    except (ValueError, FloatingPointError, np.linalg.LinAlgError) as e:
        return _failed(fam.name, fam.k, f"fit failed: {e}")
    if not np.isfinite(pred) or not np.all(np.isfinite(res.fun)):
        return _failed(fam.name, fam.k, "fit gave a non-finite prediction")
    # status 0 (iteration budget used up) still gives a usable, if rough, fit
    rmse = float(np.sqrt(np.mean((res.fun / w) ** 2)))
    return Fit(fam.name, res.x, pred, rmse, float(res.cost), res.status >= 0)
