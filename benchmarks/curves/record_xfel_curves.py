"""Record full learning curves of NSGA-Net searches on simulated XFEL data (engine off).

For each beam intensity, `a4nn run` trains the paper's 100 NSGA-Net models (population
10, 10 offspring x 9 generations) for the full 25-epoch budget with the prediction engine
off, so every curve is complete. The curves feed the engine benchmark
(`benchmarks/engine/`), which replays them through each engine as if in situ.

Sized for a 2-core CPU: 400 training / 200 validation images per intensity, average-pooled
to 16x16, channel widths (4, 8, 16). The networks are small, but the curves are real
training histories of the NSGA-Net macro space on diffraction images, at three noise
levels. Output: benchmarks/data/xfel-curves/xfel_<intensity>_{epochs,models}.csv
(run-directory tables; checkpoints are not kept).

    python benchmarks/curves/record_xfel_curves.py [--intensity 1e14 ...] [--work DIR]
        [--n-test 200] [--workers 0] [--out benchmarks/data/xfel-curves]
        [--lr 0.05] [--lr-schedule cosine|constant]
"""

from __future__ import annotations

import argparse
import shutil
import subprocess
import sys
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parents[2]
OUT = ROOT / "benchmarks" / "data" / "xfel-curves"


def config(
    intensity: float,
    cache: Path,
    n_test: int = 200,
    workers: int = 0,
    lr_schedule: str = "cosine",
    lr: float = 0.05,
) -> dict:
    """The recording search; `workers` > 0 runs it as the Prefect flow on that many
    single-thread Dask workers (the same models and seeds as the plain loop)."""
    orch = {"runner": "plain"}
    if workers:
        orch = {"runner": "prefect", "n_workers": workers, "threads_per_worker": 1}
    return {
        "name": f"curves-{intensity:.0e}",
        "seed": 0,
        "data": {
            "source": "xfel",
            "xfel": {"intensity": intensity, "n_train": 400, "n_test": n_test, "seed": 0},
            "cache_dir": str(cache),
            "validation": "testset",
            "normalize": "log1p",
            "resize": 16,
        },
        "train": {
            "epochs": 25,
            "batch_size": 32,
            "lr": lr,
            "lr_schedule": lr_schedule,
            "threads": 1,
        },
        "search": {"adapter": "nsganet", "preset": "paper", "channels": [4, 8, 16]},
        "engine": {"preset": "off"},
        "lineage": {"checkpoints": "none"},
        "orchestration": orch,
    }


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--intensity", type=float, nargs="+", default=[1e14, 1e15, 1e16])
    p.add_argument("--work", type=Path, default=ROOT / "runs" / "curves")
    p.add_argument("--n-test", type=int, default=200, help="validation images")
    p.add_argument("--workers", type=int, default=0, help="Dask workers (0: plain loop)")
    p.add_argument("--out", type=Path, default=OUT, help="folder for the CSV tables")
    p.add_argument("--lr", type=float, default=0.05, help="SGD learning rate")
    p.add_argument(
        "--lr-schedule",
        choices=["cosine", "constant"],
        default="cosine",
        help="learning-rate schedule of every model (cosine decays over the 25 epochs)",
    )
    args = p.parse_args()
    out_dir = args.out
    out_dir.mkdir(parents=True, exist_ok=True)
    for intensity in args.intensity:
        tag = f"{intensity:.0e}".replace("+", "")
        run = args.work / tag
        cfg_path = args.work / f"{tag}.yaml"
        args.work.mkdir(parents=True, exist_ok=True)
        cfg = config(
            intensity, args.work / "data", args.n_test, args.workers, args.lr_schedule, args.lr
        )
        cfg_path.write_text(yaml.safe_dump(cfg))
        cmd = [sys.executable, "-m", "a4nn.cli", "run", str(cfg_path), "--out", str(run), "--quiet"]
        if (run / "run.json").exists():
            cmd.append("--resume")
        print("$", " ".join(cmd), flush=True)
        subprocess.run(cmd, check=True)
        for table in ("epochs", "models"):
            shutil.copy(run / f"{table}.csv", out_dir / f"xfel_{tag}_{table}.csv")
    return 0


if __name__ == "__main__":
    sys.exit(main())
