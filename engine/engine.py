"""The engine's public API: `Engine` (settings + what it learned from finished models),
`Tracker` (one model's fitness history H and prediction history P) and `Decision`.

A training loop does, after each validated epoch e (Algorithm 1 of the A4NN paper):

    d = tracker.observe(e, val_acc)
    if d.converged: break
    ...
    fitness = tracker.fitness()   # P[-1] if converged, else the last valid observed value
    engine.finish(tracker)

`observe` never raises: bad input (NaN/inf, out-of-range values, a non-integer or negative
epoch) is ignored and explained in `Decision.note`; a repeated epoch replaces the earlier
value; epochs arriving out of order are sorted; a failed fit is a failed prediction. What
may stop a model, and what may veto that, is decided in `engine.stopping`; an exception
inside the engine is logged with the model id and never reaches the caller.
"""

from __future__ import annotations

import logging
import math
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from .config import EngineConfig, preset
from .curve import Curve, as_epoch, check_value
from .ensemble import EnsemblePredictor
from .paper import PaperPredictor
from .prediction import Prediction, Predictor
from .records import read_curves
from .stopping import Evidence, StopPolicy, Verdict, policy_for

logger = logging.getLogger(__name__)

__all__ = ["Decision", "Engine", "Prediction", "Tracker"]


@dataclass(frozen=True)
class Decision:
    """The engine's answer after one epoch: its prediction and whether training may stop.

    `verdict` names the rule that stopped the model, the guard that vetoed a stop, or the
    rule that saw no reason to stop yet (None when no decision was taken: bad input).
    """

    epoch: int | None
    prediction: float | None
    converged: bool
    params: dict[str, float] | None = None
    family: str | None = None
    note: str = ""
    std: float | None = None
    verdict: Verdict | None = None


@dataclass
class Tracker:
    """Per-model state: the observed curve H, the prediction list P, convergence."""

    model_id: Any
    config: EngineConfig
    engine: Engine
    history: list[tuple[Any, Any]] = field(default_factory=list)  # every (epoch, value) given
    predictions: list[float] = field(default_factory=list)  # P; +inf marks a failed prediction
    converged: bool = False
    converged_epoch: int | None = None
    last_decision: Decision | None = None
    state: dict[str, Any] = field(default_factory=dict)  # predictor scratch (warm starts)
    call_seconds: list[float] = field(default_factory=list)
    points: Curve = field(default_factory=Curve)  # the valid points, one per epoch

    # -- the curve as the engine uses it --------------------------------------------------------
    def curve(self) -> tuple[np.ndarray, np.ndarray]:
        """Valid points (finite, in range), sorted by epoch: x (0-based epochs) and values."""
        return self.points.arrays()

    def fitness(self) -> float:
        """Algorithm 1's return value: P[-1] if converged, else the last valid observed value."""
        if self.converged and self.predictions:
            return float(self.predictions[-1])
        return self.points.last()

    @property
    def epochs_observed(self) -> int:
        return len(self.points)

    def prediction_log(self) -> list[list]:
        """The predictions a learning engine logged for this model ([epoch, mean, std,
        kind] each; JSON-ready), for `Engine.learn_curve` to learn from elsewhere."""
        return [list(entry) for entry in self.state.get("log", [])]

    # -- one epoch ------------------------------------------------------------------------------
    def observe(self, epoch: int, value: float) -> Decision:
        """Record the fitness of 0-based `epoch`, predict, and decide whether to stop."""
        t0 = time.perf_counter()
        try:
            d = self._observe(epoch, value)
        except Exception as e:  # never end training because of the engine
            logger.warning(
                "engine: observe failed for model %r at epoch %r; ignored",
                self.model_id,
                epoch,
                exc_info=True,
            )
            d = Decision(
                as_epoch(epoch),
                self._last_valid_prediction(),
                self.converged,
                note=f"engine error ignored: {type(e).__name__}: {e}",
            )
        self.last_decision = d
        self.call_seconds.append(time.perf_counter() - t0)
        return d

    def _last_valid_prediction(self) -> float | None:
        if self.predictions and math.isfinite(self.predictions[-1]):
            return float(self.predictions[-1])
        return None

    def _keep(self, note: str, epoch: int | None) -> Decision:
        """Answer without changing anything (bad input, or already converged)."""
        last = self.last_decision
        return Decision(
            epoch,
            self._last_valid_prediction(),
            self.converged,
            params=last.params if last else None,
            family=last.family if last else None,
            note=note,
            std=last.std if last else None,
        )

    def _observe(self, epoch: Any, value: Any) -> Decision:
        self.history.append((epoch, value))
        e = as_epoch(epoch)
        if e is None:
            return self._keep(f"epoch {epoch!r} is not a whole number >= 0; ignored", None)
        if self.converged:
            return self._keep(
                f"already converged at epoch {self.converged_epoch}; training should have stopped",
                e,
            )
        v, why = check_value(value, e, self.config.value_range)
        if v is None:
            return self._keep(why, e)
        note = self.points.add(e, v)
        predictor, policy = self.engine.predictor, self.engine.policy
        if predictor is None:
            return Decision(e, None, False, note=note or "engine off")
        held = policy.hold(Evidence(e, len(self.points), self.predictions))
        if held is not None:
            return Decision(e, None, False, note=_join(note, held.note), verdict=held)
        x, y = self.curve()
        pred = predictor.predict(self.state, x, y)
        self.predictions.append(pred.value)
        verdict = policy.decide(
            Evidence(
                e,
                len(self.points),
                self.predictions,
                std=pred.std,
                p_within=pred.p_within,
                source=pred.source,
                pool=pred.pool,
                p_within_at=pred.p_within_at,
                pool_view=pred.pool_view,
                seed=pred.seed,
                seed_checked=pred.seed_checked,
            )
        )
        if verdict.stop:
            self.converged = True
            self.converged_epoch = e
        ok = math.isfinite(pred.value)
        return Decision(
            e,
            pred.value if ok else None,
            verdict.stop,
            params=pred.params,
            family=pred.family,
            note=_join(note, pred.note, verdict.note),
            std=pred.std,
            verdict=verdict,
        )


def _features(features: Any) -> np.ndarray | None:
    """A choice vector as a flat float array (nested lists are flattened); None when absent
    or not numbers."""
    if features is None:
        return None
    try:
        arr = np.asarray(features, dtype=float).ravel()
    except (TypeError, ValueError):
        return None
    return arr if arr.size and np.all(np.isfinite(arr)) else None


def _join(*notes: str) -> str:
    return "; ".join(n for n in notes if n)


def make_predictor(cfg: EngineConfig) -> Predictor | None:
    """The predictor `cfg.method` names (None for `off`: the engine never predicts)."""
    if cfg.method == "paper":
        return PaperPredictor(cfg)
    if cfg.method == "ensemble":
        return EnsemblePredictor(cfg)
    return None


class Engine:
    """A prediction engine with fixed settings; `start` one tracker per model.

    `predictor` makes the predictions (and learns from finished models); `policy` holds
    the stop rule and its guards (`engine.stopping`).
    """

    def __init__(self, config: EngineConfig | None = None):
        self.config = config or preset("paper")
        self.config.validate()
        self.finished: int = 0
        self.predictor: Predictor | None = make_predictor(self.config)
        self.policy: StopPolicy = policy_for(self.config)
        if self.config.prior_seed:
            self.seed_from(self.config.prior_seed)

    def seed_from(self, source: Any) -> int:
        """Start the prior from the curves of earlier searches, so that the first models of
        this one can already be stopped: `source` is an A4NN commons CSV, a run directory
        (or its epochs.csv), a `Curves` from `engine.read_curves`, or an iterable of
        (epochs, values) pairs. Only curves trained to this engine's budget are used. The
        seed is on probation (guard `seed_on_probation`) until checked on this search's own
        models, and dropped if it predicts them worse than it predicts its own curves (a
        prior from another task). Returns the number of curves taken (0: the engine has no
        previous-builds prior, or fewer than 3 usable curves). Errors in reading the source
        are raised: seeding happens before a search, not during one."""
        learn_seed = getattr(self.predictor, "learn_seed", None)
        if learn_seed is None or self.config.prior == "none":
            return 0
        if isinstance(source, str | Path):
            source = read_curves(source)
        if hasattr(source, "rows") and hasattr(source, "models"):
            pairs = [source.curve(k) for k in source.models()]
        else:
            pairs = list(source)
        curves = []
        for epochs, values in pairs:
            c = Curve()
            for e, v in zip(epochs, values, strict=True):
                e2 = as_epoch(e)
                v2 = None if e2 is None else check_value(v, e2, self.config.value_range)[0]
                if e2 is not None and v2 is not None:
                    c.add(e2, v2)
            curves.append(c.arrays())
        return int(learn_seed(curves))

    # -- construction ---------------------------------------------------------------------------
    @classmethod
    def from_preset(cls, name: str, **overrides: Any) -> Engine:
        """`paper`, `default` or `off`, optionally with fields changed (e.g. e_pred=10)."""
        cfg = preset(name)
        if overrides:
            cfg = EngineConfig.from_dict({"preset": name, **overrides}, source=f"preset {name}")
        return cls(cfg)

    @classmethod
    def from_config(cls, cfg: EngineConfig | dict[str, Any], **overrides: Any) -> Engine:
        if isinstance(cfg, dict):
            cfg = EngineConfig.from_dict({**cfg, **overrides})
        elif overrides:
            cfg = cfg.with_(**overrides)
        return cls(cfg)

    @classmethod
    def from_yaml(cls, path: str | Path, **overrides: Any) -> Engine:
        cfg = EngineConfig.from_yaml(path)
        return cls(cfg.with_(**overrides) if overrides else cfg)

    # -- per model ------------------------------------------------------------------------------
    def start(self, model_id: Any, features: Any = None) -> Tracker:
        """A tracker for one model; `features`: its architecture's choice vector (numbers,
        e.g. `space.encode(arch)`), used by the architecture-aware prior."""
        tr = Tracker(model_id=model_id, config=self.config, engine=self)
        feats = _features(features)
        if feats is not None:
            tr.state["features"] = feats
        return tr

    def finish(self, tracker: Tracker) -> None:
        """The model is done (stopped or trained to budget); priors learn from what it showed.

        Never raises (a search must not end because of the engine): an error is logged
        with the model id, and the engine learns nothing from that model."""
        try:
            self.finished += 1
            if self.predictor is not None:
                x, y = tracker.curve()
                self.predictor.learn_curve(
                    x,
                    y,
                    tracker.converged,
                    tracker.prediction_log(),
                    features=tracker.state.get("features"),
                )
        except Exception:
            logger.exception(
                "engine: finish failed for model %r; the engine did not learn from it",
                getattr(tracker, "model_id", tracker),
            )

    def learn_curve(
        self,
        epochs: Any,
        values: Any,
        stopped: bool = False,
        log: list | None = None,
        model_id: Any = None,
        features: Any = None,
    ) -> None:
        """Teach the engine a finished model's curve recorded elsewhere (another worker, or
        a run being resumed): `epochs` 0-based, `values` the fitness; `stopped` if the engine
        ended it early; `log` the predictions its tracker logged in situ
        (`Tracker.prediction_log()`), so the engine learns what `finish` would have taught
        it; `model_id` names the model in the log if this fails; `features` its architecture's
        choice vector (as for `start`). Invalid points are dropped
        as `observe` would drop them. Never raises: an error is logged with the model id."""
        try:
            curve = Curve()
            for e, v in zip(epochs, values, strict=True):
                e2 = as_epoch(e)
                v2 = None if e2 is None else check_value(v, e2, self.config.value_range)[0]
                if e2 is not None and v2 is not None:
                    curve.add(e2, v2)
            if self.predictor is not None:
                x, y = curve.arrays()
                self.predictor.learn_curve(x, y, stopped, log, features=_features(features))
            self.finished += 1
        except Exception:
            logger.exception(
                "engine: learn_curve failed for model %r; the engine did not learn from it",
                model_id,
            )
