"""Replay recorded learning curves through an engine, as if it had run in situ.

Two formats are read (with the csv module; the engine needs no pandas):

* the A4NN commons CSV (the per-epoch training data published with the A4NN ICPP'23 paper,
  e.g. `1gpu_1e15_stopping_training_data.csv`): rows are epochs in training order,
  a new model starts where `epoch` is 0, the fitness is `val_accs`;
* our run directories' epoch table `RUN_DIR/epochs.csv` (a directory argument means that
  file): columns `model_id, epoch, val_acc, ...`, rows in training order.

The replay walks the rows in file order. Each row is one `observe` call on its model's
tracker; once a model converges its later rows are skipped (in situ they would never have
been trained), and the model is `finish`ed at that moment, or at its last recorded row.
So an engine that learns from earlier models (the previous-builds prior) sees exactly
what it would have seen in situ: the curves of models finished before, and of a stopped
model only the epochs it let run, never its recorded tail.

Budget and truth come from the recording: `epochs_budget` is the number of recorded rows,
and a model's true fitness is its last recorded valid value. Replays are therefore
meaningful on searches run with the engine off (every model trained to the budget).
"""

from __future__ import annotations

import json
import math
import time
from pathlib import Path
from typing import Any

import numpy as np

from .config import EngineConfig, preset
from .engine import Engine
from .metrics import kendall_tau, kendall_tau_eps, regret, top_k_overlap
from .records import CurveFormatError, Curves, read_curves

__all__ = [
    "CurveFormatError",
    "Curves",
    "format_sweep",
    "main_knob",
    "read_curves",
    "replay",
    "replay_file",
    "summarize",
    "sweep",
]


def _as_config(config: EngineConfig | Engine | dict[str, Any] | str | None) -> EngineConfig:
    """Settings for a replay; an `Engine` contributes its config (the replay starts fresh)."""
    if config is None:
        return preset("paper")
    if isinstance(config, str):
        return preset(config)
    if isinstance(config, dict):
        return EngineConfig.from_dict(config)
    if isinstance(config, Engine):
        return config.config
    return config


def replay(
    curves: Curves,
    config: EngineConfig | Engine | dict[str, Any] | str | None = None,
    *,
    details: bool = False,
    seed: Any = None,
) -> dict[str, Any]:
    """Replay `curves` in training order through a fresh engine; return `summarize`'s report.
    `seed`: curves of earlier searches to start the prior from (`Engine.seed_from`)."""
    cfg = _as_config(config)
    eng = Engine(cfg)
    if seed is not None:
        eng.seed_from(seed)
    last_row: dict[Any, int] = {}
    for i, (key, _, _) in enumerate(curves.rows):
        last_row[key] = i
    trackers: dict[Any, Any] = {}
    used: dict[Any, int] = {}
    done: set[Any] = set()
    stop_epoch: dict[Any, int | None] = {}
    seconds: list[float] = []
    for i, (key, epoch, value) in enumerate(curves.rows):
        if key in done:
            continue
        tr = trackers.get(key)
        if tr is None:
            tr = trackers[key] = eng.start(key, features=curves.features.get(key))
            used[key] = 0
        t0 = time.perf_counter()
        d = tr.observe(epoch, value)
        seconds.append(time.perf_counter() - t0)
        used[key] += 1
        if d.converged or i == last_row[key]:
            stop_epoch[key] = epoch if d.converged else None
            eng.finish(tr)
            done.add(key)

    report = summarize(
        curves,
        {k: tr.fitness() for k, tr in trackers.items()},
        used,
        {k: tr.converged for k, tr in trackers.items()},
        seconds,
        name=cfg.name,
        stop_epoch=stop_epoch,
        details=details,
    )
    report["config"] = cfg.to_dict()
    if seed is not None or cfg.prior_seed:  # what became of the seed: probation, trusted, rejected
        pred = eng.predictor
        report["seed"] = {
            "state": getattr(pred, "seed_state", "none"),
            "own_models_checked": getattr(pred, "seed_checked", 0),
        }
    return report


def true_final(curves: Curves, key: Any) -> float:
    """A model's true fitness: its last recorded valid value."""
    _, values = curves.curve(key)
    valid = [v for v in values if math.isfinite(v)]
    return valid[-1] if valid else float("nan")


def summarize(
    curves: Curves,
    fitness: dict[Any, float],
    used: dict[Any, int],
    stopped: dict[Any, bool],
    seconds: list[float],
    *,
    name: str,
    stop_epoch: dict[Any, int | None] | None = None,
    details: bool = False,
) -> dict[str, Any]:
    """The report (epochs saved, error and ranking of the fitness handed to the NAS, time
    per call; keys in docs/engine.md) for any early-stopping method replayed on `curves`.

    `fitness` is what the method handed to the NAS per model, `used` the epochs it let
    run, `stopped` whether the fitness came from an early stop, `seconds` the duration of
    each call to the method.
    """
    keys = curves.models()
    fit_l, true_l, stop_l, per_model = [], [], [], []
    for key in keys:
        true, fit = true_final(curves, key), fitness[key]
        per_model.append(
            {
                "model": curves.labels.get(key, str(key)),
                "recorded_epochs": sum(1 for k, _, _ in curves.rows if k == key),
                "epochs_used": used[key],
                "converged": bool(stopped[key]),
                "stop_epoch": (stop_epoch or {}).get(key),
                "fitness": fit,
                "true": true,
            }
        )
        if math.isfinite(fit) and math.isfinite(true):
            fit_l.append(fit)
            true_l.append(true)
            stop_l.append(bool(stopped[key]))
    f, t, s = np.array(fit_l), np.array(true_l), np.array(stop_l, bool)
    budget = len(curves.rows)
    n_used = sum(used.values())
    err = f[s] - t[s]
    report: dict[str, Any] = {
        "source": curves.source,
        "preset": name,
        "models": len(keys),
        "epochs_budget": budget,
        "epochs_used": n_used,
        "epochs_saved_pct": 100.0 * (budget - n_used) / budget if budget else float("nan"),
        "models_stopped": int(s.sum()),
        "mae_stopped": float(np.mean(np.abs(err))) if err.size else float("nan"),
        "bias_stopped": float(np.mean(err)) if err.size else float("nan"),
        "kendall_tau": kendall_tau(f, t),
        "kendall_tau_eps": kendall_tau_eps(f, t, 0.5),
        "top10_overlap": top_k_overlap(f, t, 10),
        "regret": regret(f, t),
        "ms_per_call": 1000.0 * float(np.median(seconds)) if seconds else float("nan"),
        "calls": len(seconds),
    }
    if details:
        report["per_model"] = per_model
    return report


def replay_file(
    path: str | Path,
    config: EngineConfig | Engine | dict[str, Any] | str | None = None,
    *,
    details: bool = False,
) -> dict[str, Any]:
    """Read `path` (see `read_curves`) and replay it; see `replay`."""
    return replay(read_curves(path), config, details=details)


def to_json(report: dict[str, Any]) -> str:
    """JSON with NaN written as null (JSON has no NaN)."""

    def clean(o: Any) -> Any:
        if isinstance(o, float) and not math.isfinite(o):
            return None
        if isinstance(o, dict):
            return {k: clean(v) for k, v in o.items()}
        if isinstance(o, list | tuple):
            return [clean(v) for v in o]
        return o

    return json.dumps(clean(report), indent=2)


def format_report(report: dict[str, Any]) -> str:
    """A short human-readable summary of a replay."""

    def num(v: Any, fmt: str) -> str:
        return "n/a" if v is None or (isinstance(v, float) and not math.isfinite(v)) else fmt % v

    r = report
    lines = [
        f"Engine replay of {r['source']} with preset/config '{r['preset']}'",
        f"  models                {r['models']} ({r['models_stopped']} stopped early)",
        f"  epochs used / budget  {r['epochs_used']} / {r['epochs_budget']}"
        f"  (saved {num(r['epochs_saved_pct'], '%.1f')}%)",
        f"  MAE on stopped models {num(r['mae_stopped'], '%.2f')} points"
        f" (bias {num(r['bias_stopped'], '%+.2f')})",
        f"  Kendall tau           {num(r['kendall_tau'], '%.3f')}"
        f"   tau_eps (|diff| >= 0.5) {num(r['kendall_tau_eps'], '%.3f')}",
        f"  top-10 overlap        {num(r['top10_overlap'], '%.2f')}"
        f"   regret of best pick {num(r['regret'], '%.2f')} points",
        f"  engine call           {num(r['ms_per_call'], '%.2f')} ms median"
        f" over {r['calls']} calls",
    ]
    if "seed" in r:
        sd = r["seed"]
        lines.append(
            f"  seeded prior          {sd['state']} after {sd['own_models_checked']} own "
            "model(s) checked"
        )
    return "\n".join(lines)


# -- a frontier: the preset's main knob swept -------------------------------------------------
SWEEPS: dict[str, tuple[float, ...]] = {
    # knob: the values swept (fitness units on a 0-100 scale where the knob has units)
    "tolerance_scale": (0.0, 0.1, 0.15, 0.2, 0.25, 0.3, 0.4, 0.5, 0.75),
    "delta": (0.1, 0.25, 0.5, 0.75, 1.0, 1.5, 2.0),
    "confidence": (0.5, 0.6, 0.7, 0.8, 0.9, 0.95),
    "r": (0.1, 0.25, 0.5, 1.0, 2.0),
}


def main_knob(cfg: EngineConfig) -> str:
    """The setting that trades epochs saved against faithfulness most directly: the
    tolerance's scale for a scaled tolerance, delta for an absolute one, r for the
    paper's spread rule."""
    if cfg.method == "paper" or cfg.stop_rule == "spread":
        return "r"
    return "tolerance_scale" if cfg.tolerance != "absolute" else "delta"


def sweep(
    curves: Curves,
    config: EngineConfig | Engine | dict[str, Any] | str | None = None,
    knob: str | None = None,
    values: list[float] | tuple[float, ...] | None = None,
) -> dict[str, Any]:
    """Replay `curves` once per value of `knob` (by default the config's `main_knob`, over
    `SWEEPS[knob]` and the config's own value); each row is `replay`'s report, and `on_front`
    says whether no other row saves at least as much with a tau_eps (then MAE) at least as good."""
    cfg = _as_config(config)
    knob = knob or main_knob(cfg)
    if knob not in cfg.to_dict():
        raise ValueError(f"unknown setting {knob!r} to sweep")
    own = getattr(cfg, knob)
    vals = sorted(set(values if values is not None else SWEEPS.get(knob, ())) | {own})
    rows = []
    for v in vals:
        r = replay(curves, cfg.with_(**{knob: v}))
        r.pop("config", None)
        rows.append({"value": v, "is_config": v == own, **r})
    for r in rows:
        r["on_front"] = not any(_dominates(o, r) for o in rows if o is not r)
    return {"source": curves.source, "preset": cfg.name, "knob": knob, "rows": rows}


def _key(r: dict[str, Any]) -> tuple[float, float, float]:
    def num(v: Any, bad: float) -> float:
        return bad if v is None or not math.isfinite(v) else float(v)

    # tau_eps undefined (no pair to count) ranks like a perfect one; MAE lower is better
    return (
        num(r["epochs_saved_pct"], 0.0),
        num(r["kendall_tau_eps"], 1.0),
        -num(r["mae_stopped"], 0.0),
    )


def _dominates(a: dict[str, Any], b: dict[str, Any]) -> bool:
    ka, kb = _key(a), _key(b)
    return all(x >= y for x, y in zip(ka, kb, strict=True)) and ka != kb


def format_sweep(result: dict[str, Any]) -> str:
    """The sweep as a table: the knob's value, epochs saved, tau_eps, MAE (and the rest)."""

    def num(v: Any, fmt: str) -> str:
        return "n/a" if v is None or (isinstance(v, float) and not math.isfinite(v)) else fmt % v

    lines = [
        f"Engine sweep of {result['source']}: '{result['preset']}' with {result['knob']} varied",
        f"  {result['knob']:>16}  saved %  stopped  tau_eps    MAE    tau   ms/call  frontier",
    ]
    for r in result["rows"]:
        mark = "*" if r["is_config"] else " "
        lines.append(
            f"  {mark}{r['value']:>15g}  {num(r['epochs_saved_pct'], '%7.1f')}  "
            f"{r['models_stopped']:7d}  {num(r['kendall_tau_eps'], '%7.3f')}  "
            f"{num(r['mae_stopped'], '%5.2f')}  {num(r['kendall_tau'], '%5.3f')}  "
            f"{num(r['ms_per_call'], '%7.3f')}  {'yes' if r['on_front'] else ''}"
        )
    lines.append(
        "  * the configuration's own value; frontier: no other value saves as much with a "
        "tau_eps and MAE as good"
    )
    return "\n".join(lines)
