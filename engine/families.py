"""Parametric learning-curve families with analytic Jacobians.

Each family models a fitness that rises and saturates with the 0-based epoch index x.
`paper` is the A4NN/PENGUIN function a - b^(c - x). The rest follow Domhan et al.
(IJCAI 2015, Table 1). In the ensemble engine they are fitted to a curve normalised to
roughly [0, 1] (see `engine.predictor`), which is what their bounds and starting points
assume; `paper` is fitted on the raw 0-100 scale as the paper did.

Domhan's curves are written for x >= 1; we evaluate them at t = x + 1 so that epoch 0 is
t = 1 and x^(-alpha) or log(x) stay finite.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

Array = np.ndarray
INF = np.inf


@dataclass(frozen=True)
class Family:
    """One curve family: f(x, p), its Jacobian d f / d p, bounds and a starting point."""

    name: str
    params: tuple[str, ...]
    f: Callable[[Array, Array], Array]
    jac: Callable[[Array, Array], Array]
    lower: tuple[float, ...]
    upper: tuple[float, ...]
    p0: Callable[[Array, Array], Array]
    formula: str

    @property
    def k(self) -> int:
        return len(self.params)

    def bounds(self) -> tuple[Array, Array]:
        return np.array(self.lower, float), np.array(self.upper, float)

    def clip(self, p: Array) -> Array:
        """Move a starting point strictly inside the bounds (least_squares requires it)."""
        lo, hi = self.bounds()
        span = np.where(np.isfinite(hi - lo), hi - lo, 1.0)
        eps = 1e-6 * np.maximum(span, 1.0)
        return np.minimum(np.maximum(p, lo + eps), hi - eps)


def _col(*cols: Array) -> Array:
    return np.column_stack(cols)


# --- paper: a - b^(c - x) --------------------------------------------------------------------
def _paper_f(x: Array, p: Array) -> Array:
    a, b, c = p
    return a - np.power(b, c - x)


def _paper_jac(x: Array, p: Array) -> Array:
    a, b, c = p
    bp = np.power(b, c - x)
    return _col(np.ones_like(x), -(c - x) * np.power(b, c - x - 1.0), -np.log(b) * bp)


PAPER = Family(
    name="paper",
    params=("a", "b", "c"),
    f=_paper_f,
    jac=_paper_jac,
    lower=(0.5, 1.0, 0.0),
    upper=(200.0, INF, INF),
    # scipy.optimize.curve_fit's starting point for these bounds: midpoint of [0.5, 200],
    # lower + 1 for the half-open ones. The paper's engine used curve_fit without p0.
    p0=lambda x, y: np.array([100.25, 2.0, 1.0]),
    formula="a - b^(c - x)",
)


# --- Domhan et al. families (t = x + 1) ------------------------------------------------------
def _t(x: Array) -> Array:
    return x + 1.0


def _level(y: Array) -> float:
    """A robust current level of a normalised curve: the median of the last 3 points."""
    return float(np.median(y[-3:]))


# pow3: c - a t^(-alpha)
def _pow3_f(x, p):
    c, a, al = p
    return c - a * np.power(_t(x), -al)


def _pow3_j(x, p):
    c, a, al = p
    tp = np.power(_t(x), -al)
    return _col(np.ones_like(x), -tp, a * np.log(_t(x)) * tp)


# pow4: c - (a t + b)^(-alpha)
def _pow4_f(x, p):
    c, a, b, al = p
    return c - np.power(a * _t(x) + b, -al)


def _pow4_j(x, p):
    c, a, b, al = p
    u = a * _t(x) + b
    up = np.power(u, -al)
    return _col(np.ones_like(x), al * _t(x) * up / u, al * up / u, np.log(u) * up)


# log_power: a / (1 + (t / e^b)^c)   (c < 0 for a rising curve)
def _logpow_f(x, p):
    a, b, c = p
    return a / (1.0 + np.power(_t(x) / np.exp(b), c))


def _logpow_j(x, p):
    a, b, c = p
    t = _t(x)
    q = np.power(t / np.exp(b), c)
    d = 1.0 + q
    return _col(1.0 / d, a * q * c / d**2, -a * q * (np.log(t) - b) / d**2)


# exp3: c - exp(-a t + b)
def _exp3_f(x, p):
    c, a, b = p
    return c - np.exp(-a * _t(x) + b)


def _exp3_j(x, p):
    c, a, b = p
    e = np.exp(-a * _t(x) + b)
    return _col(np.ones_like(x), _t(x) * e, -e)


# expd3: c - (c - a) exp(-b t)
def _expd3_f(x, p):
    c, a, b = p
    return c - (c - a) * np.exp(-b * _t(x))


def _expd3_j(x, p):
    c, a, b = p
    e = np.exp(-b * _t(x))
    return _col(1.0 - e, e, (c - a) * _t(x) * e)


# exp4: c - exp(-a t^alpha + b)
def _exp4_f(x, p):
    c, a, b, al = p
    return c - np.exp(-a * np.power(_t(x), al) + b)


def _exp4_j(x, p):
    c, a, b, al = p
    t = _t(x)
    ta = np.power(t, al)
    e = np.exp(-a * ta + b)
    return _col(np.ones_like(x), ta * e, -e, a * ta * np.log(t) * e)


# ilog2: c - a / log(t + 1)
def _ilog2_f(x, p):
    c, a = p
    return c - a / np.log(_t(x) + 1.0)


def _ilog2_j(x, p):
    c, a = p
    return _col(np.ones_like(x), -1.0 / np.log(_t(x) + 1.0))


# mmf: alpha - (alpha - beta) / (1 + (k t)^delta)
def _mmf_f(x, p):
    al, be, k, de = p
    return al - (al - be) / (1.0 + np.power(k * _t(x), de))


def _mmf_j(x, p):
    al, be, k, de = p
    t = _t(x)
    q = np.power(k * t, de)
    d = 1.0 + q
    g = (al - be) * q / d**2
    return _col(1.0 - 1.0 / d, 1.0 / d, g * de / k, g * np.log(k * t))


# janoschek: alpha - (alpha - beta) exp(-k t^delta)
def _jan_f(x, p):
    al, be, k, de = p
    return al - (al - be) * np.exp(-k * np.power(_t(x), de))


def _jan_j(x, p):
    al, be, k, de = p
    t = _t(x)
    td = np.power(t, de)
    e = np.exp(-k * td)
    return _col(1.0 - e, e, (al - be) * td * e, (al - be) * k * td * np.log(t) * e)


# weibull: alpha - (alpha - beta) exp(-(k t)^delta)
def _wei_f(x, p):
    al, be, k, de = p
    return al - (al - be) * np.exp(-np.power(k * _t(x), de))


def _wei_j(x, p):
    al, be, k, de = p
    t = _t(x)
    q = np.power(k * t, de)
    e = np.exp(-q)
    g = (al - be) * e
    return _col(1.0 - e, e, g * de * q / k, g * q * np.log(k * t))


# vapor_pressure: exp(a + b / t + c log t)
def _vap_f(x, p):
    a, b, c = p
    t = _t(x)
    return np.exp(a + b / t + c * np.log(t))


def _vap_j(x, p):
    t = _t(x)
    v = _vap_f(x, p)
    return _col(v, v / t, v * np.log(t))


# dr_hill: alpha + (theta - alpha) / (1 + exp(eta (log t - log kappa)))  (Domhan's
# "Dr. Hill zero background" form, reparametrised so it rises from alpha to theta)
def _hill_f(x, p):
    al, th, eta, lk = p
    return al + (th - al) / (1.0 + np.exp(-eta * (np.log(_t(x)) - lk)))


def _hill_j(x, p):
    al, th, eta, lk = p
    z = np.log(_t(x)) - lk
    s = 1.0 / (1.0 + np.exp(-eta * z))
    ds = s * (1.0 - s)
    return _col(1.0 - s, s, (th - al) * ds * z, -(th - al) * ds * eta)


def _p0_sat(name: str):
    """Starting point for saturating families on a normalised curve: asymptote near the level."""

    def p0(x: Array, y: Array) -> Array:
        lvl = _level(y)
        first = float(y[0])
        drop = max(lvl - first, 0.05)
        guesses = {
            "pow3": [lvl + 0.02, drop + 0.02, 1.0],
            "pow4": [lvl + 0.02, 1.0, 1.0, 1.0],
            "exp3": [lvl + 0.02, 0.3, np.log(drop + 0.02) + 0.3],
            "expd3": [lvl + 0.02, first, 0.3],
            "exp4": [lvl + 0.02, 0.3, np.log(drop + 0.02) + 0.3, 1.0],
            "ilog2": [lvl + 0.05, 0.1],
            "mmf": [lvl + 0.02, first, 0.5, 1.0],
            "janoschek": [lvl + 0.02, first, 0.3, 1.0],
            "weibull": [lvl + 0.02, first, 0.3, 1.0],
            "log_power": [lvl + 0.02, 0.0, -1.0],
            "vapor_pressure": [np.log(max(lvl, 1e-3)), -0.1, 0.0],
            "dr_hill": [first, lvl + 0.02, 2.0, 0.5],
        }
        return np.array(guesses[name], float)

    return p0


def _fam(name, params, f, j, lo, hi, formula) -> Family:
    return Family(name, params, f, j, lo, hi, _p0_sat(name), formula)


DOMHAN = [
    _fam("pow3", ("c", "a", "alpha"), _pow3_f, _pow3_j, (-2, 0, 0), (3, 50, 10), "c - a t^-alpha"),
    _fam(
        "pow4",
        ("c", "a", "b", "alpha"),
        _pow4_f,
        _pow4_j,
        (-2, 1e-6, 1e-6, 1e-6),
        (3, 100, 100, 10),
        "c - (a t + b)^-alpha",
    ),
    _fam(
        "log_power",
        ("a", "b", "c"),
        _logpow_f,
        _logpow_j,
        (0, -10, -20),
        (3, 10, 0),
        "a / (1 + (t / e^b)^c)",
    ),
    _fam("exp3", ("c", "a", "b"), _exp3_f, _exp3_j, (-2, 0, -20), (3, 10, 5), "c - exp(-a t + b)"),
    _fam(
        "expd3",
        ("c", "a", "b"),
        _expd3_f,
        _expd3_j,
        (-2, -5, 0),
        (3, 3, 10),
        "c - (c - a) e^(-b t)",
    ),
    _fam(
        "exp4",
        ("c", "a", "b", "alpha"),
        _exp4_f,
        _exp4_j,
        (-2, 0, -20, 0.05),
        (3, 10, 5, 3),
        "c - exp(-a t^alpha + b)",
    ),
    _fam("ilog2", ("c", "a"), _ilog2_f, _ilog2_j, (-2, 0), (3, 20), "c - a / log(t + 1)"),
    _fam(
        "mmf",
        ("alpha", "beta", "k", "delta"),
        _mmf_f,
        _mmf_j,
        (-2, -5, 1e-4, 0.05),
        (3, 3, 50, 10),
        "alpha - (alpha - beta) / (1 + (k t)^delta)",
    ),
    _fam(
        "janoschek",
        ("alpha", "beta", "k", "delta"),
        _jan_f,
        _jan_j,
        (-2, -5, 0, 0.05),
        (3, 3, 20, 5),
        "alpha - (alpha - beta) exp(-k t^delta)",
    ),
    _fam(
        "weibull",
        ("alpha", "beta", "k", "delta"),
        _wei_f,
        _wei_j,
        (-2, -5, 1e-4, 0.05),
        (3, 3, 20, 10),
        "alpha - (alpha - beta) exp(-(k t)^delta)",
    ),
    _fam(
        "vapor_pressure",
        ("a", "b", "c"),
        _vap_f,
        _vap_j,
        (-10, -20, -3),
        (3, 20, 3),
        "exp(a + b / t + c log t)",
    ),
    _fam(
        "dr_hill",
        ("alpha", "theta", "eta", "log_kappa"),
        _hill_f,
        _hill_j,
        (-5, -2, 0.05, -5),
        (3, 3, 20, 6),
        "alpha + (theta - alpha) / (1 + exp(-eta (log t - log kappa)))",
    ),
]

FAMILIES: dict[str, Family] = {PAPER.name: PAPER, **{f.name: f for f in DOMHAN}}
