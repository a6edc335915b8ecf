"""Compare the quickstart run with its engine-off twin; write RESULTS.md and results.json.

    python benchmarks/quickstart/compare.py RUN_ON RUN_OFF --quickstart-seconds S
        --off-seconds S [--log QUICKSTART.log] [--out DIR]

Targets (issue 18): the engine saves >= 25% of the epochs, the best model's accuracy is
within 1 point of the engine-off run's, and the README's first command (set-up included)
takes <= 300 s on 2 cores.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import sys
from pathlib import Path

import analyzer as A

TARGETS = {"epochs_saved_pct": 25.0, "best_acc_gap": 1.0, "quickstart_seconds": 300.0}


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser()
    p.add_argument("on")
    p.add_argument("off")
    p.add_argument("--quickstart-seconds", type=float, required=True)
    p.add_argument("--off-seconds", type=float, required=True)
    p.add_argument("--log", help="the quickstart's output (its last lines are quoted)")
    p.add_argument("--out", default=str(Path(__file__).parent))
    args = p.parse_args(argv)
    t = A.load(args.on, args.off, names=["engine on", "engine off"])
    s = A.summary(t).set_index("run")
    on, off = s.loc["engine on"], s.loc["engine off"]
    gap = float(off["best_val_acc"] - on["best_val_acc"])
    err = A.prediction_error(t.run("engine on"), t.run("engine off")).dropna(subset=["true_final"])
    res = {
        "machine": f"{platform.node()} {platform.machine()}, {os.cpu_count()} cores, "
        f"Python {platform.python_version()}",
        "load_average_1min": os.getloadavg()[0],
        "quickstart_seconds": args.quickstart_seconds,
        "engine_off_search_seconds": args.off_seconds,
        "models": int(on["models"]),
        "stopped_early": int(on["stopped_early"]),
        "epochs_trained": int(on["epochs_trained"]),
        "epochs_budget": float(on["epochs_budget"]),
        "epochs_saved_pct": float(on["epochs_saved_pct"]),
        "run_wall_seconds_on": float(on["run_wall_seconds"]),
        "run_wall_seconds_off": float(off["run_wall_seconds"]),
        "training_seconds_on": float(on["training_seconds"]),
        "training_seconds_off": float(off["training_seconds"]),
        "best_val_acc_on": float(on["best_val_acc"]),
        "best_model_on": int(on["best_model"]),
        "best_val_acc_off": float(off["best_val_acc"]),
        "best_model_off": int(off["best_model"]),
        "best_acc_gap": gap,
        "stopped_models_matched_off": len(err),
        "prediction_mae_matched": float(err["error"].abs().mean()) if len(err) else None,
        "hypervolume_on": float(on["hypervolume"]),
        "hypervolume_off": float(off["hypervolume"]),
        "hypervolume_ref": [float(on["ref_acc"]), float(on["ref_mflops"])],
    }
    res["targets"] = {
        "epochs_saved_pct >= 25": res["epochs_saved_pct"] >= TARGETS["epochs_saved_pct"],
        "best accuracy within 1 point of engine off": abs(gap) <= TARGETS["best_acc_gap"]
        or gap < 0,
        "quickstart <= 300 s": res["quickstart_seconds"] <= TARGETS["quickstart_seconds"],
    }
    out = Path(args.out)
    (out / "results.json").write_text(json.dumps(res, indent=2) + "\n")
    tail = ""
    if args.log and Path(args.log).exists():
        lines = Path(args.log).read_text().splitlines()
        start = next((i for i, ln in enumerate(lines) if ln.startswith("Run directory:")), None)
        tail = "\n".join(lines[start:] if start is not None else lines[-20:])
    md = [
        "# Quickstart: the engine on against off",
        "",
        f"Machine: {res['machine']}; 1-minute load average at the end "
        f"{res['load_average_1min']:.1f} (other jobs shared the 2 cores). Command: "
        "`bash benchmarks/quickstart/measure.sh` (a fresh clone; `bash scripts/quickstart.sh "
        '--quiet`, then the same config with `engine: {preset: "off"}`).',
        "",
        "| | target | measured | met |",
        "|---|---|---|---|",
        f"| epochs saved by the engine | >= 25% | {res['epochs_saved_pct']:.1f}% "
        f"({res['epochs_trained']} of {res['epochs_budget']:.0f}; {res['stopped_early']} of "
        f"{res['models']} models stopped early) | "
        f"{'yes' if res['targets']['epochs_saved_pct >= 25'] else 'NO'} |",
        f"| best model's accuracy, engine on against off | within 1 point | "
        f"{res['best_val_acc_on']:.2f}% (model {res['best_model_on']}) against "
        f"{res['best_val_acc_off']:.2f}% (model {res['best_model_off']}): "
        f"{-gap:+.2f} points | "
        f"{'yes' if res['targets']['best accuracy within 1 point of engine off'] else 'NO'} |",
        f"| README's first command, set-up included | <= 300 s | "
        f"{res['quickstart_seconds']:.0f} s | "
        f"{'yes' if res['targets']['quickstart <= 300 s'] else 'NO'} |",
        "",
        f"Search wall time (run.json): {res['run_wall_seconds_on']:.0f} s with the engine, "
        f"{res['run_wall_seconds_off']:.0f} s without; training time "
        f"{res['training_seconds_on']:.0f} s against {res['training_seconds_off']:.0f} s. "
        f"Hypervolume (reference accuracy {res['hypervolume_ref'][0]:g}%, "
        f"{res['hypervolume_ref'][1]:.3g} MFLOPs): {res['hypervolume_on']:.1f} on, "
        f"{res['hypervolume_off']:.1f} off. Stopped models whose architecture the engine-off "
        f"run also trained: {res['stopped_models_matched_off']}"
        + (
            f", prediction MAE {res['prediction_mae_matched']:.2f} points against its final "
            "accuracy there."
            if res["prediction_mae_matched"] is not None
            else "."
        ),
        "",
        "The quickstart's last lines:",
        "",
        "```",
        tail,
        "```",
        "",
    ]
    (out / "RESULTS.md").write_text("\n".join(md))
    print("\n".join(md))
    return 0 if all(res["targets"].values()) else 1


if __name__ == "__main__":
    sys.exit(main())
