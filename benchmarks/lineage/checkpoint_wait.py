"""How long training waits for per-epoch checkpoints: background writer vs a plain save.

Trains quickstart-sized models (the quickstart's data, search space and channel widths;
fewer models and epochs) with checkpoints kept every epoch, and reads from the lineage
how long each epoch waited for its checkpoint (`checkpoint_wait_seconds`: the in-memory
snapshot; the write happens on a background thread) against the epoch's length. For
comparison it times a synchronous `save_checkpoint` of the same state (serialize + fsync
+ rename), what a loop without the writer would wait.

    python benchmarks/lineage/checkpoint_wait.py [--models 4] [--epochs 3]
Writes benchmarks/lineage/RESULTS.md and checkpoint_wait.json.
"""

from __future__ import annotations

import argparse
import contextlib
import io
import json
import platform
import statistics
import sys
import tempfile
import time
from pathlib import Path

import pandas as pd
import yaml

from a4nn.cli import main as a4nn_main
from a4nn.config import embedded_config_path
from a4nn.reload import load_model
from lineage.checkpoints import save_checkpoint

HERE = Path(__file__).resolve().parent
ROOT = HERE.parents[1]


def main() -> int:
    p = argparse.ArgumentParser()
    p.add_argument("--models", type=int, default=4)
    p.add_argument("--epochs", type=int, default=3)
    args = p.parse_args()
    cfg = yaml.safe_load(embedded_config_path("quickstart").read_text())
    cfg["data"]["cache_dir"] = str(ROOT / "data")
    cfg["train"]["epochs"] = args.epochs
    cfg["search"]["options"].update(pop_size=args.models, n_offspring=1, n_generations=1)
    cfg["engine"] = {"preset": "off"}
    cfg["orchestration"] = {"runner": "plain"}
    cfg["train"]["threads"] = 1
    with tempfile.TemporaryDirectory() as tmp:
        cfg_path = Path(tmp) / "cfg.yaml"
        cfg_path.write_text(yaml.safe_dump(cfg))
        run = Path(tmp) / "run"
        with contextlib.redirect_stdout(io.StringIO()):
            assert a4nn_main(["run", str(cfg_path), "--out", str(run), "--quiet"]) == 0
        epochs = pd.read_csv(run / "epochs.csv")
        sync = []
        for mid in epochs["model_id"].unique():
            model = load_model(run, int(mid))
            state = {"model": model.state_dict(), "epoch": 0}
            t0 = time.perf_counter()
            save_checkpoint(Path(tmp) / f"sync_{mid}.pt", state)
            sync.append(time.perf_counter() - t0)
    ratio = epochs["checkpoint_wait_seconds"] / epochs["epoch_seconds"]
    result = {
        "machine": f"{platform.node()} {platform.machine()}, {platform.processor() or 'cpu'}, "
        f"python {platform.python_version()}",
        "command": "python " + " ".join(sys.argv),
        "epochs": len(epochs),
        "median_epoch_seconds": float(epochs["epoch_seconds"].median()),
        "median_wait_seconds": float(epochs["checkpoint_wait_seconds"].median()),
        "max_wait_pct_of_epoch": float(100 * ratio.max()),
        "median_wait_pct_of_epoch": float(100 * ratio.median()),
        "median_sync_save_seconds": statistics.median(sync),
        "target_pct": 5.0,
    }
    (HERE / "checkpoint_wait.json").write_text(json.dumps(result, indent=2) + "\n")
    (HERE / "RESULTS.md").write_text(
        "# Checkpoint wait (issue 5)\n\n"
        f"Machine: {result['machine']} (2 cores, shared with other jobs while measured).\n"
        f"Command: `{result['command']}`\n\n"
        "| what | value |\n|---|---|\n"
        f"| epochs measured | {result['epochs']} |\n"
        f"| median epoch | {result['median_epoch_seconds']:.3f} s |\n"
        f"| median wait for the background writer (snapshot) | {1e3 * result['median_wait_seconds']:.2f} ms |\n"
        f"| wait as % of the epoch: median / max | {result['median_wait_pct_of_epoch']:.3f}% / {result['max_wait_pct_of_epoch']:.3f}% (target <= 5%) |\n"
        f"| a synchronous save of the same weights (serialize + fsync + rename), median | {1e3 * result['median_sync_save_seconds']:.2f} ms |\n"
    )
    print(json.dumps(result, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
