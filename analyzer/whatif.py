"""What would other engine settings have done? Replay a run's recorded curves.

Uses `engine.replay` (numpy and scipy): each recorded epoch is one `observe` call, in the
order the models were trained; a model the replayed engine stops has its later epochs
skipped, exactly as in situ. The truth a prediction is measured against is a model's last
recorded accuracy, so a replay is exact on a run whose models all trained to the budget
(engine off, or the A4NN standalone CSV). On a run whose engine stopped models early the
recorded curves are cut short: a replayed setting can only stop them earlier still, and
its errors are measured against the accuracy where the recorded run stopped (the table
says so in `truth`).
"""

from __future__ import annotations

from typing import Any

import pandas as pd

from analyzer.loading import Tables


def curves_of(t: Tables, run: str | None = None):
    """A run's curves as `engine.replay.Curves` (rows in training order)."""
    from engine.replay import Curves

    run = run or t._only_run()
    e = t.epochs[t.epochs["run"] == run]
    if e.empty:
        raise ValueError(f"run {run!r} has no epochs to replay")
    curves = Curves(source=str(run))
    for mid, epoch, val in zip(e["model_id"], e["epoch"], e["val_acc"], strict=True):
        curves.rows.append((int(mid), int(epoch), float(val)))
        curves.labels.setdefault(int(mid), str(int(mid)))
    return curves


def _settings(setting: Any) -> tuple[str, Any]:
    """(label, what engine.replay takes) for a preset name, a dict, or an EngineConfig."""
    from engine import EngineConfig

    if isinstance(setting, str):
        return setting, setting
    if isinstance(setting, dict):
        cfg = EngineConfig.from_dict(setting)
        label = setting.get("name") or ", ".join(f"{k}={v}" for k, v in setting.items())
        return str(label), cfg
    if isinstance(setting, EngineConfig):
        return setting.name, setting
    raise TypeError(f"engine setting {setting!r}: give a preset name, a dict or an EngineConfig")


def setting_label(setting: Any) -> str:
    """How `replay` and `compare_settings` name a setting."""
    return _settings(setting)[0]


def _budget(t: Tables, run: str) -> int | None:
    m = t.models[t.models["run"] == run]
    b = m["budget"].iloc[0] if len(m) else None
    return int(b) if b is not None and b == b else None


def replay(t: Tables, setting: Any = "default", run: str | None = None) -> dict[str, Any]:
    """Replay one run under one engine setting (a preset name such as "default", a dict
    like `{"preset": "paper", "r": 1.0}`, or an `EngineConfig`).

    The setting's `e_pred` is set to the run's epoch budget unless the dict names one.
    Returns `summary` (a dict: epochs saved, models stopped, MAE at the stop, ranking
    metrics) and `models` (a DataFrame per model: epochs used, stop epoch, fitness handed
    to the NAS, truth, error).
    """
    from engine import preset
    from engine.replay import replay as engine_replay

    run = run or t._only_run()
    label, cfg = _settings(setting)
    if isinstance(cfg, str):
        cfg = preset(cfg)
    budget = _budget(t, run)
    explicit = isinstance(setting, dict) and "e_pred" in setting
    if budget and not explicit and cfg.method != "off":
        cfg = cfg.with_(e_pred=budget)
    report = engine_replay(curves_of(t, run), cfg, details=True)
    per = pd.DataFrame(report.pop("per_model"))
    per = per.rename(columns={"model": "model_id"})
    per["model_id"] = per["model_id"].astype("int64")
    per["error"] = per["fitness"] - per["true"]
    cut = t.models[(t.models["run"] == run) & t.models["stopped_early"]]["model_id"]
    per["truth"] = ["where the run stopped" if m in set(cut) else "final" for m in per["model_id"]]
    per.insert(0, "setting", label)
    per.insert(0, "run", run)
    report["setting"] = label
    report["run"] = run
    report["exact"] = cut.empty
    return {"summary": report, "models": per}


def replay_all(t: Tables, settings: list[Any], run: str | None = None) -> dict[str, Any]:
    """`replay` under each setting: {label: result}."""
    return {setting_label(s): replay(t, s, run) for s in settings}


def summary_table(replays: dict[str, Any]) -> pd.DataFrame:
    """One row per replayed setting (see `compare_settings`)."""
    rows = []
    for r in (v["summary"] for v in replays.values()):
        rows.append(
            {
                "setting": r["setting"],
                "epochs_saved_pct": r["epochs_saved_pct"],
                "models_stopped": r["models_stopped"],
                "models": r["models"],
                "mae_stopped": r["mae_stopped"],
                "bias_stopped": r["bias_stopped"],
                "kendall_tau": r["kendall_tau"],
                "regret": r["regret"],
                "exact": r["exact"],
            }
        )
    return pd.DataFrame(rows)


def compare_settings(t: Tables, settings: list[Any], run: str | None = None) -> pd.DataFrame:
    """One row per setting: saved %, models stopped, MAE and bias at the stop, Kendall tau,
    regret of the best pick (see `replay`)."""
    return summary_table(replay_all(t, settings, run))
