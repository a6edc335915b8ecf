"""Choose the `default` preset's settings by cross-validation over the curve sets we have.

Folds: every curve set split into the first and second half of its search (in training
order), each replayed as a search of its own (a cold start: the engine learns only from
models finished earlier in the same fold). For each fold we pick, on the *other* folds,
the setting that saves the most epochs while keeping tau_eps >= 0.93 and MAE <= 0.7 on
every one of them (margins under the targets 0.90 and 1.0), and report it on the held-out
fold. The preset is the setting the same rule picks on all folds. With XFEL curve sets
present under benchmarks/data/xfel-curves/ they join as folds automatically.

Writes benchmarks/engine/SELECTION.md and SELECTION.json. Run:
    .venv/bin/python benchmarks/engine/select_default.py
"""

from __future__ import annotations

import itertools
import json
import platform
import random
import sys
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
sys.path.insert(0, str(HERE.parents[1]))

from curve_sets import budget_of, curve_sets, halves  # noqa: E402
from orders import reorder  # noqa: E402

from engine import EngineConfig, preset, replay  # noqa: E402

SAVED_MIN = 45.0  # target 40%, with a margin

GRID = {
    ("delta", "confidence"): [(0.25, 0.8), (0.25, 0.9), (0.5, 0.8), (0.5, 0.9), (1.0, 0.9)],
    "prior_min_curves": [3, 5],
    "prior_transform": ["log_error", "identity"],
    "c_min": [2, 3, 4],
    "n": [2, 3],
}


def settings() -> list[dict]:
    keys = list(GRID)
    out = []
    for combo in itertools.product(*(GRID[k] for k in keys)):
        d: dict = {}
        for k, v in zip(keys, combo, strict=True):
            if isinstance(k, tuple):
                d.update(dict(zip(k, v, strict=True)))
            else:
                d[k] = v
        out.append(d)
    return out


def _num(v: float | None, default: float) -> float:
    return default if v is None or v != v else float(v)


def pick(results: dict[int, list[list[dict]]], groups: list[int]) -> int:
    """The most robust setting that still meets the saving target with a margin.

    Among settings whose mean saving is at least SAVED_MIN % on every group given (a
    group: one half of a search, replayed in several model orders), take the best worst
    tau_eps over all those replays (to 0.01), then the smallest worst MAE (to 0.05 points),
    then the largest mean saving. Savings far above the 40% target are spent on
    faithfulness, because a setting picked at the edge of the constraints did not hold on
    the other half.
    """
    best, best_key = -1, None
    for i, per_group in results.items():
        rs = [r for g in groups for r in per_group[g]]
        if min(_mean(per_group[g], "epochs_saved_pct") for g in groups) < SAVED_MIN:
            continue
        worst_te = min(_num(r["kendall_tau_eps"], 1.0) for r in rs)
        worst_mae = max(_num(r["mae_stopped"], 0.0) for r in rs)
        saved = _mean(rs, "epochs_saved_pct")
        key = (round(worst_te, 2), -round(worst_mae * 20) / 20, saved)
        if best_key is None or key > best_key:
            best, best_key = i, key
    return best


def _mean(rs: list[dict], k: str) -> float:
    return sum(_num(r[k], 0.0) for r in rs) / len(rs)


def orders(curves) -> dict[str, object]:
    """The half in its training order, reversed, and in two random orders."""
    keys = curves.models()
    out = {"training": curves, "reversed": reorder(curves, list(reversed(keys)))}
    for seed in range(2):
        out[f"random{seed}"] = reorder(curves, random.Random(seed).sample(keys, len(keys)))
    return out


def main() -> None:
    t0 = time.time()
    groups, names = [], []
    for name, curves in curve_sets().items():
        for j, h in enumerate(halves(curves)):
            groups.append((list(orders(h).values()), budget_of(curves)))
            names.append(f"{name}/half{j + 1}")
    grid = settings()
    base = preset("default")
    keys = ("epochs_saved_pct", "mae_stopped", "kendall_tau", "kendall_tau_eps")
    results: dict[int, list[list[dict]]] = {}
    for i, s in enumerate(grid):
        results[i] = []
        for replays, budget in groups:
            cfg = EngineConfig.from_dict({**base.to_dict(), **s, "e_pred": budget, "name": "cv"})
            results[i].append([{k: replay(c, cfg)[k] for k in keys} for c in replays])
    held = []
    for g, gname in enumerate(names):
        i = pick(results, [h for h in range(len(groups)) if h != g])
        rs = results[i][g] if i >= 0 else []
        held.append(
            {
                "fold": gname,
                "setting": grid[i] if i >= 0 else None,
                "held_out": rs,
            }
        )
    final = pick(results, list(range(len(groups))))
    out = {
        "machine": f"{platform.node()} {platform.machine()}, Python {platform.python_version()}",
        "command": ".venv/bin/python benchmarks/engine/select_default.py",
        "folds": names,
        "orders": ["training", "reversed", "random0", "random1"],
        "grid_size": len(grid),
        "rule": "max worst tau_eps, then min worst MAE, then max mean saving, among settings "
        f"whose mean saving is >= {SAVED_MIN}% on every fold",
        "held_out": held,
        "chosen": grid[final] if final >= 0 else None,
        "chosen_per_fold": results[final] if final >= 0 else None,
        "wall_seconds": time.time() - t0,
    }
    (HERE / "SELECTION.json").write_text(json.dumps(out, indent=2) + "\n")
    lines = [
        "# Choosing the `default` preset by cross-validation",
        "",
        f"Command: `{out['command']}` on {out['machine']}, {out['wall_seconds']:.0f} s; "
        f"{len(grid)} settings x {len(groups)} folds x 4 model orders.",
        "",
        "Folds are the halves of each curve set's search, each replayed as a search of its own "
        "(cold start), in 4 model orders (training, reversed, two random): the previous-builds "
        "prior depends on which models come first. Among settings whose mean saving is "
        f">= {SAVED_MIN}% on every fold shown (target 40%), the rule takes the best worst-case "
        "tau_eps, then the smallest worst-case MAE, then the largest mean saving: slack above "
        "the saving target is spent on faithfulness. (Picking the largest saving subject to "
        "tau_eps >= 0.93 and MAE <= 0.7 chose, on the first half, a setting that gave tau_eps "
        "0.62 on the second.) Held-out rows: picked on the other folds, scored on this one; "
        "mean over the 4 orders and, in brackets, the worst order.",
        "",
        "| held-out fold | setting picked on the other folds | saved % | MAE | tau | tau_eps |",
        "|---|---|---|---|---|---|",
    ]
    for h in held:
        rs = h["held_out"]
        if not rs:
            lines.append(f"| {h['fold']} | none feasible | | | | |")
            continue
        lines.append(
            f"| {h['fold']} | `{json.dumps(h['setting'])}` | "
            f"{_mean(rs, 'epochs_saved_pct'):.1f} "
            f"({min(r['epochs_saved_pct'] for r in rs):.1f}) | "
            f"{_mean(rs, 'mae_stopped'):.2f} ({max(_num(r['mae_stopped'], 0) for r in rs):.2f}) | "
            f"{_mean(rs, 'kendall_tau'):.3f} | {_mean(rs, 'kendall_tau_eps'):.3f} "
            f"({min(_num(r['kendall_tau_eps'], 1) for r in rs):.3f}) |"
        )
    lines += ["", f"Chosen on all folds (the `default` preset): `{json.dumps(out['chosen'])}`", ""]
    (HERE / "SELECTION.md").write_text("\n".join(lines))
    print("\n".join(lines))


if __name__ == "__main__":
    main()
