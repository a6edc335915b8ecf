"""Engine settings (`EngineConfig`), the named presets, and loading them from dicts or YAML.

Every knob of the engine lives here so that a run's YAML can set it and a replay can ask
"what would these settings have saved?". Validation errors name the field, the value and
what is allowed, because users write these by hand.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass, fields, replace
from pathlib import Path
from typing import Any

from .families import FAMILIES

METHODS = ("paper", "ensemble", "off")
STOP_RULES = ("spread", "probability")
DIRECTIONS = ("maximize", "minimize")
LOSSES = ("linear", "soft_l1", "huber", "cauchy", "arctan")
PRIORS = ("none", "previous_builds")
TOLERANCES = ("absolute", "pool_spread", "rank")
FAMILIES_MODES = ("always", "without_prior")


class EngineConfigError(ValueError):
    """A bad engine setting; the message names the field (and file) at fault."""


@dataclass(frozen=True)
class EngineConfig:
    """What the engine fits, when it predicts, and when it calls a prediction converged.

    x is always the 0-based epoch index. The engine predicts the fitness at
    x = e_pred + target_offset: the paper's engine predicts F(e_pred) with e_pred = 25
    (one past the last 0-based epoch of a 25-epoch budget; `target_offset = 0` reproduces
    its in-situ numbers), the `default` preset predicts the last trained epoch
    (`target_offset = -1`).
    """

    name: str = "custom"
    method: str = "paper"  # paper: one family, scipy least squares; ensemble: issue-3 engine; off
    families: tuple[str, ...] = ("paper",)
    c_min: int = 3  # epochs observed before the first prediction (first prediction at x = c_min)
    e_pred: int = 25
    target_offset: int = 0
    n: int = 3  # most recent predictions that must agree
    r: float = 0.5  # ... within r of their median
    direction: str = "maximize"
    value_range: tuple[float | None, float | None] = (0.0, 100.0)
    # fitting (ensemble method); families_mode "without_prior": fit families only while the
    # previous-builds prior has no pool yet (cold start), which keeps calls fast
    families_mode: str = "always"
    loss: str = "soft_l1"
    loss_scale: float = 1.0  # in the units of the fitness
    warm_start: bool = True
    max_nfev: int = 30
    # stopping rule (ensemble method)
    stop_rule: str = "spread"
    delta: float = 0.5  # probability rule: |final - prediction| <= delta ...
    confidence: float = 0.9  # ... with at least this probability
    # how delta is read: absolute (delta itself), pool_spread (max(delta, tolerance_scale x
    # IQR of the pool's finals)), rank (max(delta, the distance to the pool's quantiles at the
    # prediction's rank +- tolerance_scale))
    tolerance: str = "absolute"
    tolerance_scale: float = 0.0
    min_epoch_fraction: float = 0.0  # never stop before this fraction of e_pred
    # previous builds (ensemble method)
    prior: str = "none"
    prior_weight: float = 1.0
    prior_min_curves: int = 3  # models trained to the budget before the prior predicts and,
    # with a prior, before any model is stopped (they seed the pool)
    prior_transform: str = "auto"  # log_error (bounded fitness), identity, or auto
    prior_min_r2: float = 0.0  # the pool's levels must explain this much of its finals' variance
    calibration_min: int = 30  # standardised past errors needed before trusting them
    calibration_window: int = 20_000  # the most recent standardised errors kept
    # architecture-aware prior: correct the regression by the residuals of the k finished
    # models whose choice vectors are closest (0: off); weight exp(-distance / bandwidth),
    # distance the share of choices that differ
    prior_arch_k: int = 0
    prior_arch_bandwidth: float = 0.1
    # seeded prior: curves of earlier searches (a commons CSV or a run directory) that
    # predict from the first model; on probation until checked on seed_min_checked own
    # models, dropped if fewer than seed_coverage of its errors on them fall within the 80%
    # quantile of its own leave-one-out errors
    prior_seed: str | None = None
    seed_min_checked: int = 1
    seed_coverage: float = 0.5

    # -- construction -------------------------------------------------------------------------
    @classmethod
    def from_dict(cls, d: dict[str, Any], source: str = "engine config") -> EngineConfig:
        """Build from a mapping; a `preset` key starts from that preset, other keys override."""
        if not isinstance(d, dict):
            raise EngineConfigError(
                f"{source}: expected a mapping of engine settings, got {type(d).__name__}"
            )
        d = dict(d)
        from_preset = "preset" in d
        base = preset(str(d.pop("preset"))) if from_preset else cls()
        known = {f.name for f in fields(cls)}
        unknown = sorted(set(d) - known)
        if unknown:
            raise EngineConfigError(
                f"{source}: unknown engine setting(s) {unknown}; known settings: {sorted(known)}"
            )
        if "families" in d:
            fam = d["families"]
            d["families"] = (fam,) if isinstance(fam, str) else tuple(fam)
        if "value_range" in d:
            vr = d["value_range"]
            if vr is None:
                vr = (None, None)
            if not isinstance(vr, list | tuple) or len(vr) != 2:
                raise EngineConfigError(
                    f"{source}: value_range must be [low, high] (either may be null), got {vr!r}"
                )
            d["value_range"] = (
                None if vr[0] is None else float(vr[0]),
                None if vr[1] is None else float(vr[1]),
            )
        cfg = replace(base, **d)
        if "name" not in d and not from_preset:
            cfg = replace(cfg, name="custom")
        cfg.validate(source)
        return cfg

    @classmethod
    def from_yaml(cls, path: str | Path) -> EngineConfig:
        """Read a YAML file holding engine settings (optionally under an `engine:` key)."""
        import yaml  # local import: the engine itself needs only numpy/scipy

        p = Path(path)
        try:
            data = yaml.safe_load(p.read_text())
        except FileNotFoundError:
            raise EngineConfigError(f"{p}: engine config file not found") from None
        except yaml.YAMLError as e:
            raise EngineConfigError(f"{p}: not valid YAML: {e}") from None
        if isinstance(data, dict) and set(data) == {"engine"}:
            data = data["engine"]
        return cls.from_dict(data or {}, source=str(p))

    def with_(self, **changes: Any) -> EngineConfig:
        """A copy with some fields changed (validated)."""
        cfg = replace(self, **changes)
        cfg.validate()
        return cfg

    def to_dict(self) -> dict[str, Any]:
        d = asdict(self)
        d["families"] = list(self.families)
        d["value_range"] = list(self.value_range)
        return d

    # -- validation ---------------------------------------------------------------------------
    def validate(self, source: str = "engine config") -> None:
        def bad(name: str, value: Any, allowed: str) -> EngineConfigError:
            return EngineConfigError(f"{source}: {name}={value!r} is invalid; {allowed}")

        if self.method not in METHODS:
            raise bad("method", self.method, f"use one of {list(METHODS)}")
        if self.stop_rule not in STOP_RULES:
            raise bad("stop_rule", self.stop_rule, f"use one of {list(STOP_RULES)}")
        if self.direction not in DIRECTIONS:
            raise bad("direction", self.direction, f"use one of {list(DIRECTIONS)}")
        if self.loss not in LOSSES:
            raise bad("loss", self.loss, f"use one of {list(LOSSES)}")
        if self.families_mode not in FAMILIES_MODES:
            raise bad("families_mode", self.families_mode, f"use one of {list(FAMILIES_MODES)}")
        if self.prior not in PRIORS:
            raise bad("prior", self.prior, f"use one of {list(PRIORS)}")
        if not self.families and not (self.method == "ensemble" and self.prior != "none"):
            raise bad(
                "families",
                list(self.families),
                "name at least one curve family (only an ensemble with a prior may have none)",
            )
        for fam in self.families:
            if fam not in FAMILIES:
                raise bad("families", fam, f"known families: {sorted(FAMILIES)}")
        if self.tolerance not in TOLERANCES:
            raise bad("tolerance", self.tolerance, f"use one of {list(TOLERANCES)}")
        ts = self.tolerance_scale
        if not isinstance(ts, int | float) or not math.isfinite(ts) or ts < 0:
            raise bad("tolerance_scale", ts, "use a finite number >= 0")
        if self.tolerance == "rank" and not ts < 1:
            raise bad("tolerance_scale", ts, "a share of the pool in [0, 1) for tolerance rank")
        if not 0 <= self.seed_coverage <= 1:
            raise bad("seed_coverage", self.seed_coverage, "use a fraction in [0, 1]")
        if not isinstance(self.prior_arch_k, int) or self.prior_arch_k < 0:
            raise bad("prior_arch_k", self.prior_arch_k, "use a whole number >= 0 (0: off)")
        if not self.prior_arch_bandwidth > 0:
            raise bad("prior_arch_bandwidth", self.prior_arch_bandwidth, "use a number > 0")
        if self.seed_min_checked < 0:
            raise bad("seed_min_checked", self.seed_min_checked, "use a whole number >= 0")
        if self.prior_transform not in ("auto", "log_error", "identity"):
            raise bad("prior_transform", self.prior_transform, "use auto, log_error or identity")
        if self.prior_transform == "log_error" and None in self.value_range:
            raise bad(
                "prior_transform",
                self.prior_transform,
                "log_error needs a bounded value_range; use identity for unbounded fitness (loss)",
            )
        for name in (
            "c_min",
            "e_pred",
            "n",
            "max_nfev",
            "prior_min_curves",
            "calibration_min",
            "calibration_window",
        ):
            v = getattr(self, name)
            if not isinstance(v, int) or isinstance(v, bool) or v < 1:
                raise bad(name, v, "use a whole number >= 1")
        if not isinstance(self.target_offset, int) or isinstance(self.target_offset, bool):
            raise bad("target_offset", self.target_offset, "use a whole number (0 or -1)")
        for name in ("r", "delta", "loss_scale"):
            v = getattr(self, name)
            if not isinstance(v, int | float) or not math.isfinite(v) or v <= 0:
                raise bad(name, v, "use a finite number > 0")
        if not 0 < self.confidence < 1:
            raise bad("confidence", self.confidence, "use a probability strictly between 0 and 1")
        if not 0 <= self.prior_min_r2 <= 1:
            raise bad("prior_min_r2", self.prior_min_r2, "use a fraction in [0, 1]")
        if not 0 <= self.min_epoch_fraction <= 1:
            raise bad("min_epoch_fraction", self.min_epoch_fraction, "use a fraction in [0, 1]")
        if self.prior_weight < 0:
            raise bad("prior_weight", self.prior_weight, "use a number >= 0")
        lo, hi = self.value_range
        if lo is not None and hi is not None and not lo < hi:
            raise bad("value_range", list(self.value_range), "low must be below high")
        if self.method == "paper" and self.families != ("paper",):
            raise bad(
                "families",
                list(self.families),
                "method 'paper' fits only the paper's family; use method 'ensemble' for others",
            )

    @property
    def unit(self) -> float:
        """Fitness units per point of r, delta and loss_scale.

        With a bounded value_range these tolerances are points on a 0-100 scale of that
        range, so one preset serves accuracy in 0-100 (unit 1) and in 0-1 (unit 0.01); with
        an unbounded range they are in the fitness's own units.
        """
        lo, hi = self.value_range
        return (hi - lo) / 100.0 if lo is not None and hi is not None else 1.0

    @property
    def target_x(self) -> int:
        """The 0-based epoch index whose fitness the engine predicts."""
        return self.e_pred + self.target_offset


_PAPER = EngineConfig(
    name="paper",
    method="paper",
    families=("paper",),
    c_min=3,
    e_pred=25,
    target_offset=0,
    n=3,
    r=0.5,
    stop_rule="spread",
)

# The issue-3 engine: previous-builds prior with a calibrated probabilistic stopping rule,
# curve families for the cold start; since issue 21 the prior also learns from the models
# with the most similar architectures (prior_arch_k). Numbers chosen by leave-one-set-out
# cross-validation (benchmarks/engine/select_default.py, SELECTION.md).
_DEFAULT = EngineConfig(
    name="default",
    method="ensemble",
    families=("pow3", "exp3"),
    families_mode="without_prior",
    c_min=2,
    e_pred=25,
    target_offset=-1,
    n=2,
    r=0.5,
    loss="soft_l1",
    loss_scale=1.0,
    warm_start=True,
    max_nfev=30,
    stop_rule="probability",
    delta=0.25,
    confidence=0.8,
    prior="previous_builds",
    prior_weight=1.0,
    prior_min_curves=3,
    prior_transform="auto",
    prior_min_r2=0.5,
    tolerance="absolute",
    prior_arch_k=10,
    prior_arch_bandwidth=0.1,
)

_OFF = EngineConfig(name="off", method="off")

PRESETS: dict[str, EngineConfig] = {"paper": _PAPER, "default": _DEFAULT, "off": _OFF}


def preset(name: str) -> EngineConfig:
    """The named preset: `paper`, `default` or `off`."""
    try:
        return PRESETS[name]
    except KeyError:
        raise EngineConfigError(
            f"unknown engine preset {name!r}; use one of {sorted(PRESETS)}"
        ) from None
