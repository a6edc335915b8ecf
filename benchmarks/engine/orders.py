"""Does `default` depend on the order models arrive in? Replay each curve set in its
training order, reversed, and in 5 random orders (each a different search history for the
previous-builds prior). Writes benchmarks/engine/ORDERS.md. Run:
    .venv/bin/python benchmarks/engine/orders.py
"""

from __future__ import annotations

import random
import statistics
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
sys.path.insert(0, str(HERE.parents[1]))

from curve_sets import budget_of, curve_sets, stamp, subset  # noqa: E402

from engine import Engine, replay  # noqa: E402


def reorder(curves, keys):
    order = {k: i for i, k in enumerate(keys)}
    out = subset(curves, keys)
    out.rows = sorted(out.rows, key=lambda r: (order[r[0]], r[1]))
    return out


def main() -> None:
    lines = [
        "# `default` under different model orders",
        "",
        f"Command: `.venv/bin/python benchmarks/engine/orders.py` on {stamp()}; the "
        "`default` preset as committed.",
        "",
        "| curve set | order | saved % | stopped | MAE | tau | tau_eps |",
        "|---|---|---|---|---|---|---|",
    ]
    for name, curves in curve_sets().items():
        cfg = Engine.from_preset("default", e_pred=budget_of(curves)).config
        keys = curves.models()
        orders = {"training": keys, "reversed": list(reversed(keys))}
        for seed in range(5):
            orders[f"random {seed}"] = random.Random(seed).sample(keys, len(keys))
        saved = []
        for oname, ks in orders.items():
            r = replay(reorder(curves, ks), cfg)
            saved.append(r["epochs_saved_pct"])
            lines.append(
                f"| {name} | {oname} | {r['epochs_saved_pct']:.1f} | {r['models_stopped']} | "
                f"{r['mae_stopped']:.2f} | {r['kendall_tau']:.3f} | {r['kendall_tau_eps']:.3f} |"
            )
        lines.append(f"| {name} | median saved | {statistics.median(saved):.1f} | | | | |")
    (HERE / "ORDERS.md").write_text("\n".join(lines) + "\n")
    print("\n".join(lines))


if __name__ == "__main__":
    main()
