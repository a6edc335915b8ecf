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
value; epochs arriving out of order are sorted; a failed fit is a failed prediction.
"""

from __future__ import annotations

import math
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from .analyzer import in_range, probability_converged, spread_converged
from .config import EngineConfig, preset
from .fitting import fit_paper


@dataclass
class Prediction:
    """What a predictor says about one model after one epoch."""

    value: float  # +inf when no valid prediction could be made
    std: float | None = None  # predictive standard deviation (fitness units), if known
    params: dict[str, float] | None = None
    family: str | None = None
    note: str = ""
    p_within: float | None = None  # P(|final - value| <= delta), if the predictor knows it


@dataclass(frozen=True)
class Decision:
    """The engine's answer after one epoch: its prediction and whether training may stop."""

    epoch: int | None
    prediction: float | None
    converged: bool
    params: dict[str, float] | None = None
    family: str | None = None
    note: str = ""
    std: float | None = None


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
    _points: dict[int, float] = field(default_factory=dict)

    # -- the curve as the engine uses it --------------------------------------------------------
    def curve(self) -> tuple[np.ndarray, np.ndarray]:
        """Valid points (finite, in range), sorted by epoch: x (0-based epochs) and values."""
        if not self._points:
            return np.zeros(0), np.zeros(0)
        xs = sorted(self._points)
        return np.array(xs, float), np.array([self._points[e] for e in xs], float)

    def fitness(self) -> float:
        """Algorithm 1's return value: P[-1] if converged, else the last valid observed value."""
        if self.converged and self.predictions:
            return float(self.predictions[-1])
        if not self._points:
            return float("nan")
        return float(self._points[max(self._points)])

    @property
    def epochs_observed(self) -> int:
        return len(self._points)

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
            d = Decision(
                _as_epoch(epoch),
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
        cfg = self.config
        self.history.append((epoch, value))
        e = _as_epoch(epoch)
        if e is None:
            return self._keep(f"epoch {epoch!r} is not a whole number >= 0; ignored", None)
        if self.converged:
            return self._keep(
                f"already converged at epoch {self.converged_epoch}; training should have stopped",
                e,
            )
        try:
            v = float(value)
        except (TypeError, ValueError):
            return self._keep(f"value {value!r} at epoch {e} is not a number; ignored", e)
        if not math.isfinite(v):
            return self._keep(f"value {v} at epoch {e} is not finite; ignored", e)
        lo, hi = cfg.value_range
        if not in_range(v, lo, hi):
            return self._keep(
                f"value {v} at epoch {e} is outside value_range [{lo}, {hi}]; ignored", e
            )
        note = ""
        if e in self._points:
            note = f"epoch {e} repeated; the new value replaces {self._points[e]}"
        elif self._points and e < max(self._points):
            note = f"epoch {e} arrived after epoch {max(self._points)}; curve re-sorted"
        self._points[e] = v
        if cfg.method == "off":
            return Decision(e, None, False, note=note or "engine off")
        if len(self._points) <= cfg.c_min:
            return Decision(
                e,
                None,
                False,
                note=_join(
                    note, f"{len(self._points)} of {cfg.c_min + 1} points before predicting"
                ),
            )
        x, y = self.curve()
        pred = self.engine._predict(self, x, y)
        self.predictions.append(pred.value)
        converged = self._analyze(pred, e)
        if converged:
            self.converged = True
            self.converged_epoch = e
        ok = math.isfinite(pred.value)
        return Decision(
            e,
            pred.value if ok else None,
            converged,
            params=pred.params,
            family=pred.family,
            note=_join(note, pred.note),
            std=pred.std,
        )

    def _analyze(self, pred: Prediction, e: int) -> bool:
        cfg = self.config
        lo, hi = cfg.value_range
        if e + 1 < cfg.min_epoch_fraction * cfg.target_x:
            return False
        if cfg.stop_rule == "probability":
            return probability_converged(
                self.predictions,
                pred.std,
                cfg.n,
                cfg.r * cfg.unit,
                cfg.delta * cfg.unit,
                cfg.confidence,
                lo,
                hi,
                p_within=pred.p_within,
            )
        return spread_converged(self.predictions, cfg.n, cfg.r * cfg.unit, lo, hi)


def _as_epoch(epoch: Any) -> int | None:
    try:
        f = float(epoch)
    except (TypeError, ValueError):
        return None
    if not math.isfinite(f) or f < 0 or f != int(f):
        return None
    return int(f)


def _as_float(value: Any) -> float | None:
    try:
        v = float(value)
    except (TypeError, ValueError):
        return None
    return v if math.isfinite(v) else None


def _join(*notes: str) -> str:
    return "; ".join(n for n in notes if n)


class Engine:
    """A prediction engine with fixed settings; `start` one tracker per model."""

    def __init__(self, config: EngineConfig | None = None):
        self.config = config or preset("paper")
        self.config.validate()
        self.finished: int = 0
        self._ensemble = None
        if self.config.method == "ensemble":
            from .ensemble import EnsemblePredictor

            self._ensemble = EnsemblePredictor(self.config)

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
    def start(self, model_id: Any) -> Tracker:
        return Tracker(model_id=model_id, config=self.config, engine=self)

    def finish(self, tracker: Tracker) -> None:
        """The model is done (stopped or trained to budget); priors learn from what it showed."""
        try:
            self.finished += 1
            if self._ensemble is not None:
                self._ensemble.learn(tracker)
        except Exception:  # never end a search because of the engine
            pass

    def learn_curve(
        self, epochs: Any, values: Any, stopped: bool = False, log: list | None = None
    ) -> None:
        """Teach the engine a finished model's curve recorded elsewhere (another worker, or
        a run being resumed): `epochs` 0-based, `values` the fitness; `stopped` if the engine
        ended it early; `log` the predictions its tracker logged in situ
        (`Tracker.prediction_log()`), so the engine learns what `finish` would have taught
        it. Invalid points are dropped as `observe` would drop them."""
        try:
            if self._ensemble is None:
                return
            tr = self.start("learn_curve")
            for e, v in zip(epochs, values, strict=True):
                e2, v2 = _as_epoch(e), _as_float(v)
                lo, hi = self.config.value_range
                if e2 is not None and v2 is not None and in_range(v2, lo, hi):
                    tr._points[e2] = v2
            x, y = tr.curve()
            self._ensemble.learn_curve(x, y, stopped, log)
            self.finished += 1
        except Exception:
            pass

    # -- prediction -----------------------------------------------------------------------------
    def _predict(self, tracker: Tracker, x: np.ndarray, y: np.ndarray) -> Prediction:
        cfg = self.config
        if cfg.method == "paper":
            fit = fit_paper(x, y, cfg.target_x)
            if not fit.ok:
                return Prediction(float("inf"), family="paper", note=fit.note)
            return Prediction(
                fit.prediction, params=fit.params_dict(("a", "b", "c")), family="paper"
            )
        return self._ensemble.predict(tracker, x, y)
