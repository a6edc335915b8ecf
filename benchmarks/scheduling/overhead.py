"""Overhead of Prefect + Dask + lineage against a bare Python loop, on the quickstart.

Each repeat runs, as fresh processes on the same cached data:

- `bare`: `bare_loop.py`, the same search (adapter, seeds, training, engine) in a plain
  Python loop with no Prefect, no Dask and no lineage (nothing written);
- `flow`: `a4nn run` as users run it, the Prefect flow (ephemeral API) over a local Dask
  cluster, with the run directory, per-epoch records and checkpoints.

Same compute on both sides (`--layout same`, the default): the flow gets one Dask worker
with `--threads` threads, the loop trains with `--threads` torch threads; the difference
is then Prefect, Dask and lineage. `--layout quickstart` keeps the quickstart's own
layout (two single-thread workers training two models at once), which is what a user
sees but mixes parallelism into the comparison. Runs alternate (bare, flow, flow, bare,
...) so that drift in the machine's load falls on both; the result is the median of the
per-pair ratios. The script checks that both trained the same models to the same
validation accuracies.

    python benchmarks/scheduling/overhead.py --repeats 3 --out benchmarks/scheduling
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parents[2]
HERE = Path(__file__).resolve().parent


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


def write_config(work: Path, args: argparse.Namespace) -> Path:
    raw = apply_overrides(yaml.safe_load(Path(args.config).read_text()), args.set)
    raw["data"]["cache_dir"] = str(ROOT / "data")
    orch = raw.setdefault("orchestration", {})
    orch["runner"] = "prefect"
    if args.layout == "same":
        orch.update(n_workers=1, threads_per_worker=args.threads)
        raw["train"].pop("threads", None)
    path = work / "search.yaml"
    path.write_text(yaml.safe_dump(raw))
    return path


def _timed(cmd: list[str]) -> float:
    env = {**os.environ, "DO_NOT_TRACK": "1", "PREFECT_SERVER_ANALYTICS_ENABLED": "false"}
    env.pop("PREFECT_API_URL", None)  # the embedded default: ephemeral API
    t0 = time.perf_counter()
    proc = subprocess.run(cmd, env=env, cwd=ROOT, capture_output=True, text=True)
    wall = time.perf_counter() - t0
    if proc.returncode != 0:
        raise SystemExit(f"{cmd} failed:\n{proc.stdout[-2000:]}\n{proc.stderr[-2000:]}")
    return wall


def run_bare(config: Path, out: Path, threads: int) -> dict:
    cmd = [sys.executable, str(HERE / "bare_loop.py"), str(config), str(out), "--threads"]
    wall = _timed([*cmd, str(threads)])
    trained = json.loads(out.read_text())["train_seconds"]
    return {
        "runner": "bare",
        "process_wall_s": wall,
        "train_seconds_sum": float(sum(trained.values())),
        "out": str(out),
    }


def run_flow(config: Path, out: Path) -> dict:
    cmd = [sys.executable, "-m", "a4nn.cli", "run", str(config), "--out", str(out), "--quiet"]
    wall = _timed(cmd)
    import pandas as pd

    meta = json.loads((out / "run.json").read_text())
    return {
        "runner": "flow",
        "process_wall_s": wall,
        "search_wall_s": meta["wall_seconds"],
        "train_seconds_sum": float(pd.read_csv(out / "models.csv")["train_seconds"].sum()),
        "out": str(out),
    }


def same_training(bare_json: Path, flow_dir: Path) -> bool:
    """Both trained the same models, epoch for epoch, to the same validation accuracies."""
    import pandas as pd

    bare = {int(k): v for k, v in json.loads(bare_json.read_text())["val_acc"].items()}
    epochs = pd.read_csv(flow_dir / "epochs.csv").sort_values(["model_id", "epoch"])
    flow = {int(m): g["val_acc"].tolist() for m, g in epochs.groupby("model_id")}
    return bare.keys() == flow.keys() and all(
        len(bare[m]) == len(flow[m])
        and all(abs(a - b) < 1e-6 for a, b in zip(bare[m], flow[m], strict=True))
        for m in bare
    )


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--config", default=str(ROOT / "a4nn/configs/quickstart.yaml"))
    p.add_argument("--repeats", type=int, default=3)
    p.add_argument("--threads", type=int, default=2, help="threads per model (layout same)")
    p.add_argument("--layout", choices=["same", "quickstart"], default="same")
    p.add_argument("--out", help="folder for overhead.json / overhead.md")
    p.add_argument("--tag", default="overhead")
    p.add_argument("--set", action="append", default=[], help="config override key=value")
    args = p.parse_args(argv)

    from a4nn.config import load_config
    from a4nn.dataset import ensure_xfel

    ensure_xfel(load_config(args.config, base=ROOT).data, progress=True)  # outside the timings
    pairs = []
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        config = write_config(work, args)
        for i in range(args.repeats):
            order = ("bare", "flow") if i % 2 == 0 else ("flow", "bare")
            pair: dict[str, dict] = {}
            for runner in order:
                if runner == "bare":
                    pair["bare"] = run_bare(config, work / f"bare{i}.json", args.threads)
                else:
                    pair["flow"] = run_flow(config, work / f"flow{i}")
                print(f"repeat {i}: {runner} {pair[runner]['process_wall_s']:.1f} s", flush=True)
            pair["same_training"] = same_training(
                Path(pair["bare"]["out"]), Path(pair["flow"]["out"])
            )
            pair["ratio"] = pair["flow"]["process_wall_s"] / pair["bare"]["process_wall_s"]
            # wall time outside the models' epoch loops, flow minus bare: Prefect, Dask
            # and the run-level lineage, without the machine's drift in training speed
            # (per-epoch records and checkpoints are inside the loops). Meaningful with
            # one worker (layout `same`) only: two workers' loops overlap in time.
            pair["extra_outside_training_s"] = (
                pair["flow"]["process_wall_s"] - pair["flow"]["train_seconds_sum"]
            ) - (pair["bare"]["process_wall_s"] - pair["bare"]["train_seconds_sum"])
            pair["training_ratio"] = (
                pair["flow"]["train_seconds_sum"] / pair["bare"]["train_seconds_sum"]
            )
            pairs.append(pair)
    same = args.layout == "same"
    ratio = statistics.median(p["ratio"] for p in pairs)
    extra = statistics.median(p["extra_outside_training_s"] for p in pairs)
    training_ratio = statistics.median(p["training_ratio"] for p in pairs)
    bare_med = statistics.median(p["bare"]["process_wall_s"] for p in pairs)
    flow_med = statistics.median(p["flow"]["process_wall_s"] for p in pairs)
    result = {
        "machine": f"{platform.node()}, {os.cpu_count()} cores, Python {platform.python_version()}",
        "command": "python benchmarks/scheduling/overhead.py " + " ".join(argv or sys.argv[1:]),
        "config": Path(args.config).name,
        "layout": args.layout,
        "threads": args.threads,
        "overrides": args.set,
        "pairs": pairs,
        "same_training": all(p["same_training"] for p in pairs),
        "median_ratio": ratio,
        "overhead_pct": 100 * (ratio - 1),
        "median_bare_s": bare_med,
        "median_flow_s": flow_med,
    }
    if same:
        result.update(
            median_extra_outside_training_s=extra,
            extra_outside_training_pct_of_bare=100 * extra / bare_med,
            median_training_ratio=training_ratio,
        )
    breakdown = ""
    if same:  # one worker: the search is its models back to back
        start_stop = statistics.median(
            p["flow"]["process_wall_s"] - p["flow"]["search_wall_s"] for p in pairs
        )
        per_model = statistics.median(
            p["flow"]["search_wall_s"] - p["flow"]["train_seconds_sum"] for p in pairs
        )
        result.update(start_stop_s=start_stop, between_models_s=per_model)
        breakdown = (
            f"Where the flow's time goes (medians): start-up and shut-down outside the search "
            f"{start_stop:.1f} s (the bare loop's process start and data load are in its own "
            f"time); inside the search, {per_model:.1f} s not spent training models "
            "(Prefect task runs, the driver's tables and adapter state, the worker picking "
            "up the next model).\n"
        )
    rows = "".join(
        f"| {i} | {p['bare']['process_wall_s']:.1f} | {p['flow']['process_wall_s']:.1f} | "
        f"{p['flow']['search_wall_s']:.1f} | {100 * (p['ratio'] - 1):+.1f}% | "
        + (
            f"{p['training_ratio']:.3f} | {p['extra_outside_training_s']:.1f} | "
            if same
            else "n/a | n/a | "
        )
        + f"{p['same_training']} |\n"
        for i, p in enumerate(pairs)
    )
    outside = (
        f"Outside the models' epoch loops (each side's wall minus the sum of its models' "
        f"training seconds), the flow took a median {extra:.1f} s more than the bare loop: "
        f"{100 * extra / bare_med:.1f}% of the bare loop's wall time. The epoch loops "
        f"themselves ran {training_ratio:.3f}x the bare loop's time (median of pairs; the "
        "flow's per-epoch records, checkpoints and progress events are inside them, and so "
        "is the machine's drift).\n\n"
    )
    md = (
        f"### Overhead on `{result['config']}` {' '.join(args.set)}, layout `{args.layout}` "
        f"({result['machine']})\n\n"
        f"- command: `{result['command']}`\n\n"
        "| repeat | bare loop (s) | flow, process (s) | flow, search in run.json (s) "
        "| flow vs bare | training, flow / bare | flow's extra outside training (s) "
        "| same training |\n|---|---:|---:|---:|---:|---:|---:|---|\n"
        + rows
        + f"\nMedian of the per-pair ratios: Prefect + Dask + lineage add "
        f"**{result['overhead_pct']:+.1f}%** to the bare loop's wall time (medians: bare "
        f"{bare_med:.1f} s, flow {flow_med:.1f} s). Same training in every pair: "
        f"{result['same_training']}.\n\n" + (outside if same else "") + breakdown
    )
    print(md)
    if args.out:
        out = Path(args.out)
        out.mkdir(parents=True, exist_ok=True)
        (out / f"{args.tag}.json").write_text(json.dumps(result, indent=2))
        (out / f"{args.tag}.md").write_text(md)
    return 0


if __name__ == "__main__":
    sys.exit(main())
