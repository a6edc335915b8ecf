"""Record full learning curves of NSGA-Net searches on simulated XFEL data (engine off).

For each beam intensity, `a4nn run` trains the paper's 100 NSGA-Net models (population
10, 10 offspring x 9 generations) for the full 25-epoch budget with the prediction engine
off, so every curve is complete. The curves feed the engine benchmark
(`benchmarks/engine/`), which replays them through each engine as if in situ.

Two recipes are committed (each folder's README gives its exact command):

* `--recipe cpu` (benchmarks/data/xfel-curves*): sized for the 2-core development VM,
  400 training / 200 validation images, 16x16, channel widths (4, 8, 16);
* `--recipe gpu` (benchmarks/data/xfel-curves-gpu): for one GPU, 4,000 training / 4,000
  validation images, 32x32, the paper preset's widths (24, 48, 96), batch 128. A
  validation set this size resolves 0.5-point differences (20 images at 4,000), which the
  200-image sets cannot (one image is 0.5 points).

`--parallel` runs the intensities as concurrent processes (they share the GPU);
`--time-limit` stops them after that many seconds, leaving run directories that a second
call with the same arguments resumes (`a4nn run --resume`; finished models are kept).
Output: <out>/xfel_<intensity>_{epochs,models}.csv (run-directory tables; checkpoints are
not kept).

    python benchmarks/curves/record_xfel_curves.py [--recipe cpu|gpu]
        [--intensity 1e14 ...] [--work DIR] [--out DIR] [--parallel] [--time-limit S]
        [--n-train N] [--n-test N] [--resize PX] [--batch-size B] [--lr LR]
        [--lr-schedule cosine|constant] [--channels C C C] [--workers 0]
"""

from __future__ import annotations

import argparse
import shutil
import subprocess
import sys
import time
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parents[2]

RECIPES: dict[str, dict] = {
    "cpu": {
        "n_train": 400,
        "n_test": 200,
        "resize": 16,
        "batch_size": 32,
        "lr": 0.05,
        "channels": [4, 8, 16],
        "threads": 1,
        "out": ROOT / "benchmarks" / "data" / "xfel-curves",
    },
    "gpu": {
        "n_train": 4000,
        "n_test": 4000,
        "resize": 32,
        "batch_size": 128,
        "lr": 0.05,
        "channels": [24, 48, 96],
        "threads": None,
        "out": ROOT / "benchmarks" / "data" / "xfel-curves-gpu",
    },
}


def config(intensity: float, cache: Path, recipe: dict, workers: int = 0) -> dict:
    """The recording search; `workers` > 0 runs it as the Prefect flow on that many
    single-thread Dask workers (the same models and seeds as the plain loop)."""
    orch = {"runner": "plain"}
    if workers:
        orch = {"runner": "prefect", "n_workers": workers, "threads_per_worker": 1}
    train = {
        "epochs": 25,
        "batch_size": recipe["batch_size"],
        "lr": recipe["lr"],
        "lr_schedule": recipe["lr_schedule"],
    }
    if recipe.get("threads"):
        train["threads"] = recipe["threads"]
    return {
        "name": f"curves-{intensity:.0e}",
        "seed": 0,
        "data": {
            "source": "xfel",
            "xfel": {
                "intensity": intensity,
                "n_train": recipe["n_train"],
                "n_test": recipe["n_test"],
                "seed": 0,
            },
            "cache_dir": str(cache),
            "validation": "testset",
            "normalize": "log1p",
            "resize": recipe["resize"],
        },
        "train": train,
        "search": {
            "adapter": "nsganet",
            "options": {"preset": "paper"},
            "space_options": {"channels": recipe["channels"]},
        },
        "engine": {"preset": "off"},
        "lineage": {"checkpoints": "none"},
        "orchestration": orch,
    }


def _tag(intensity: float) -> str:
    return f"{intensity:.0e}".replace("+", "")


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--recipe", choices=sorted(RECIPES), default="cpu")
    p.add_argument("--intensity", type=float, nargs="+", default=[1e14, 1e15, 1e16])
    p.add_argument("--work", type=Path, help="run directories (default: runs/curves-<recipe>)")
    p.add_argument("--out", type=Path, help="folder for the CSV tables (default: the recipe's)")
    p.add_argument("--workers", type=int, default=0, help="Dask workers (0: plain loop)")
    p.add_argument("--parallel", action="store_true", help="run the intensities concurrently")
    p.add_argument("--time-limit", type=float, help="stop after S seconds (resumable)")
    p.add_argument("--n-train", type=int, help="training images (recipe's by default)")
    p.add_argument("--n-test", type=int, help="validation images")
    p.add_argument("--resize", type=int, help="image side after area pooling")
    p.add_argument("--batch-size", type=int)
    p.add_argument("--lr", type=float, help="SGD learning rate")
    p.add_argument("--channels", type=int, nargs="+", help="channel widths per phase")
    p.add_argument(
        "--lr-schedule",
        choices=["cosine", "constant"],
        default="cosine",
        help="learning-rate schedule of every model (cosine decays over the 25 epochs)",
    )
    args = p.parse_args()
    recipe = dict(RECIPES[args.recipe], lr_schedule=args.lr_schedule)
    for key in ("n_train", "n_test", "resize", "batch_size", "lr", "channels"):
        if getattr(args, key) is not None:
            recipe[key] = getattr(args, key)
    out_dir = args.out or recipe["out"]
    out_dir.mkdir(parents=True, exist_ok=True)
    # one folder per recipe: a gpu call never "resumes" a finished cpu recording (and
    # `a4nn run --resume` refuses a run whose config differs from the new one)
    args.work = args.work or ROOT / "runs" / f"curves-{args.recipe}"
    args.work.mkdir(parents=True, exist_ok=True)

    deadline = time.monotonic() + args.time_limit if args.time_limit else None
    procs: list[tuple[float, subprocess.Popen]] = []
    outcomes: dict[float, str] = {}
    for intensity in args.intensity:
        tag = _tag(intensity)
        run = args.work / tag
        cfg_path = args.work / f"{tag}.yaml"
        cfg = config(intensity, args.work / "data", recipe, args.workers)
        cfg_path.write_text(yaml.safe_dump(cfg))
        cmd = [sys.executable, "-m", "a4nn.cli", "run", str(cfg_path), "--out", str(run), "--quiet"]
        if (run / "run.json").exists():
            cmd.append("--resume")
        print("$", " ".join(cmd), flush=True)
        proc = subprocess.Popen(cmd)
        procs.append((intensity, proc))
        if not args.parallel:
            outcomes[intensity] = _wait(proc, deadline)
            if outcomes[intensity] != "finished":
                break  # a crash or the time limit: the next intensities wait for another call
    stopped, failed = [], []
    for intensity, proc in procs:
        tag = _tag(intensity)
        outcome = outcomes.get(intensity) or _wait(proc, deadline)
        if outcome == "stopped":
            stopped.append(tag)
        elif outcome == "failed":
            failed.append(f"{tag} (exit code {proc.returncode})")
        else:
            run = args.work / tag
            for table in ("epochs", "models"):
                shutil.copy(run / f"{table}.csv", out_dir / f"xfel_{tag}_{table}.csv")
    left = [_tag(i) for i in args.intensity[len(procs) :]]
    if stopped or left:
        unfinished = ", ".join(stopped + left)
        print(f"not finished (time limit, or not started): {unfinished}; run again to resume")
    if failed:
        print(f"failed (see the output above): {', '.join(failed)}", flush=True)
        return 1
    return 3 if stopped or left else 0


def _wait(proc: subprocess.Popen, deadline: float | None) -> str:
    """Wait for `proc`, stopping it at `deadline` (time.monotonic) if one is set.

    Returns "finished" (exit code 0), "stopped" (ended here at the deadline: resumable)
    or "failed" (any other exit: a crash is not called resumable).
    """
    try:
        timeout = None if deadline is None else max(0.0, deadline - time.monotonic())
        proc.wait(timeout=timeout)
    except subprocess.TimeoutExpired:
        proc.terminate()
        proc.wait()
        return "stopped"
    return "finished" if proc.returncode == 0 else "failed"


if __name__ == "__main__":
    sys.exit(main())
