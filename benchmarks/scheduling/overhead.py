"""Overhead of Prefect + Dask + lineage against the plain Python loop, on the quickstart.

Runs `a4nn run quickstart` twice as fresh processes, once with `orchestration.runner:
plain` (`a4nn.search.run_search_local`: one model at a time in the process) and once with
the default Prefect flow on a local Dask cluster (one CPU slot with all the cores, so
both train with the same threads), and compares whole-process wall times. Both train the
same models with the same seeds; the script checks that the tables agree.

    python benchmarks/scheduling/overhead.py --out benchmarks/scheduling

The simulated data is generated once before timing (both runs read the same cache).
Lineage (per-epoch records and checkpoints) is written by both runs: it is the same
`train_candidate` code; what differs is Prefect, Dask and the run-level bookkeeping.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parents[2]


def apply_overrides(raw: dict, sets: list[str]) -> dict:
    """`section.key=value` overrides (value parsed as YAML), e.g. search.n_generations=1."""
    for item in sets:
        key, _, value = item.partition("=")
        *path, last = key.split(".")
        node = raw
        for part in path:
            node = node.setdefault(part, {})
        node[last] = yaml.safe_load(value)
    return raw


def run_once(runner: str, work: Path, config: str, sets: list[str]) -> dict:
    raw = apply_overrides(yaml.safe_load(Path(config).read_text()), sets)
    raw.setdefault("orchestration", {})["runner"] = runner
    raw["data"]["cache_dir"] = str(ROOT / "data")
    cfg_path = work / f"{runner}.yaml"
    cfg_path.write_text(yaml.safe_dump(raw))
    out = work / runner
    env = {**os.environ, "DO_NOT_TRACK": "1"}
    env.pop("PREFECT_API_URL", None)  # the embedded default: ephemeral API
    t0 = time.perf_counter()
    proc = subprocess.run(
        [sys.executable, "-m", "a4nn.cli", "run", str(cfg_path), "--out", str(out), "--quiet"],
        env=env,
        cwd=ROOT,
        capture_output=True,
        text=True,
    )
    wall = time.perf_counter() - t0
    if proc.returncode != 0:
        raise SystemExit(f"{runner} run failed:\n{proc.stdout[-2000:]}\n{proc.stderr[-2000:]}")
    meta = json.loads((out / "run.json").read_text())
    return {
        "runner": runner,
        "process_wall_s": wall,
        "search_wall_s": meta["wall_seconds"],
        "out": str(out),
    }


def same_models(a: Path, b: Path) -> bool:
    import pandas as pd

    ma = pd.read_csv(a / "models.csv").sort_values("model_id").reset_index(drop=True)
    mb = pd.read_csv(b / "models.csv").sort_values("model_id").reset_index(drop=True)
    cols = ["model_id", "genome", "epochs_trained"]
    return ma[cols].equals(mb[cols])


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--config", default=str(ROOT / "a4nn/configs/quickstart.yaml"))
    p.add_argument("--out", help="folder for overhead.json / overhead.md")
    p.add_argument("--set", action="append", default=[], help="config override key=value")
    p.add_argument("--flow-first", action="store_true", help="time the flow before the loop")
    args = p.parse_args(argv)

    from a4nn.config import load_config
    from a4nn.dataset import ensure_xfel

    cfg = load_config(args.config, base=ROOT)
    ensure_xfel(cfg.data, progress=True)  # simulate once, outside the timings
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        order = ("prefect", "plain") if args.flow_first else ("plain", "prefect")
        runs = [run_once(r, work, args.config, args.set) for r in order]
        runs.sort(key=lambda r: r["runner"] != "plain")
        same = same_models(Path(runs[0]["out"]), Path(runs[1]["out"]))
    plain, flow = runs
    extra = flow["process_wall_s"] - plain["process_wall_s"]
    result = {
        "machine": f"{platform.node()}, {os.cpu_count()} cores, Python {platform.python_version()}",
        "command": "python benchmarks/scheduling/overhead.py " + " ".join(argv or sys.argv[1:]),
        "config": Path(args.config).name,
        "overrides": args.set,
        "runs": runs,
        "same_models": same,
        "overhead_s": extra,
        "overhead_pct": 100 * extra / plain["process_wall_s"],
        "overhead_search_pct": 100 * (flow["search_wall_s"] / plain["search_wall_s"] - 1),
    }
    md = (
        f"### Overhead on `{result['config']}` {' '.join(args.set)} ({result['machine']})\n\n"
        f"- command: `{result['command']}`\n\n"
        "| runner | process wall (s) | search wall in run.json (s) |\n|---|---:|---:|\n"
        + "".join(
            f"| {r['runner']} | {r['process_wall_s']:.1f} | {r['search_wall_s']:.1f} |\n"
            for r in runs
        )
        + f"\nOverhead of Prefect + Dask: {extra:+.1f} s = {result['overhead_pct']:+.1f}% of the "
        f"plain loop's wall time ({result['overhead_search_pct']:+.1f}% inside the search "
        f"itself, excluding start-up and shut-down). Same models trained: {same}.\n"
    )
    print(md)
    if args.out:
        out = Path(args.out)
        (out / "overhead.json").write_text(json.dumps(result, indent=2))
        (out / "overhead.md").write_text(md)
    return 0


if __name__ == "__main__":
    sys.exit(main())
