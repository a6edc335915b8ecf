"""The stop decision, in one place: what can stop a model (rules), what can veto it (guards).

After each epoch the engine hands the `StopPolicy` built from its settings (`policy_for`)
the `Evidence`: the prediction list P and what the predictor said about its newest entry.
The policy asks its guards in order; the first that vetoes decides (no stop), and says why.
If none vetoes, the rule decides. The answer is a `Verdict` naming the rule or guard that
decided and why; the engine copies it into `Decision.verdict` and, for a stop or a veto,
into `Decision.note`.

Rules (one per `stop_rule`; each owns `decide`):

* `SpreadRule` (`spread`, the paper's rule, Sec. 2.1.2): the N most recent predictions each
  lie within r of their median.
* `ProbabilityRule` (`probability`, the `default` preset): the spread rule, and the
  predictor's P(|final - prediction| <= delta) >= confidence. The ensemble estimates that
  probability split-conformally from the standardised errors of its past predictions on
  models trained to the budget (`EnsemblePredictor.p_within`), from a normal error before
  `calibration_min` of them exist; a predictor that gives only a std gets the normal one.

Guards (each owns `veto`, which returns the reason or None):

* `MinPoints` (C_min): no prediction before C_min + 1 valid points. Asked before predicting
  (`StopPolicy.hold`), because the predictor needs those points.
* `MinEpochs` (`min_epoch_fraction`): no stop before that fraction of the target epoch.
* `PoolWarmingUp` (with a prior): no stop before `prior_min_curves` models trained to the
  budget have seeded the previous-builds pool.
* `ValidPredictions`: the last N predictions are finite and inside `value_range`, so a
  failed fit (+inf in P) blocks a stop for the next N predictions, as in the paper.
* `OnlyPriorStops` (with a prior): only a prediction of the previous-builds prior may stop
  a model; a curve family fitted to a flat start (a net stuck at chance) looks certain.
* `NothingToSave` (`method: ensemble`): no stop at the budget's last epoch (or later): it
  saves no epoch, and the measured value is exact where a prediction is not. The model
  counts as trained to the budget, so it joins the previous-builds pool and calibration.

With `method: off` the engine makes no prediction, so nothing here is asked.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any, ClassVar, Protocol

from .config import EngineConfig
from .curve import in_range


@dataclass(frozen=True)
class Evidence:
    """What the stop decision sees after one epoch."""

    epoch: int  # the 0-based epoch just observed
    points: int  # valid points on the curve so far
    predictions: Sequence[float] = ()  # P, newest last; +inf marks a failed prediction
    std: float | None = None  # predictive std of the newest prediction (fitness units)
    p_within: float | None = None  # the predictor's P(|final - newest| <= delta), if known
    source: str | None = None  # what made the newest prediction: paper, families, prior
    pool: int | None = None  # models in the previous-builds pool (None: no prior)
    # P(|final - newest| <= d) for a tolerance d in fitness units (calibrated), if known
    p_within_at: Callable[[float], float] | None = None
    pool_view: Any = None  # the pool's final values: quantile(p), cdf(v), iqr(), n
    seed: str | None = None  # a seeded prior: probation, trusted, rejected (None: no seed)
    seed_checked: int | None = None  # own models trained to the budget the seed was checked on


@dataclass(frozen=True)
class Verdict:
    """Whether to stop, which rule or guard decided (`by`), and why."""

    stop: bool
    by: str
    reason: str
    veto: bool = False  # a guard held the model back (else a rule decided)

    @property
    def note(self) -> str:
        """For `Decision.note`: a stop or a veto, said in words; "" when a rule holds."""
        if self.stop:
            return f"stopped by {self.by}: {self.reason}"
        if self.veto:
            return f"vetoed by {self.by}: {self.reason}"
        return ""


class Rule(Protocol):
    """Something that can stop a model."""

    name: ClassVar[str]

    def decide(self, ev: Evidence) -> Verdict: ...


class Guard(Protocol):
    """Something that can veto a stop; `veto` returns the reason, or None."""

    name: ClassVar[str]

    def veto(self, ev: Evidence) -> str | None: ...


def median(values: Sequence[float]) -> float:
    """The median (the mean of the two middle values for an even count)."""
    s = sorted(values)
    m = len(s) // 2
    return s[m] if len(s) % 2 else 0.5 * (s[m - 1] + s[m])


def prob_within(std: float, delta: float) -> float:
    """P(|final - prediction| <= delta) under a normal predictive error of the given std."""
    if not math.isfinite(std):
        return 0.0
    if std <= 0:
        return 1.0
    z = delta / std
    return math.erf(z / math.sqrt(2.0))  # = ndtr(z) - ndtr(-z), without importing scipy


# -- rules ------------------------------------------------------------------------------------
@dataclass(frozen=True)
class SpreadRule:
    """The paper's rule: the last `n` predictions each lie within `r` of their median."""

    n: int
    r: float  # fitness units
    name: ClassVar[str] = "spread"

    def decide(self, ev: Evidence) -> Verdict:
        preds = ev.predictions
        if len(preds) < self.n:
            return Verdict(False, self.name, f"{len(preds)} of {self.n} predictions")
        last = list(preds[-self.n :])
        med = median(last)
        if all(abs(p - med) <= self.r for p in last):
            return Verdict(
                True,
                self.name,
                f"the last {self.n} predictions lie within {self.r:g} of their median {med:.4g}",
            )
        worst = max((abs(p - med) for p in last), key=lambda d: math.inf if math.isnan(d) else d)
        return Verdict(
            False,
            self.name,
            f"the last {self.n} predictions spread {worst:.3g} from their median (r = {self.r:g})",
        )


# -- tolerances: how close a prediction must be to the final value -----------------------------
class Tolerance(Protocol):
    """How far (fitness units) a prediction may miss the final value and still be right."""

    name: ClassVar[str]

    def delta(self, ev: Evidence) -> float: ...

    def describe(self, ev: Evidence, d: float) -> str: ...


@dataclass(frozen=True)
class AbsoluteTolerance:
    """`tolerance: absolute`: a fixed delta, whatever the search."""

    floor: float  # fitness units
    name: ClassVar[str] = "absolute"

    def delta(self, ev: Evidence) -> float:
        return self.floor

    def describe(self, ev: Evidence, d: float) -> str:
        return f"{d:.3g}"


@dataclass(frozen=True)
class PoolSpreadTolerance:
    """`tolerance: pool_spread`: delta = max(floor, scale x the interquartile range of the
    pool's final values). Models far apart forgive a bigger miss; never below the floor
    (differences smaller than it are noise the NAS cannot rank anyway)."""

    floor: float  # fitness units
    scale: float
    name: ClassVar[str] = "pool_spread"

    def delta(self, ev: Evidence) -> float:
        view = ev.pool_view
        if view is None or view.n < 2:
            return self.floor
        return max(self.floor, self.scale * view.iqr())

    def describe(self, ev: Evidence, d: float) -> str:
        return f"{d:.3g} (max of {self.floor:g} and {self.scale:g} x the pool's IQR)"


@dataclass(frozen=True)
class RankTolerance:
    """`tolerance: rank`: the final value may lie anywhere that moves the model by at most
    a share `scale` of the pool in rank: delta = the distance from the prediction to the
    nearer of the pool's quantiles at its rank +- scale, never below the floor."""

    floor: float
    scale: float
    name: ClassVar[str] = "rank"

    def delta(self, ev: Evidence) -> float:
        view = ev.pool_view
        if view is None or view.n < 2 or not ev.predictions:
            return self.floor
        p = ev.predictions[-1]
        if not math.isfinite(p):
            return self.floor
        c = view.cdf(p)
        below = p - view.quantile(c - self.scale)
        above = view.quantile(c + self.scale) - p
        return max(self.floor, min(abs(below), abs(above)))

    def describe(self, ev: Evidence, d: float) -> str:
        return f"{d:.3g} (rank moves <= {self.scale:.0%} of the pool, floor {self.floor:g})"


@dataclass(frozen=True)
class ProbabilityRule:
    """The spread rule, and P(|final - prediction| <= delta) >= confidence, with delta from
    the tolerance (absolute, or scaled to the pool's spread or to the model's rank)."""

    spread: SpreadRule
    tolerance: Tolerance
    confidence: float
    name: ClassVar[str] = "probability"

    @property
    def delta(self) -> float:  # the floor, in fitness units (kept for callers of old)
        return getattr(self.tolerance, "floor", float("nan"))

    def decide(self, ev: Evidence) -> Verdict:
        agree = self.spread.decide(ev)
        if not agree.stop:
            return Verdict(False, self.name, agree.reason)
        d = self.tolerance.delta(ev)
        if ev.p_within_at is not None:
            p = ev.p_within_at(d)
        elif ev.p_within is not None and d == self.delta:
            p = ev.p_within
        elif ev.std is not None:
            p = prob_within(ev.std, d)
        else:
            return Verdict(False, self.name, "the predictor gives no uncertainty")
        said = f"P(|final - prediction| <= {self.tolerance.describe(ev, d)}) = {p:.3f}"
        if p >= self.confidence:
            return Verdict(True, self.name, f"{said} >= {self.confidence:g}; {agree.reason}")
        return Verdict(False, self.name, f"{said} < {self.confidence:g}")


# -- guards -----------------------------------------------------------------------------------
@dataclass(frozen=True)
class MinPoints:
    """C_min: the engine predicts only from C_min + 1 valid points on."""

    c_min: int
    name: ClassVar[str] = "min_points"

    def veto(self, ev: Evidence) -> str | None:
        if ev.points <= self.c_min:
            return f"{ev.points} of {self.c_min + 1} points before predicting"
        return None


@dataclass(frozen=True)
class MinEpochs:
    """`min_epoch_fraction`: never stop before that fraction of the target epoch."""

    fraction: float
    target_x: int
    name: ClassVar[str] = "min_epochs"

    def veto(self, ev: Evidence) -> str | None:
        if ev.epoch + 1 < self.fraction * self.target_x:
            return (
                f"{ev.epoch + 1} epochs trained, fewer than min_epoch_fraction "
                f"{self.fraction:g} of {self.target_x}"
            )
        return None


@dataclass(frozen=True)
class PoolWarmingUp:
    """With a prior: no stop until `min_curves` models trained to the budget seed its pool
    (only such models join the pool; an engine that stopped them would never learn)."""

    min_curves: int
    name: ClassVar[str] = "pool_warming_up"

    def veto(self, ev: Evidence) -> str | None:
        pool = ev.pool or 0
        if pool < self.min_curves:
            return (
                f"warming up: {pool} of {self.min_curves} models trained to the budget "
                "before any is stopped"
            )
        return None


@dataclass(frozen=True)
class ValidPredictions:
    """The last `n` predictions are finite and inside `value_range`: a failed fit (+inf)
    blocks a stop for the next `n` predictions, as in the paper's engine."""

    n: int
    lo: float | None
    hi: float | None
    name: ClassVar[str] = "valid_predictions"

    def veto(self, ev: Evidence) -> str | None:
        last = list(ev.predictions[-self.n :])
        if any(not math.isfinite(p) for p in last):
            return f"a failed prediction among the last {self.n}"
        bad = [p for p in last if not in_range(p, self.lo, self.hi)]
        if bad:
            return f"prediction {bad[0]:.4g} outside value_range [{self.lo}, {self.hi}]"
        return None


@dataclass(frozen=True)
class OnlyPriorStops:
    """With a prior: only the previous-builds prior's prediction may stop a model; a curve
    family fitted to a flat start (a net stuck at chance level) looks certain."""

    name: ClassVar[str] = "only_prior_stops"

    def veto(self, ev: Evidence) -> str | None:
        if ev.source != "prior":
            return (
                f"the prediction came from {ev.source or 'no predictor'}, "
                "and with a prior only the prior stops models"
            )
        return None


@dataclass(frozen=True)
class NothingToSave:
    """No stop at the budget's last epoch (0-based `last_epoch` = e_pred - 1) or later.

    A stop there saves no epoch, yet it hands the NAS a prediction instead of the value just
    measured, and keeps the model (it counts as stopped) out of the previous-builds pool and
    the calibration, which learn only from models trained to the budget. Not used by the
    `paper` preset, whose published in-situ engine did stop at the last epoch."""

    last_epoch: int
    name: ClassVar[str] = "nothing_to_save"

    def veto(self, ev: Evidence) -> str | None:
        if ev.epoch >= self.last_epoch:
            return (
                f"epoch {ev.epoch} is the budget's last: a stop saves nothing, the measured "
                "value is handed on"
            )
        return None


@dataclass(frozen=True)
class SeedOnProbation:
    """With a seeded prior (curves of earlier searches): no stop until the seed has been
    checked on `min_checked` of this search's own models trained to the budget; a seed that
    failed its check is dropped by the predictor, and the own pool's guards apply again."""

    min_checked: int
    name: ClassVar[str] = "seed_on_probation"

    def veto(self, ev: Evidence) -> str | None:
        if ev.seed == "probation" and (ev.seed_checked or 0) < self.min_checked:
            return (
                f"the seed from earlier searches is checked on {ev.seed_checked or 0} of "
                f"{self.min_checked} own models trained to the budget"
            )
        return None


# -- the policy -------------------------------------------------------------------------------
@dataclass(frozen=True)
class StopPolicy:
    """A rule and its guards: `hold` before predicting, `decide` after."""

    rule: Rule
    guards: tuple[Guard, ...] = ()  # asked in order after each prediction
    before: tuple[Guard, ...] = ()  # asked in order before predicting

    def hold(self, ev: Evidence) -> Verdict | None:
        """A veto on predicting at all this epoch (too few points), or None."""
        return _first_veto(self.before, ev)

    def decide(self, ev: Evidence) -> Verdict:
        """The first guard's veto, else the rule's verdict."""
        return _first_veto(self.guards, ev) or self.rule.decide(ev)

    def describe(self) -> list[str]:
        """The names of the guards (in order) and of the rule, for logs and docs."""
        return [g.name for g in self.before + self.guards] + [self.rule.name]


def _first_veto(guards: Sequence[Guard], ev: Evidence) -> Verdict | None:
    for g in guards:
        reason = g.veto(ev)
        if reason is not None:
            return Verdict(False, g.name, reason, veto=True)
    return None


def policy_for(cfg: EngineConfig) -> StopPolicy:
    """The rule and guards that `cfg` asks for (see the module docstring)."""
    lo, hi = cfg.value_range
    spread = SpreadRule(cfg.n, cfg.r * cfg.unit)
    rule: Rule = spread
    if cfg.stop_rule == "probability":
        rule = ProbabilityRule(spread, tolerance_for(cfg), cfg.confidence)
    guards: list[Guard] = [MinEpochs(cfg.min_epoch_fraction, cfg.target_x)]
    with_prior = cfg.method == "ensemble" and cfg.prior != "none"
    if with_prior:
        guards.append(PoolWarmingUp(cfg.prior_min_curves))
    guards.append(ValidPredictions(cfg.n, lo, hi))
    if with_prior:
        guards.append(OnlyPriorStops())
        guards.append(SeedOnProbation(cfg.seed_min_checked))
    if cfg.method == "ensemble":  # not `paper`: the published engine stopped at the last epoch
        guards.append(NothingToSave(cfg.e_pred - 1))
    return StopPolicy(rule, tuple(guards), before=(MinPoints(cfg.c_min),))


def tolerance_for(cfg: EngineConfig) -> Tolerance:
    """The tolerance `cfg.tolerance` names, with `delta` as its floor (fitness units)."""
    floor = cfg.delta * cfg.unit
    if cfg.tolerance == "pool_spread":
        return PoolSpreadTolerance(floor, cfg.tolerance_scale)
    if cfg.tolerance == "rank":
        return RankTolerance(floor, cfg.tolerance_scale)
    return AbsoluteTolerance(floor)
