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

import bisect
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


class RunningStats:
    """Per-epoch sufficient statistics of the regression t ~ x (Welford / Chan updates):
    n, the means of x (one per epoch) and t, and the centred co-moments. O(T) to add a
    curve, O(1) to read one epoch's fit: the cost of a prediction does not grow with the
    pool."""

    def __init__(self, width: int) -> None:
        self.n = 0
        self.mx = np.zeros(width)
        self.cxx = np.zeros(width)
        self.cxt = np.zeros(width)
        self.mt = 0.0
        self.ctt = 0.0

    def add(self, xs: np.ndarray, t: float) -> None:
        self.n += 1
        dx = xs - self.mx
        self.mx += dx / self.n
        dt = t - self.mt
        self.mt += dt / self.n
        self.cxx += dx * (xs - self.mx)
        self.cxt += dx * (t - self.mt)
        self.ctt += dt * (t - self.mt)

    def removed(self, xs: np.ndarray, t: float) -> RunningStats:
        """The statistics without one curve that was added (Welford's update undone): an
        exact leave-one-out pool."""
        out = RunningStats(len(self.mx))
        n = self.n - 1
        out.n = n
        if n <= 0:
            return out
        out.mx = (self.n * self.mx - xs) / n
        out.mt = (self.n * self.mt - t) / n
        out.cxx = self.cxx - (xs - out.mx) * (xs - self.mx)
        out.cxt = self.cxt - (xs - out.mx) * (t - self.mt)
        out.ctt = self.ctt - (t - out.mt) * (t - self.mt)
        return out

    def merged(self, other: RunningStats) -> RunningStats:
        """The statistics of both pools together (Chan et al.'s pairwise update)."""
        if other.n == 0:
            return self
        if self.n == 0:
            return other
        out = RunningStats(len(self.mx))
        n = self.n + other.n
        dx, dt = other.mx - self.mx, other.mt - self.mt
        w = self.n * other.n / n
        out.n = n
        out.mx = self.mx + dx * other.n / n
        out.mt = self.mt + dt * other.n / n
        out.cxx = self.cxx + other.cxx + dx * dx * w
        out.cxt = self.cxt + other.cxt + dx * dt * w
        out.ctt = self.ctt + other.ctt + dt * dt * w
        return out


class Scores:
    """Standardised past errors |prediction - final| / std, the calibration of the stopping
    rule: the most recent `window` of them, with a sorted copy kept up to date when scores
    arrive (at a model's end), so that a call reads a probability in O(log window)."""

    def __init__(self, window: int = 20_000) -> None:
        self.window = window
        self.values: list[float] = []
        self._sorted: np.ndarray | None = np.zeros(0)

    def __len__(self) -> int:
        return len(self.values)

    def __iter__(self):
        return iter(self.values)

    def __array__(self, dtype=None, copy=None):
        return np.asarray(self.values, dtype=dtype)

    def extend(self, scores: list[float]) -> None:
        if not scores:
            return
        self.values.extend(scores)
        if len(self.values) > self.window:
            del self.values[: len(self.values) - self.window]
        self._sorted = None

    def append(self, score: float) -> None:
        self.extend([score])

    def sorted(self) -> np.ndarray:
        if self._sorted is None:
            self._sorted = np.sort(np.asarray(self.values, dtype=float))
        return self._sorted


def _sorted_scores(past: Any) -> np.ndarray:
    return past.sorted() if isinstance(past, Scores) else np.sort(np.asarray(past, float))


class PoolView:
    """The pool's final values as the stop rule's tolerance sees them: quantiles and the
    empirical CDF, in fitness units (`Evidence.pool_view`)."""

    def __init__(self, sorted_z: np.ndarray, norm: Normalizer) -> None:
        self.z = sorted_z
        self.norm = norm

    @property
    def n(self) -> int:
        return len(self.z)

    def _zq(self, p: float) -> float:
        """numpy's linear quantile, read off the sorted values in O(1)."""
        h = (len(self.z) - 1) * min(max(p, 0.0), 1.0)
        i = int(h)
        if i + 1 >= len(self.z):
            return float(self.z[-1])
        return float(self.z[i] + (h - i) * (self.z[i + 1] - self.z[i]))

    def quantile(self, p: float) -> float:
        """The p-quantile of the pool's finals, in fitness units (p = 1: the largest value)."""
        return self.norm.y(self._zq(p if self.norm.maximize else 1.0 - p))

    def cdf(self, value: float) -> float:
        """Share of the pool's finals at or below `value` (fitness units): its rank as a share."""
        v = self.norm.sign * (value - self.norm.offset) / self.norm.scale
        c = float(np.searchsorted(self.z, v, side="right")) / max(len(self.z), 1)
        return c if self.norm.maximize else 1.0 - c

    def iqr(self) -> float:
        """Interquartile range of the pool's finals (fitness units)."""
        return self.norm.dy(self._zq(0.75) - self._zq(0.25))


class PreviousBuilds:
    """Curves of finished models trained to the budget: their levels (n x T), final values
    and architecture features, and the running statistics of the per-epoch regression of
    (transformed) finals on (transformed) levels, so that a prediction costs the same with
    10 or 10,000 curves in the pool."""

    def __init__(self, transform: str = "log_error") -> None:
        self.transform = transform
        self.width = 0
        self._levels = np.zeros((0, 0))
        self._finals = np.zeros(0)
        self._feats: list[np.ndarray | None] = []
        self._fmat: np.ndarray | None = None  # features as a matrix (rows: models), lazily
        self._n = 0
        self.stats: RunningStats | None = None
        self.lo = np.zeros(0)  # per epoch: the pool's lowest and highest level (z)
        self.hi = np.zeros(0)
        self.sorted_finals: list[float] = []  # z, ascending
        self._sorted_arr: np.ndarray | None = None
        self.partial: list[tuple[np.ndarray, np.ndarray]] = []  # stopped models (not used)

    @property
    def n(self) -> int:
        return self._n

    @property
    def finals(self) -> np.ndarray:
        return self._finals[: self._n]

    @property
    def levels(self) -> np.ndarray:
        return self._levels[: self._n]

    def add(
        self,
        x: np.ndarray,
        z: np.ndarray,
        target_x: int,
        complete: bool,
        features: np.ndarray | None = None,
    ) -> None:
        if len(x) == 0:
            return
        if not complete or x[-1] < target_x:
            self.partial.append((x.copy(), z.copy()))
            return
        lv = envelope(on_grid(x, z, target_x))
        final = float(np.interp(target_x, x, z))
        if self.width not in (0, len(lv)):
            return  # a different budget: not comparable
        if self.width == 0:
            self.width = len(lv)
            self.stats = RunningStats(self.width)
            self.lo = np.full(self.width, np.inf)
            self.hi = np.full(self.width, -np.inf)
            self._levels = np.zeros((16, self.width))
            self._finals = np.zeros(16)
        if self._n == len(self._finals):  # grow by doubling: amortised O(T) per curve
            self._levels = np.vstack([self._levels, np.zeros_like(self._levels)])
            self._finals = np.concatenate([self._finals, np.zeros_like(self._finals)])
        self._levels[self._n] = lv
        self._finals[self._n] = final
        self._n += 1
        f = _TRANSFORMS[self.transform][0]
        assert self.stats is not None
        self.stats.add(f(lv), float(f(np.array([final]))[0]))
        np.minimum(self.lo, lv, out=self.lo)
        np.maximum(self.hi, lv, out=self.hi)
        bisect.insort(self.sorted_finals, final)
        self._sorted_arr = None
        self._add_features(None if features is None else np.asarray(features, float).ravel())

    def sorted_array(self) -> np.ndarray:
        """The final values (z) ascending, as an array rebuilt once per new curve."""
        if self._sorted_arr is None:
            self._sorted_arr = np.asarray(self.sorted_finals, float)
        return self._sorted_arr

    def _add_features(self, f: np.ndarray | None) -> None:
        """Row `n - 1` of the feature matrix (grown by doubling; NaN: no features, or a
        vector of another length than the first one seen)."""
        self._feats.append(f)
        if self._fmat is None:
            if f is None:
                return
            self._fmat = np.full((max(16, len(self._finals)), len(f)), np.nan)
            for i, g in enumerate(self._feats[:-1]):  # earlier rows: all without features
                self._fmat[i] = np.nan if g is None or len(g) != len(f) else g
        if self._n > len(self._fmat):
            grow = np.full_like(self._fmat, np.nan)
            self._fmat = np.vstack([self._fmat, grow])
        ok = f is not None and len(f) == self._fmat.shape[1]
        self._fmat[self._n - 1] = f if ok else np.nan

    def neighbours(self, feats: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
        """The `k` pool models whose architectures are closest to `feats` (share of choices
        that differ; models without features or of another length are never neighbours).
        O(n d) with n models of d choices: asked once per model and pool size."""
        if self._fmat is None or self._fmat.shape[1] != len(feats) or self._n == 0:
            return np.zeros(0, int), np.zeros(0)
        fm = self._fmat[: self._n]
        dist = np.mean(fm != feats[None, :], axis=1)
        dist[np.isnan(fm[:, 0])] = np.inf
        k = min(k, self._n)
        idx = np.argpartition(dist, k - 1)[:k] if k < self._n else np.arange(self._n)
        idx = idx[np.isfinite(dist[idx])]
        return idx, dist[idx]


def level_at(x: np.ndarray, z: np.ndarray, e: int) -> float:
    """The curve's level (trailing ENVELOPE-epoch maximum, gaps interpolated) at epoch e."""
    lo = max(0, e - ENVELOPE + 1)
    return float(np.interp(np.arange(lo, e + 1, dtype=float), x, z).max())


def regress(
    stats: RunningStats,
    lo: np.ndarray,
    hi: np.ndarray,
    e: int,
    lv: float,
    transform: str,
    min_r2: float,
) -> tuple[float, float, float, float, str] | None:
    """(u, su, a, b, why) of the pool's regression at epoch e for level `lv`: the predicted
    transformed final u, its predictive std su, intercept and slope; None (with nothing to
    say) when the pool cannot say: the level lies outside the pool's levels at e (no
    extrapolation), or the levels explain less than `min_r2` of the finals' variance."""
    n = stats.n
    if n < 3 or e >= len(stats.mx):
        return None
    if not lo[e] <= lv <= hi[e]:
        # outside what previous builds have shown at this epoch: do not extrapolate the
        # regression; the model trains on, and once finished widens the pool
        return None
    f = _TRANSFORMS[transform][0]
    x0 = float(f(np.array([lv]))[0])
    sxx = float(stats.cxx[e]) + 1e-9
    sxt = float(stats.cxt[e])
    stt = float(stats.ctt)
    b = sxt / sxx
    a = stats.mt - b * float(stats.mx[e])
    rss = max(stt - b * sxt, 0.0)
    r2 = 1.0 - rss / stt if stt > 0 else 0.0
    if r2 < min_r2:
        # the pool's levels at this epoch do not tell its finals apart: a prediction
        # would be "an average model", accurate on average but blind to the ranking
        return None
    # residual variance shrunk towards a prior guess (PRIOR_S2 with PRIOR_DF pseudo
    # degrees of freedom): three or four curves alone can fit by chance almost exactly
    s2 = (rss + PRIOR_DF * PRIOR_S2[transform]) / (n - 2 + PRIOR_DF)
    u = a + b * x0
    lev = 1.0 / n + (x0 - float(stats.mx[e])) ** 2 / sxx
    su = math.sqrt(max(s2, 1e-12) * (1.0 + lev))
    return u, su, a, b, ""


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
        self.transform = cfg.prior_transform
        if self.transform == "auto":
            self.transform = "log_error" if self.norm.bounded else "identity"
        self.builds = PreviousBuilds(self.transform)
        self.families = [FAMILIES[f] for f in cfg.families if f != "paper"]
        # |error| / std of past predictions, per kind ("prior" or "families"), from models
        # that trained to the budget: the empirical calibration of the stopping rule
        self.calib: dict[str, Any] = {
            "prior": Scores(cfg.calibration_window),
            "families": Scores(cfg.calibration_window),
        }
        # a seed: curves of earlier searches (`seed`), on probation until the search's own
        # models show that it predicts them as well as it predicts its own curves
        self.seed: PreviousBuilds | None = None
        self.seed_calib = Scores(cfg.calibration_window)  # the seed's own (leave-one-out)
        self.seed_checks: list[float] = []  # the seed's standardised errors on own models
        self.seed_checked = 0  # own models trained to the budget the seed was checked on
        self.seed_state = "none"  # none, probation, trusted, rejected
        self.seed_q80 = math.inf  # 80% quantile of the seed's own leave-one-out errors
        self.seed_hits = 0.0  # its hit rate on its own curves (share within seed_q80)
        self._seeded_scores = 0  # calibration errors added while the seed took part
        self._merged: tuple[tuple[int, int], RunningStats] | None = None

    # -- the pool a prediction uses ---------------------------------------------------------
    def _seed_in_use(self) -> bool:
        return self.seed is not None and self.seed_state in ("probation", "trusted")

    def _pool(self) -> tuple[RunningStats | None, np.ndarray, np.ndarray, int]:
        """Statistics, level limits and size of the pool predictions come from: the
        search's own previous builds, with the seed's while the seed is in use."""
        own = self.builds
        if not self._seed_in_use():
            return own.stats, own.lo, own.hi, own.n
        seed = self.seed
        assert seed is not None
        if own.n == 0 or own.width != seed.width:
            return seed.stats, seed.lo, seed.hi, seed.n
        key = (own.n, seed.n)
        if self._merged is None or self._merged[0] != key:
            assert own.stats is not None and seed.stats is not None
            self._merged = (key, own.stats.merged(seed.stats))
        lo = np.minimum(own.lo, seed.lo)
        hi = np.maximum(own.hi, seed.hi)
        return self._merged[1], lo, hi, own.n + seed.n

    def pool_size(self) -> int:
        return self._pool()[3]

    def pool_view(self) -> PoolView | None:
        """The final values the tolerance is measured against: the search's own models
        once `prior_min_curves` exist, the seed's before that."""
        own = self.builds
        if own.n >= self.cfg.prior_min_curves or not self._seed_in_use():
            z = own.sorted_array()
        else:
            assert self.seed is not None
            z = self.seed.sorted_array()
        return PoolView(z, self.norm) if len(z) >= 2 else None

    def prior_predict(
        self,
        x: np.ndarray,
        z: np.ndarray,
        features: np.ndarray | None = None,
        cache: dict[str, Any] | None = None,
        seed_only: bool = False,
    ) -> tuple[float, float, str] | None:
        """(mean, std, note) in z units from the previous builds, or None when they cannot
        say. With `prior_arch_k` and the model's architecture features, the regression's
        prediction is corrected by the residuals of the most similar finished models."""
        cfg = self.cfg
        if seed_only:
            assert self.seed is not None and self.seed.stats is not None
            stats, lo, hi, n = self.seed.stats, self.seed.lo, self.seed.hi, self.seed.n
        else:
            stats, lo, hi, n = self._pool()
        if stats is None or n < 3:
            return None
        e = int(x[-1])
        if e >= len(stats.mx):
            return None
        lv = level_at(x, z, e)
        got = regress(stats, lo, hi, e, lv, self.transform, cfg.prior_min_r2)
        if got is None:
            return None
        u, su, a, b, _ = got
        note = f"previous builds: regression on {n} finished curves"
        own = self.builds
        if cfg.prior_arch_k and features is not None and own.n >= 3 and not seed_only:
            nb = None if cache is None else cache.get("nbrs")
            if nb is None or nb[0] != own.n:
                idx, dist = own.neighbours(features, cfg.prior_arch_k)
                w = np.exp(-dist / cfg.prior_arch_bandwidth)
                nb = (own.n, idx, w)
                if cache is not None:
                    cache["nbrs"] = nb
            _, idx, w = nb
            if len(idx):
                f = _TRANSFORMS[self.transform][0]
                resid = f(own.finals[idx]) - (a + b * f(own.levels[idx, e]))
                # shrunk towards no correction: one identical architecture gets half its say
                u += float(w @ resid) / (float(w.sum()) + 1.0)
                note += f", corrected by {len(idx)} similar architectures"
        finv, slope = _TRANSFORMS[self.transform][1:]
        mean = float(finv(u))
        std = su * slope(u)
        if not (math.isfinite(mean) and math.isfinite(std)):
            return None
        return mean, std, note

    # -- learning from finished models ----------------------------------------------------
    def learn_curve(
        self,
        x: np.ndarray,
        y: np.ndarray,
        stopped: bool,
        log: list | None = None,
        features: np.ndarray | None = None,
    ) -> None:
        """Add a finished model's curve (only what was trained) to the pool and calibration.

        For a model trained to the budget, the calibration of the prior gets the standardised
        errors of what the pool, as it stands before this model joins, predicts for it at
        every epoch from C_min on (leave-one-out, so it is the same whether the curve comes
        from a tracker here or from another worker's run directory); the calibration of the
        families gets the errors of the family predictions the tracker logged in situ
        (`log`: [epoch, mean, std, kind] entries in z units). With a seed on probation, the
        seed's own predictions for the model check the seed (`seed_*` settings).
        """
        if len(x) == 0:
            return
        cfg = self.cfg
        self.norm.ready(float(y[0]))
        z = self.norm.z(y)
        feats = None if features is None else np.asarray(features, float).ravel()
        complete = not stopped and x[-1] >= cfg.target_x
        if complete:
            final = float(np.interp(cfg.target_x, x, z))
            self.calib["families"].extend(
                [
                    abs(mean - final) / std
                    for _, mean, std, kind in log or []
                    if kind == "families" and std > 0 and math.isfinite(mean)
                ]
            )
            if cfg.prior != "none":
                scores = self._loo_scores(x, z, final, feats)
                self.calib["prior"].extend(scores)
                if self._seed_in_use():
                    self._seeded_scores += len(scores)
                    self._check_seed(x, z, final)
        if cfg.prior != "none":
            self.builds.add(x, z, cfg.target_x, complete=complete, features=feats)

    def _loo_scores(
        self,
        x: np.ndarray,
        z: np.ndarray,
        final: float,
        feats: np.ndarray | None,
        seed_only: bool = False,
        misses: bool = False,
    ) -> list[float]:
        """Standardised errors of the pool's predictions for this model at every epoch from
        C_min on (`misses`: an epoch where the pool cannot say counts as +inf)."""
        cfg = self.cfg
        if not seed_only and self.pool_size() < cfg.prior_min_curves:
            return []
        out: list[float] = []
        cache: dict[str, Any] = {}  # the model's architecture neighbours, found once
        for e in range(cfg.c_min, cfg.target_x):
            upto = x <= e
            if np.count_nonzero(upto) <= cfg.c_min:
                continue
            got = self.prior_predict(x[upto], z[upto], feats, cache, seed_only=seed_only)
            if got is not None and got[1] > 0:
                out.append(abs(got[0] - final) / got[1])
            elif misses:
                out.append(math.inf)
        return out

    def _check_seed(self, x: np.ndarray, z: np.ndarray, final: float) -> None:
        """Does the seed predict this search's model as well as it predicts its own curves?
        Its hit rate here (the share of epochs from C_min on whose standardised error falls
        within the 80% quantile of its own leave-one-out errors; an epoch where it cannot
        say is a miss) must be at least `seed_coverage` times its hit rate on its own
        curves; otherwise it came from another task and is dropped for good, with the
        calibration errors of the predictions it took part in."""
        cfg = self.cfg
        self.seed_checks.extend(self._loo_scores(x, z, final, None, seed_only=True, misses=True))
        self.seed_checked += 1
        hits = (
            float(np.mean(np.asarray(self.seed_checks) <= self.seed_q80))
            if self.seed_checks
            else 0.0
        )
        if hits < cfg.seed_coverage * self.seed_hits:
            self.seed_state = "rejected"
            self._merged = None
            prior = self.calib["prior"]
            keep = max(len(prior.values) - self._seeded_scores, 0)
            prior.values = prior.values[:keep]
            prior._sorted = None
        elif self.seed_checked >= cfg.seed_min_checked:
            self.seed_state = "trusted"

    def learn_seed(self, curves: list[tuple[np.ndarray, np.ndarray]]) -> int:
        """Seed the prior with finished curves of earlier searches (x, y each; complete ones
        are used). Their exact leave-one-out errors (at most 500 curves) calibrate the seed
        until this search's models do, and set the hit rate it must keep on them. Returns
        the number of curves taken."""
        cfg = self.cfg
        seed = PreviousBuilds(self.transform)
        taken = 0
        for x, y in curves:
            if len(x) == 0 or x[-1] < cfg.target_x:
                continue
            self.norm.ready(float(y[0]))
            seed.add(x, self.norm.z(y), cfg.target_x, complete=True)
            taken += 1
        if seed.n < 3 or seed.stats is None:
            return 0
        f, finv, slope = _TRANSFORMS[self.transform]
        scores: list[float] = []
        for i in np.unique(np.linspace(0, seed.n - 1, min(seed.n, 500)).astype(int)):
            lv, fin = seed.levels[i], float(seed.finals[i])
            loo = seed.stats.removed(f(lv), float(f(np.array([fin]))[0]))
            for e in range(cfg.c_min, cfg.target_x):
                got = regress(
                    loo, seed.lo, seed.hi, e, float(lv[e]), self.transform, cfg.prior_min_r2
                )
                sd = None if got is None else got[1] * slope(got[0])
                scores.append(abs(float(finv(got[0])) - fin) / sd if sd else math.inf)
        s_arr = np.asarray(scores)
        finite = s_arr[np.isfinite(s_arr)]
        if not len(finite):
            return 0
        self.seed, self.seed_state = seed, "probation"
        self.seed_calib = Scores(cfg.calibration_window)
        self.seed_calib.extend(finite.tolist())
        self.seed_q80 = float(np.quantile(finite, 0.8))
        self.seed_hits = float(np.mean(s_arr <= self.seed_q80))
        self.seed_checks, self.seed_checked, self._seeded_scores = [], 0, 0
        self._merged = None
        return taken

    def p_within(self, kind: str, std_z: float, delta_z: float) -> float:
        """P(|final - prediction| <= delta): empirical from past standardised errors when
        there are enough of them (a split-conformal estimate), else a normal model. Before
        the search has enough errors of its own, a seed in use lends its own."""
        past = self.calib[kind]
        m = self.cfg.calibration_min
        if kind == "prior" and len(past) < m and self._seed_in_use():
            past = self.seed_calib
        if len(past) < m or std_z <= 0:
            return prob_within(std_z, delta_z)
        s = _sorted_scores(past)
        return float(np.searchsorted(s, delta_z / std_z, side="right")) / (len(s) + 1)

    # -- one prediction -----------------------------------------------------------------------
    def predict(self, state: dict[str, Any], x: np.ndarray, y: np.ndarray) -> Prediction:
        """Predict from the curve so far; `state` keeps warm starts, the prediction log and
        the model's architecture features (`features`, from `Engine.start`)."""
        cfg = self.cfg
        self.norm.ready(float(y[0]))
        z = self.norm.z(y)
        target = float(cfg.target_x)
        parts: list[tuple[float, float]] = []  # (mean, std) in z
        notes: list[str] = []
        params: dict[str, float] | None = None
        family: str | None = None

        with_prior = cfg.prior != "none"
        pool_n = self.pool_size() if with_prior else 0
        pool = pool_n if with_prior else None
        prior = None
        if cfg.prior == "previous_builds" and pool_n >= cfg.prior_min_curves:
            feats = state.get("features")
            prior = self.prior_predict(x, z, feats, cache=state)
        if prior is not None:
            pm, ps, pnote = prior
            lo, hi = self.norm.z_limits()
            pm = min(max(pm, lo), hi)
            parts.append((pm, max(ps, 1e-9) / math.sqrt(cfg.prior_weight or 1e-12)))
            notes.append(pnote)
            family = "previous_builds"

        cold = not with_prior or pool_n < cfg.prior_min_curves
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
        norm = self.norm

        def p_at(delta: float, kind: str = kind, std: float = std) -> float:
            return self.p_within(kind, std, norm.dz(delta))

        return Prediction(
            self.norm.y(mean),
            std=self.norm.dy(std),
            params=params,
            family=family,
            note="; ".join(notes),
            p_within=p_at(cfg.delta * cfg.unit),
            p_within_at=p_at,
            pool_view=self.pool_view() if with_prior else None,
            source=kind,
            pool=pool,
            seed=self.seed_state if self.seed is not None else None,
            seed_checked=self.seed_checked if self.seed is not None else None,
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
