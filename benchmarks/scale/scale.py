"""Issue 22: a large search on many virtual GPUs, through `a4nn.simulate`.

The real scheduler, NSGA-Net adapter, prediction engine and lineage run unchanged; only
training is replayed on a virtual clock. Curves: the A4NN ICPP'23 commons' 100 standalone
models (`1gpu_1e15_training_data.csv`, every model trained 25 epochs, engine off), with
the epoch times of the paper's in-situ run (`1gpu_1e15_stopping_training_data.csv`, the
only recording with `epoch_times`; see docs/simulate.md for the rule). Each model's
curve: sha256 of its choice vector modulo 100. MFLOPs: the curve's recorded `flops`.

    python benchmarks/scale/scale.py --models 10000 --gpus 256 --tag steady_10k_256

writes `<tag>.json` (the whole report: utilization, bound, driver time per model by
category, its curve over the search) and `<tag>.md` into --out (default: this folder).
NSGA-Net: pop_size = n_offspring = models / 100 (at least 10), n_generations 100 (or 10
when models < 1000), mode steady_state (async) unless --mode generational.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import shutil
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT))

from a4nn.config import config_from_dict  # noqa: E402
from a4nn.simulate import format_simulation, load_curves, simulate  # noqa: E402
from lineage.atomic import FSYNC_STATS  # noqa: E402

DATA = ROOT / "benchmarks" / "data" / "a4nn-icpp23"
CURVES = DATA / "1gpu_1e15_training_data.csv"
TIMES = DATA / "1gpu_1e15_stopping_training_data.csv"


def search_options(models: int, mode: str) -> dict[str, Any]:
    gens = 100 if models >= 1000 else 10
    size = max(2, models // gens)
    if size * gens != models:
        raise SystemExit(f"--models must be a multiple of {gens}, got {models}")
    return {"pop_size": size, "n_offspring": size, "n_generations": gens, "mode": mode}


def config(models: int, mode: str, engine: str) -> Any:
    return config_from_dict(
        {
            "name": f"scale-{models}",
            "seed": 0,
            "train": {"epochs": 25},
            "search": {
                "adapter": "nsganet",
                "space": "nsganet-macro",
                "options": search_options(models, mode),
                "space_options": {"channels": [24, 48, 96]},
            },
            "engine": {"preset": engine, "e_pred": 25},
            "lineage": {"checkpoints": "none"},
            "orchestration": {"runner": "plain"},
        },
        "benchmarks/scale",
    )


def machine() -> str:
    load = os.getloadavg()[0] if hasattr(os, "getloadavg") else float("nan")
    return (
        f"{platform.node()}: {platform.processor() or platform.machine()}, "
        f"{os.cpu_count()} cores, Python {platform.python_version()}, load {load:.1f} at start"
    )


def markdown(rep: dict[str, Any]) -> str:
    lines = [
        f"### {rep['models']} models on {rep['gpus']} virtual GPUs ({rep['mode']}, engine "
        f"{rep['engine']}, adapter state saved: {rep['save_state']})",
        "",
        f"- command: `{rep['command']}`",
        f"- machine: {rep['machine']}; run directory on {rep['workdir_fs']}",
        f"- wall {rep['wall_s']:.0f} s (search loop {rep['loop_wall_s']:.0f} s, tables joined "
        f"at the end {rep['finish_s']:.1f} s); engine replays {rep['engine_replays']}, reused "
        f"{rep['memo_hits']}",
        "",
        "| | value |",
        "|---|---:|",
        f"| utilization (driver's time charged to the clock) | {100 * rep['utilization']:.2f}% |",
        f"| list scheduling, zero overhead, same durations | {100 * rep['bound_utilization']:.2f}% |",
        f"| makespan (virtual) | {rep['makespan_s'] / 3600:.2f} h |",
        f"| bound makespan | {rep['bound_makespan_s'] / 3600:.2f} h |",
        f"| epochs saved by the engine | {rep['epochs_saved_pct']:.1f}% |",
        f"| GPU time saved | {rep['gpu_seconds_saved_pct']:.1f}% |",
        f"| driver ms per finished model (all) | {rep['driver_ms_per_model']:.2f} |",
        f"| of which fsync, lineage's (calls per model) | {rep['fsync_ms_per_model']:.2f}"
        f" ({rep['fsync_calls_per_model']:.1f}) |",
        "",
        "Driver ms per model, by models finished (wall minus the engine's replay):",
        "",
    ]
    curve = rep["driver_curve"]
    if curve:
        cats = [k for k in curve[0] if k.endswith("_ms") and k != "driver_ms"]
        lines.append("| models | driver | " + " | ".join(k[:-3] for k in cats) + " |")
        lines.append("|---|---:|" + "---:|" * len(cats))
        for r in curve:
            lines.append(
                f"| {r['from']}-{r['to']} | {r['driver_ms']:.1f} | "
                + " | ".join(f"{r[k]:.1f}" for k in cats)
                + " |"
            )
    return "\n".join(lines) + "\n"


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--models", type=int, default=10_000)
    p.add_argument("--gpus", type=int, default=256)
    p.add_argument("--mode", default="steady_state", choices=["steady_state", "generational"])
    p.add_argument("--engine", default="paper")
    p.add_argument("--save-state", default="every", choices=["every", "final"])
    p.add_argument("--workdir", help="where the run directory goes (default: a temp folder)")
    p.add_argument("--keep", action="store_true", help="keep the run directory")
    p.add_argument("--out", default=str(Path(__file__).parent))
    p.add_argument("--tag", required=True)
    args = p.parse_args(argv)
    command = "python benchmarks/scale/scale.py " + " ".join(argv or sys.argv[1:])
    cfg = config(args.models, args.mode, args.engine)
    curves = load_curves(CURVES, times=TIMES)
    work = Path(tempfile.mkdtemp(prefix="a4nn-scale-", dir=args.workdir))
    started = machine()
    t0 = time.perf_counter()
    last = [t0]

    def progress(done: int, total: int) -> None:
        if done % max(1, total // 20) == 0:
            now = time.perf_counter()
            print(f"  {done}/{total} models, {now - t0:.0f} s (+{now - last[0]:.0f})", flush=True)
            last[0] = now

    before = dict(FSYNC_STATS)  # the lineage's fsyncs: how much of the driver waits for disk
    try:
        sim = simulate(
            cfg, curves, args.gpus, work / "run", save_state=args.save_state, progress=progress
        )
    finally:
        if not args.keep:
            shutil.rmtree(work, ignore_errors=True)
    disk = {k: FSYNC_STATS[k] - before[k] for k in before}
    print(format_simulation(sim))
    rep = sim.to_dict()
    fs = os.statvfs(args.workdir or tempfile.gettempdir())
    rep.update(
        command=command,
        machine=started,
        workdir_fs=f"{args.workdir or tempfile.gettempdir()} ({fs.f_bsize}-byte blocks)",
        curves_file=str(CURVES.relative_to(ROOT)),
        times_file=str(TIMES.relative_to(ROOT)),
        options=cfg.search.options,
        fsync_calls_per_model=disk["calls"] / max(1, sim.models),
        fsync_ms_per_model=1000.0 * disk["seconds"] / max(1, sim.models),
    )
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    (out / f"{args.tag}.json").write_text(json.dumps(rep, indent=2, default=str) + "\n")
    (out / f"{args.tag}.md").write_text(markdown(rep))
    print(markdown(rep))
    return 0


if __name__ == "__main__":
    sys.exit(main())
