"""Issue 21, item 3: a prior seeded from the curves of earlier searches.

For each (seed, search) pair, the search is replayed through `default` three ways: without
a seed, seeded (the seed on probation: guard `seed_on_probation`, dropped when it predicts
the search's own models worse than its own), and seeded with the guard off
(seed_min_checked 0, seed_coverage 0: the seed is trusted blindly). Reported: epochs saved
over the whole search and over its first 10 models, tau_eps and MAE on stopped models,
and what became of the seed.

Pairs: the same task (the published 1e15 set: its first half seeds its second half; our
GPU-recorded 1e15 XFEL search likewise) and different tasks (the published 1e15 set seeded
with our XFEL searches and the other way round).

    python benchmarks/engine/seeding.py      -> SEEDING.md, SEEDING.json
"""

from __future__ import annotations

import json
import platform
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
sys.path.insert(0, str(HERE.parents[1]))

from curve_sets import budget_of, curve_sets, halves  # noqa: E402

from engine import Engine, replay, to_json  # noqa: E402

FIRST = 10


def first_saved(report: dict, n: int = FIRST) -> float:
    rows = report["per_model"][:n]
    budget = sum(r["recorded_epochs"] for r in rows)
    return 100.0 * (budget - sum(r["epochs_used"] for r in rows)) / budget


def run_pair(label: str, seed, search) -> dict:
    budget = budget_of(search)
    out = {"pair": label}
    variants = {
        "no seed": ({}, None),
        "seeded (guarded)": ({}, seed),
        "seeded, guard off": ({"seed_min_checked": 0, "seed_coverage": 0.0}, seed),
    }
    for name, (over, s) in variants.items():
        cfg = Engine.from_preset("default", e_pred=budget, **over).config
        r = replay(search, cfg, details=True, seed=s)
        state = "n/a"
        if "seed" in r:
            st = r["seed"]
            state = f"{st['state']} ({st['own_models_checked']} own models checked)"
        out[name] = {
            "saved": r["epochs_saved_pct"],
            "saved_first": first_saved(r),
            "stopped": r["models_stopped"],
            "mae": r["mae_stopped"],
            "tau_eps": r["kendall_tau_eps"],
            "seed": state,
        }
        print(label, name, out[name], flush=True)
    return out


def main() -> int:
    sets = curve_sets()
    a, b = halves(sets["a4nn-1e15"])
    g1, g2 = halves(sets["xfel-gpu_1e15"])
    pairs = [
        ("1e15 first half -> 1e15 second half (same task)", a, b),
        ("xfel-gpu 1e15 first half -> second half (same task)", g1, g2),
        ("xfel-gpu 1e15 -> published 1e15", sets["xfel-gpu_1e15"], sets["a4nn-1e15"]),
        ("published 1e15 -> xfel-gpu 1e15", sets["a4nn-1e15"], sets["xfel-gpu_1e15"]),
        ("xfel-gpu 1e14 -> published 1e15", sets["xfel-gpu_1e14"], sets["a4nn-1e15"]),
        ("published 1e15 -> xfel-gpu 1e14", sets["a4nn-1e15"], sets["xfel-gpu_1e14"]),
    ]
    for name in sets:
        if name.startswith("xfel-hard"):
            pairs.append((f"published 1e15 -> {name}", sets["a4nn-1e15"], sets[name]))
    results = [run_pair(*p) for p in pairs]
    out = {
        "command": "python benchmarks/engine/seeding.py",
        "machine": f"{platform.node()} {platform.machine()}, Python {platform.python_version()}",
        "results": results,
    }
    (HERE / "SEEDING.json").write_text(to_json(out) + "\n")
    lines = [
        "# A prior seeded from earlier searches",
        "",
        f"Command: `{out['command']}` on {out['machine']}. `default` preset; seeded: "
        "`Engine.seed_from(curves)` (`a4nn engine replay --seed CURVES`). First 10: epochs "
        "saved on the search's first 10 models (where a seed can help: without one, the first "
        "3 are never stopped and the pool is small).",
        "",
        "| seed -> search | variant | saved % | first 10 saved % | stopped | MAE | tau_eps | "
        "seed |",
        "|---|---|---:|---:|---:|---:|---:|---|",
    ]

    def f(v, spec):
        return "n/a" if v is None or v != v else spec % v

    for r in results:
        for name in ("no seed", "seeded (guarded)", "seeded, guard off"):
            x = r[name]
            lines.append(
                f"| {r['pair']} | {name} | {f(x['saved'], '%.1f')} | "
                f"{f(x['saved_first'], '%.1f')} | {x['stopped']} | {f(x['mae'], '%.2f')} | "
                f"{f(x['tau_eps'], '%.3f')} | {x['seed']} |"
            )
    (HERE / "SEEDING.md").write_text("\n".join(lines) + "\n")
    print("\n".join(lines))
    print(json.dumps({"pairs": len(results)}))
    return 0


if __name__ == "__main__":
    sys.exit(main())
