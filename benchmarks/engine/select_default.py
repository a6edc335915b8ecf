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
import sys
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
sys.path.insert(0, str(HERE.parents[1]))

from curve_sets import budget_of, curve_sets, halves  # noqa: E402

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


def pick(results: dict[int, list[dict]], folds: list[int]) -> int:
    """The most robust setting that still meets the saving target with a margin.

    Among settings saving at least SAVED_MIN % on every fold given, take the best worst-fold
    tau_eps (to 0.01), then the smallest worst-fold MAE (to 0.05 points), then the largest
    mean saving. Savings far above the 40% target are spent on faithfulness, because a
    setting picked at the edge of the constraints did not hold on the other fold.
    """
    best, best_key = -1, None
    for i, per_fold in results.items():
        rs = [per_fold[f] for f in folds]
        if min(r["epochs_saved_pct"] for r in rs) < SAVED_MIN:
            continue
        worst_te = min(_num(r["kendall_tau_eps"], 1.0) for r in rs)
        worst_mae = max(_num(r["mae_stopped"], 0.0) for r in rs)
        saved = sum(r["epochs_saved_pct"] for r in rs) / len(rs)
        key = (round(worst_te, 2), -round(worst_mae * 20) / 20, saved)
        if best_key is None or key > best_key:
            best, best_key = i, key
    return best


def main() -> None:
    t0 = time.time()
    folds, names = [], []
    for name, curves in curve_sets().items():
        for j, h in enumerate(halves(curves)):
            folds.append((h, budget_of(curves)))
            names.append(f"{name}/half{j + 1}")
    grid = settings()
    base = preset("default")
    results: dict[int, list[dict]] = {}
    for i, s in enumerate(grid):
        results[i] = []
        for curves, budget in folds:
            cfg = EngineConfig.from_dict({**base.to_dict(), **s, "e_pred": budget, "name": "cv"})
            r = replay(curves, cfg)
            results[i].append(
                {
                    k: r[k]
                    for k in ("epochs_saved_pct", "mae_stopped", "kendall_tau", "kendall_tau_eps")
                }
            )
    held = []
    for f, fname in enumerate(names):
        others = [g for g in range(len(folds)) if g != f]
        i = pick(results, others)
        held.append(
            {
                "fold": fname,
                "setting": grid[i] if i >= 0 else None,
                "held_out": results[i][f] if i >= 0 else None,
            }
        )
    final = pick(results, list(range(len(folds))))
    out = {
        "machine": f"{platform.node()} {platform.machine()}, Python {platform.python_version()}",
        "command": ".venv/bin/python benchmarks/engine/select_default.py",
        "folds": names,
        "grid_size": len(grid),
        "rule": "max worst-fold tau_eps, then min worst-fold MAE, then max mean saving, "
        f"among settings saving >= {SAVED_MIN}% on every fold",
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
        f"{len(grid)} settings x {len(folds)} folds.",
        "",
        "Folds are the halves of each curve set's search, each replayed as a search of its own "
        f"(cold start). Among settings saving >= {SAVED_MIN}% on every fold shown (target 40%), "
        "the rule takes the best worst-fold tau_eps, then the smallest worst-fold MAE, then the "
        "largest mean saving: slack above the saving target is spent on faithfulness. (Picking "
        "the largest saving subject to tau_eps >= 0.93 and MAE <= 0.7 chose an aggressive "
        "setting on the first half that gave tau_eps 0.62 on the second.) Held-out rows: "
        "picked on the other folds, scored on this one.",
        "",
        "| held-out fold | setting picked on the other folds | saved % | MAE | tau | tau_eps |",
        "|---|---|---|---|---|---|",
    ]
    for h in held:
        r = h["held_out"]
        if r is None:
            lines.append(f"| {h['fold']} | none feasible | | | | |")
            continue
        lines.append(
            f"| {h['fold']} | `{json.dumps(h['setting'])}` | {r['epochs_saved_pct']:.1f} | "
            f"{r['mae_stopped']:.2f} | {r['kendall_tau']:.3f} | {r['kendall_tau_eps']:.3f} |"
        )
    lines += ["", f"Chosen on all folds (the `default` preset): `{json.dumps(out['chosen'])}`", ""]
    (HERE / "SELECTION.md").write_text("\n".join(lines))
    print("\n".join(lines))


if __name__ == "__main__":
    main()
