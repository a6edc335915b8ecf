"""Does a larger validation set make our XFEL curve sets rankable? Our presets and the
one-epoch-early oracle on the XFEL curves validated on 200 images against the same
searches re-recorded with 2,000 validation images.

The 200-image sets put every model's last-epoch accuracy on a 0.5-point grid, and even
the last-but-one epoch ranks their models at tau_eps 0.68-0.74. This replays both
recordings through `paper`, `default` and the oracle, side by side, and reports the
spread of the models' final accuracies beside the metrics.

Writes benchmarks/engine/VALIDATION_SIZE.md and .json. Run:
    .venv/bin/python benchmarks/engine/validation_size.py
"""

from __future__ import annotations

import json
import platform
import statistics
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
sys.path.insert(0, str(HERE.parents[1]))

from compare import KEYS, fmt, meets, one_epoch_early  # noqa: E402
from curve_sets import DATA, budget_of  # noqa: E402

from engine import Engine, read_curves, replay, to_json  # noqa: E402

FOLDERS = {"200 images": DATA / "xfel-curves", "2,000 images": DATA / "xfel-curves-val2000"}


def finals(curves) -> list[float]:
    return [curves.curve(m)[1][-1] for m in curves.models()]


def main() -> None:
    results: dict[str, dict] = {}
    for label, folder in FOLDERS.items():
        for path in sorted(folder.glob("xfel_*_epochs.csv")):
            curves = read_curves(path)
            name = f"{path.name.removesuffix('_epochs.csv')}, validated on {label}"
            budget = budget_of(curves)
            row: dict[str, dict] = {}
            for preset in ("paper", "default"):
                r = replay(curves, Engine.from_preset(preset, e_pred=budget).config)
                row[preset] = {k: r[k] for k in KEYS}
            row["oracle: last epoch skipped"] = one_epoch_early(curves)
            f = finals(curves)
            row["finals"] = {
                "models": len(f),
                "min": min(f),
                "median": statistics.median(f),
                "max": max(f),
                "stdev": statistics.stdev(f),
            }
            results[name] = row
            print(name, json.dumps(row["default"]), flush=True)
    machine = f"{platform.node()} {platform.machine()}, Python {platform.python_version()}"
    (HERE / "VALIDATION_SIZE.json").write_text(to_json({"machine": machine, "results": results}))
    lines = [
        "# XFEL curve sets: 200 against 2,000 validation images",
        "",
        f"Command: `.venv/bin/python benchmarks/engine/validation_size.py` on {machine}.",
        "",
        "| curve set | final acc. min / median / max (sd) | method | saved % | MAE | tau | "
        "tau_eps | meets targets |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for name, row in results.items():
        fi = row["finals"]
        spread = f"{fi['min']:.2f} / {fi['median']:.2f} / {fi['max']:.2f} ({fi['stdev']:.2f})"
        for m in ("paper", "default", "oracle: last epoch skipped"):
            r = row[m]
            lines.append(
                f"| {name} | {spread} | {m} | {fmt(r['epochs_saved_pct'], '%.1f')} | "
                f"{fmt(r['mae_stopped'], '%.2f')} | {fmt(r['kendall_tau'], '%.3f')} | "
                f"{fmt(r['kendall_tau_eps'], '%.3f')} | "
                f"{('yes' if meets(r) else 'no') if m == 'default' else ''} |"
            )
            spread = ""
    (HERE / "VALIDATION_SIZE.md").write_text("\n".join(lines) + "\n")
    print("\n".join(lines))


if __name__ == "__main__":
    main()
