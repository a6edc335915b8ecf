"""The issue-3 engine: curve families combined with a prior from previous builds.

Two predictors, each giving a mean and a predictive standard deviation of the fitness at
the target epoch, combined by inverse variance:

* **Families** (Domhan et al. 2015): each family in `config.families` is fitted to the
  normalised curve with an analytic Jacobian, a robust loss and a warm start from the
  previous epoch's parameters; the families are weighted by their fit (BIC-like weights
  exp(-n/2 log(rmse^2) - k/2 log n)). The spread between families and the residual scale,
  grown with the extrapolation distance, give the standard deviation.
* **Previous builds** (after Chandrashekaran and Lane, ECML 2017, who extrapolate a curve
  from the curves of models trained before it): models that finished earlier in the same
  search and were trained to the budget form a pool. At epoch e the pool's final values
  are regressed on the pool's levels at e (ordinary least squares; in log-error space
  -log(1 - z) for a bounded fitness, so that 99.0 -> 99.9 and 90 -> 99 are alike), and
  the current model's level gives its prediction with the usual prediction interval. The
  residual variance is shrunk towards a prior value so that three curves cannot look
  certain by chance. The level is the trailing 3-epoch maximum: validation curves dip,
  and rarely spike up. Only models trained to the budget enter the pool, so a model
  unlike the pool is not stopped early, trains to the end, and then joins the pool.

The stopping rule (`stop_rule: probability`, in `engine.stopping` with every other rule and
guard) asks for P(|final - prediction| <= delta) >= confidence. The predictor estimates that
probability (`p_within`), calibrated on the search itself: every prediction the engine made
for a model that then trained to the budget leaves a standardised error
|prediction - final| / std, and once there are `calibration_min` of them (default 30) the
probability is their empirical fraction below delta / std (a split-conformal estimate);
before that a normal error is assumed. Each prediction says what made it (`source`: the
prior or the families) and how many models the pool holds (`pool`), so that the guards
can veto a stop in the open.

Curves are handled in a normalised space z in which bigger is better: z = (y - low) /
(high - low) when maximizing with a bounded range (accuracy in 0-100 or 0-1), z = (high -
y) / (high - low) when minimizing with a bounded range, and z = +-y / s otherwise (loss),
where s is the magnitude of the first value the engine saw (the same for all models, so
that curves of different models stay comparable).
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np

from .config import EngineConfig
from .families import FAMILIES
from .fitting import fit_family
from .prediction import Prediction
from .stopping import prob_within

ENVELOPE = 3  # trailing window of the level (epochs)
GAIN_UNCERTAINTY = 0.5  # std of a family's extrapolated gain, as a fraction of that gain
PRIOR_DF = 3.0  # pseudo degrees of freedom of the residual-variance prior
PRIOR_S2 = {"log_error": 0.5**2, "identity": 0.05**2}  # its value, in transformed units


class Normalizer:
    """Maps fitness values to z (bigger is better, about 0..1) and back."""

    def __init__(self, cfg: EngineConfig):
        self.maximize = cfg.direction == "maximize"
        lo, hi = cfg.value_range
        self.bounded = lo is not None and hi is not None
        if self.bounded:
            self.offset = lo if self.maximize else hi
            self.scale = hi - lo
        else:
            self.offset, self.scale = 0.0, None
        self.sign = 1.0 if self.maximize else -1.0

    def ready(self, first_value: float) -> None:
        if self.scale is None:
            self.scale = max(abs(first_value), 1e-12)

    def z(self, y: np.ndarray) -> np.ndarray:
        return self.sign * (y - self.offset) / self.scale

    def y(self, z: float) -> float:
        return self.offset + self.sign * self.scale * z

    def dy(self, dz: float) -> float:
        """A spread (std, distance) in fitness units."""
        return abs(self.scale * dz)

    def dz(self, dy: float) -> float:
        return abs(dy / self.scale)

    def z_limits(self) -> tuple[float, float]:
        return (0.0, 1.0) if self.bounded else (-math.inf, math.inf)


def envelope(z: np.ndarray, w: int = ENVELOPE) -> np.ndarray:
    """Trailing maximum over `w` epochs: the curve's level, robust to validation dips."""
    out = np.empty_like(z)
    for i in range(len(z)):
        out[i] = z[max(0, i - w + 1) : i + 1].max()
    return out


def on_grid(x: np.ndarray, z: np.ndarray, upto: int) -> np.ndarray:
    """The curve on epochs 0..upto (linear interpolation over gaps, flat beyond the ends)."""
    return np.interp(np.arange(upto + 1, dtype=float), x, z)


class PreviousBuilds:
    """Curves of finished models, trained to the budget, as an (n, T) matrix of levels."""

    def __init__(self) -> None:
        self.levels = np.zeros((0, 0))
        self.finals = np.zeros(0)
        self.partial: list[tuple[np.ndarray, np.ndarray]] = []  # stopped models (not used)

    @property
    def n(self) -> int:
        return len(self.finals)

    def add(self, x: np.ndarray, z: np.ndarray, target_x: int, complete: bool) -> None:
        if len(x) == 0:
            return
        if not complete or x[-1] < target_x:
            self.partial.append((x.copy(), z.copy()))
            return
        lv = envelope(on_grid(x, z, target_x))
        final = float(np.interp(target_x, x, z))
        if self.levels.shape[1] not in (0, len(lv)):
            return  # a different budget: not comparable
        self.levels = np.vstack([self.levels.reshape(-1, len(lv)), lv[None, :]])
        self.finals = np.append(self.finals, final)

    def predict(
        self, x: np.ndarray, z: np.ndarray, transform: str, min_r2: float = 0.0
    ) -> tuple[float, float, float] | None:
        """(mean, std, pool size) in z units, or None when the pool cannot say.

        Regresses the previous builds' final values on their level at the current epoch
        (ordinary least squares, in log-error space for bounded fitness) and reads off the
        current model's final value with its prediction interval.
        """
        e = int(x[-1])
        n = self.n
        if n < 3 or e >= self.levels.shape[1]:
            return None
        lv = envelope(on_grid(x, z, e))[e]
        pool = self.levels[:, e]
        if not pool.min() <= lv <= pool.max():
            # outside what previous builds have shown at this epoch: do not extrapolate the
            # regression; the model trains on, and once finished widens the pool
            return None
        f, finv, slope = _TRANSFORMS[transform]
        X = np.column_stack([np.ones(n), f(self.levels[:, e])])
        t = f(self.finals)
        x0 = np.array([1.0, f(np.array([lv]))[0]])
        try:
            xtx_inv = np.linalg.inv(X.T @ X + 1e-9 * np.eye(2))
        except np.linalg.LinAlgError:
            return None
        beta = xtx_inv @ (X.T @ t)
        resid = t - X @ beta
        ss_tot = float(np.sum((t - t.mean()) ** 2))
        r2 = 1.0 - float(resid @ resid) / ss_tot if ss_tot > 0 else 0.0
        if r2 < min_r2:
            # the pool's levels at this epoch do not tell its finals apart: a prediction
            # would be "an average model", accurate on average but blind to the ranking
            return None
        # residual variance shrunk towards a prior guess (PRIOR_S2 with PRIOR_DF pseudo
        # degrees of freedom): three or four curves alone can fit by chance almost exactly
        s2 = (float(resid @ resid) + PRIOR_DF * PRIOR_S2[transform]) / (n - 2 + PRIOR_DF)
        u = float(x0 @ beta)
        su = math.sqrt(max(s2, 1e-12) * (1.0 + float(x0 @ xtx_inv @ x0)))
        mean = float(finv(u))
        std = su * slope(u)
        if not (math.isfinite(mean) and math.isfinite(std)):
            return None
        return mean, std, float(n)


_EPS = 1e-3  # in z units: log-error space treats 100% as 99.9%


def _log_error(z: np.ndarray) -> np.ndarray:
    return -np.log(np.maximum(1.0 + _EPS - z, 1e-12))


_TRANSFORMS = {
    # name: (forward, inverse, d inverse / d u), the derivative turns a std in u into z
    "log_error": (_log_error, lambda u: 1.0 + _EPS - math.exp(-u), lambda u: math.exp(-u)),
    "identity": (lambda z: z, lambda u: u, lambda u: 1.0),
}


class EnsemblePredictor:
    """Families + previous builds, combined by inverse variance (see module docstring)."""

    def __init__(self, cfg: EngineConfig):
        self.cfg = cfg
        self.norm = Normalizer(cfg)
        self.builds = PreviousBuilds()
        self.families = [FAMILIES[f] for f in cfg.families if f != "paper"]
        self.transform = cfg.prior_transform
        if self.transform == "auto":
            self.transform = "log_error" if self.norm.bounded else "identity"
        # |error| / std of past predictions, per kind ("prior" or "families"), from models
        # that trained to the budget: the empirical calibration of the stopping rule
        self.calib: dict[str, list[float]] = {"prior": [], "families": []}

    # -- learning from finished models ----------------------------------------------------
    def learn_curve(
        self, x: np.ndarray, y: np.ndarray, stopped: bool, log: list | None = None
    ) -> None:
        """Add a finished model's curve (only what was trained) to the pool and calibration.

        For a model trained to the budget, the calibration of the prior gets the standardised
        errors of what the pool, as it stands before this model joins, predicts for it at
        every epoch from C_min on (leave-one-out, so it is the same whether the curve comes
        from a tracker here or from another worker's run directory); the calibration of the
        families gets the errors of the family predictions the tracker logged in situ
        (`log`: [epoch, mean, std, kind] entries in z units).
        """
        if len(x) == 0:
            return
        cfg = self.cfg
        self.norm.ready(float(y[0]))
        z = self.norm.z(y)
        complete = not stopped and x[-1] >= cfg.target_x
        if complete:
            final = float(np.interp(cfg.target_x, x, z))
            for _, mean, std, kind in log or []:
                if kind == "families" and std > 0 and math.isfinite(mean):
                    self.calib[kind].append(abs(mean - final) / std)
            if cfg.prior != "none" and self.builds.n >= cfg.prior_min_curves:
                for e in range(cfg.c_min, cfg.target_x):
                    upto = x <= e
                    if np.count_nonzero(upto) <= cfg.c_min:
                        continue
                    got = self.builds.predict(x[upto], z[upto], self.transform, cfg.prior_min_r2)
                    if got is not None and got[1] > 0:
                        self.calib["prior"].append(abs(got[0] - final) / got[1])
        if cfg.prior != "none":
            self.builds.add(x, z, cfg.target_x, complete=complete)

    def p_within(self, kind: str, std_z: float, delta_z: float) -> float:
        """P(|final - prediction| <= delta): empirical from past standardised errors when
        there are enough of them (a split-conformal estimate), else a normal model."""
        past = self.calib[kind]
        m = self.cfg.calibration_min
        if len(past) < m or std_z <= 0:
            return prob_within(std_z, delta_z)
        s = np.asarray(past)
        return float((np.count_nonzero(s <= delta_z / std_z)) / (len(s) + 1))

    # -- one prediction -----------------------------------------------------------------------
    def predict(self, state: dict[str, Any], x: np.ndarray, y: np.ndarray) -> Prediction:
        """Predict from the curve so far; `state` keeps warm starts and the prediction log."""
        cfg = self.cfg
        self.norm.ready(float(y[0]))
        z = self.norm.z(y)
        target = float(cfg.target_x)
        parts: list[tuple[float, float]] = []  # (mean, std) in z
        notes: list[str] = []
        params: dict[str, float] | None = None
        family: str | None = None

        pool = self.builds.n if cfg.prior != "none" else None
        prior = None
        if cfg.prior == "previous_builds" and self.builds.n >= cfg.prior_min_curves:
            prior = self.builds.predict(x, z, self.transform, cfg.prior_min_r2)
        if prior is not None:
            pm, ps, n_eff = prior
            lo, hi = self.norm.z_limits()
            pm = min(max(pm, lo), hi)
            parts.append((pm, max(ps, 1e-9) / math.sqrt(cfg.prior_weight or 1e-12)))
            notes.append(f"previous builds: regression on {int(n_eff)} finished curves")
            family = "previous_builds"

        cold = cfg.prior == "none" or self.builds.n < cfg.prior_min_curves
        if self.families and (cfg.families_mode == "always" or cold):
            fam = self._fit_families(state, x, z, target)
            if fam is not None:
                fm, fs, params, fname = fam
                parts.append((fm, fs))
                family = fname if family is None else f"{family}+{fname}"
            else:
                notes.append("every family fit failed")

        if not parts:
            if not cold:
                notes.append(
                    "previous builds cannot say at this epoch (level outside the pool's, or "
                    f"the pool's levels explain < {cfg.prior_min_r2:.0%} of its finals)"
                )
            return Prediction(
                float("inf"), family=family, note="; ".join(notes) or "no prediction", pool=pool
            )
        prec = np.array([1.0 / max(s, 1e-12) ** 2 for _, s in parts])
        means = np.array([m for m, _ in parts])
        mean = float(np.sum(prec * means) / prec.sum())
        std = math.sqrt(1.0 / prec.sum())
        kind = "prior" if prior is not None else "families"
        state.setdefault("log", []).append((int(x[-1]), mean, std, kind))
        return Prediction(
            self.norm.y(mean),
            std=self.norm.dy(std),
            params=params,
            family=family,
            note="; ".join(notes),
            p_within=self.p_within(kind, std, self.norm.dz(cfg.delta * cfg.unit)),
            source=kind,
            pool=pool,
        )

    def _fit_families(
        self, state: dict[str, Any], x: np.ndarray, z: np.ndarray, target: float
    ) -> tuple[float, float, dict[str, float], str] | None:
        cfg = self.cfg
        xs, zs = x, z
        warm = state.setdefault("warm", {})
        f_scale = self.norm.dz(cfg.loss_scale * cfg.unit)
        fits = []
        for fam in self.families:
            p0 = warm.get(fam.name) if cfg.warm_start else None
            fit = fit_family(
                fam, xs, zs, target, p0=p0, loss=cfg.loss, f_scale=f_scale, max_nfev=cfg.max_nfev
            )
            if fit.ok:
                warm[fam.name] = fit.params
                fits.append((fam, fit))
            else:
                warm.pop(fam.name, None)
        if not fits:
            return None
        n = len(xs)
        logw = np.array(
            [
                -0.5 * n * math.log(max(f.rmse, 1e-6) ** 2) - 0.5 * fam.k * math.log(n)
                for fam, f in fits
            ]
        )
        w = np.exp(logw - logw.max())
        w /= w.sum()
        preds = np.array([f.prediction for _, f in fits])
        rmse = float(np.sum(w * np.array([f.rmse for _, f in fits])))
        mean = float(np.sum(w * preds))
        between = float(np.sum(w * (preds - mean) ** 2))
        reach = max(target - float(x[-1]), 0.0) / (float(x[-1]) + 1.0)
        # the improvement still to come is itself uncertain: a smooth curve fitted exactly
        # by a family says nothing certain about a gain it has not shown yet
        gains = [abs(f.prediction - float(fam.f(x[-1:], f.params)[0])) for fam, f in fits]
        gain = float(np.sum(w * np.array(gains)))
        std = math.sqrt(between + rmse**2 * (1.0 + reach) + (GAIN_UNCERTAINTY * gain) ** 2)
        best_fam, best = fits[int(np.argmax(w))]
        return mean, std, best.params_dict(best_fam.params), best_fam.name
