"""Scheduling simulation: generational vs async on a real Dask cluster of N workers.

Each "model" sleeps for its recorded epoch times (scaled down) and stops at the epoch
where the in-situ engine stopped it, both replayed from a recording: the A4NN commons
CSV with `epoch_times` (`1gpu_1e15_stopping_training_data.csv`, published with the A4NN
ICPP'23 paper: 100 models in training order, rows ending where the engine stopped) or one
of our run directories (`epochs.csv` with `epoch_seconds`).

The schedules are the ones `a4nn run` uses (`a4nn.scheduler.run_generational` and
`run_steady_state`); only the executor differs: plain `distributed.Client.submit` of a
sleeping function with `resources={"GPU": 1}` on a `LocalCluster` of N one-slot worker
processes, so the numbers measure the schedule and Dask, not Prefect's per-task cost
(measured separately by `overhead.py`).

    python benchmarks/scheduling/simulate.py --workers 1 4 16 64 --out benchmarks/scheduling

Utilization = sum of model busy times (measured inside the workers) / (N x makespan);
makespan runs from the first submission to the last result, in the driver.
"""

from __future__ import annotations

import argparse
import csv
import json
import platform
import queue
import statistics
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT))

from a4nn.scheduler import MemorySession, run_generational, run_steady_state  # noqa: E402
from a4nn.types import Candidate, Result  # noqa: E402
from flows.cluster import TRAIN_RESOURCES, local_cluster  # noqa: E402

DEFAULT_CSV = ROOT.parent / "shared/data/a4nn-icpp23/1gpu_1e15_stopping_training_data.csv"


def read_epoch_times(path: Path) -> list[list[float]]:
    """Per model (training order), the seconds of each epoch it trained."""
    path = Path(path)
    if path.is_dir():
        path = path / "epochs.csv"
    models: list[list[float]] = []
    with open(path, newline="") as fh:
        rows = list(csv.DictReader(fh))
    if not rows:
        raise ValueError(f"{path}: no rows")
    if "epoch_times" in rows[0]:  # A4NN commons: a new model starts where epoch == 0
        for r in rows:
            if int(float(r["epoch"])) == 0:
                models.append([])
            models[-1].append(float(r["epoch_times"]))
        return models
    if "epoch_seconds" in rows[0]:  # a run of ours
        by_id: dict[str, list[float]] = {}
        for r in rows:
            by_id.setdefault(r["model_id"], []).append(float(r["epoch_seconds"]))
        return list(by_id.values())
    raise ValueError(f"{path}: needs an `epoch_times` (commons) or `epoch_seconds` column")


@dataclass
class ReplayAdapter:
    """Proposes the recorded models in order: generations of `pop`, then `offspring`."""

    n_models: int
    pop: int = 10
    offspring: int = 10
    next_id: int = 0
    told: int = 0
    mode: str = "generational"
    name: str = "replay"

    def done(self) -> bool:
        return self.next_id >= self.n_models

    def ask(self, n: int | None = None) -> list[Candidate]:
        if n is None:
            n = self.pop if self.next_id == 0 else self.offspring
        ids = range(self.next_id, min(self.next_id + n, self.n_models))
        self.next_id = ids.stop
        gen = 0 if self.next_id <= self.pop else 1 + (self.next_id - self.pop - 1) // self.offspring
        return [Candidate(model_id=i, space="replay", arch=i, generation=gen) for i in ids]

    def tell(self, results: list[Result]) -> None:
        self.told += len(results)


ReplaySession = MemorySession  # the scheduler's in-memory session


def sleep_model(model_id: int, epoch_seconds: list[float]) -> dict[str, Any]:
    """'Train' one model: sleep through its (scaled) epochs; report when, and where."""
    from distributed import get_worker

    start = time.time()
    for s in epoch_seconds:
        time.sleep(s)
    return {"model_id": model_id, "start": start, "end": time.time(), "worker": get_worker().name}


class DaskReplayExecutor:
    """Submits `sleep_model` tasks asking for one GPU slot; results in completion order."""

    def __init__(self, client: Any, slots: int, curves: list[list[float]], scale: float):
        self.client, self.slots, self.curves, self.scale = client, slots, curves, scale
        self.done: queue.Queue = queue.Queue()
        self.spans: list[dict[str, Any]] = []
        self.first_submit: float | None = None

    def submit(self, cand: Candidate, prior_ids: list[int]) -> None:
        times = [t * self.scale for t in self.curves[cand.model_id % len(self.curves)]]
        if self.first_submit is None:
            self.first_submit = time.time()
        fut = self.client.submit(
            sleep_model,
            cand.model_id,
            times,
            resources=TRAIN_RESOURCES,
            pure=False,
            key=f"model-{cand.model_id}",
        )
        fut.add_done_callback(lambda f, c=cand: self.done.put((c, f)))

    def next_result(self) -> tuple[Candidate, Result]:
        cand, fut = self.done.get()
        span = fut.result()
        self.spans.append(span)
        n_epochs = len(self.curves[cand.model_id % len(self.curves)])
        return cand, Result(cand.model_id, 0.0, 0.0, 0, n_epochs, extra=span)


def simulate(
    client: Any, n_workers: int, mode: str, curves: list[list[float]], n_models: int, scale: float
) -> dict[str, Any]:
    session = ReplaySession(ReplayAdapter(n_models))
    ex = DaskReplayExecutor(client, n_workers, curves, scale)
    t_end = 0.0

    def stamp(_c: Candidate, _r: Result) -> None:
        nonlocal t_end
        t_end = time.time()

    if mode == "generational":
        run_generational(session, ex, on_result=stamp)
    else:
        run_steady_state(session, ex, on_result=stamp)
    makespan = t_end - (ex.first_submit or t_end)
    busy = sum(s["end"] - s["start"] for s in ex.spans)
    work = scale * sum(sum(curves[i % len(curves)]) for i in range(n_models))
    return {
        "mode": mode,
        "workers": n_workers,
        "models": n_models,
        "makespan_s": makespan,
        "busy_s": busy,
        "ideal_work_s": work,
        "utilization": busy / (n_workers * makespan),
        "workers_used": len({s["worker"] for s in ex.spans}),
    }


def run_all(args: argparse.Namespace) -> dict[str, Any]:
    import dask
    from distributed import Client

    # 64 worker processes starting at once on 2 cores need more than the 30 s default
    dask.config.set({"distributed.comm.timeouts.connect": "300s"})

    curves = read_epoch_times(Path(args.curves))
    n_models = args.models or len(curves)
    runs: list[dict[str, Any]] = []
    for n in args.workers:
        t0 = time.perf_counter()
        processes = n <= args.max_processes
        with (
            local_cluster(n, 1, processes=processes, dashboard_address=":0") as cluster,
            Client(cluster) as client,
        ):
            client.wait_for_workers(n, timeout=600)
            startup = time.perf_counter() - t0
            client.run(lambda: None)  # warm the connections
            for mode in args.modes:
                for rep in range(args.repeats):
                    r = simulate(client, n, mode, curves, n_models, args.scale)
                    r.update(repeat=rep, cluster_start_s=startup, worker_processes=processes)
                    runs.append(r)
                    print(
                        f"N={n:>3} {mode:<12} rep {rep}: makespan {r['makespan_s']:7.2f} s  "
                        f"utilization {100 * r['utilization']:5.1f}%",
                        flush=True,
                    )
    return {"curves": str(args.curves), "models": n_models, "scale": args.scale, "runs": runs}


def summarize(raw: dict[str, Any]) -> list[dict[str, Any]]:
    """Median makespan/utilization per (mode, N) and speedup over that mode's N=1."""
    rows: list[dict[str, Any]] = []
    groups: dict[tuple[str, int], list[dict[str, Any]]] = {}
    for r in raw["runs"]:
        groups.setdefault((r["mode"], r["workers"]), []).append(r)
    for (mode, n), rs in sorted(groups.items()):
        rows.append(
            {
                "mode": mode,
                "workers": n,
                "makespan_s": statistics.median(r["makespan_s"] for r in rs),
                "utilization": statistics.median(r["utilization"] for r in rs),
                "repeats": len(rs),
            }
        )
    ones = [r["makespan_s"] for r in rows if r["workers"] == 1]
    best1 = min(ones) if ones else float("nan")
    for row in rows:
        base = next((r for r in rows if r["mode"] == row["mode"] and r["workers"] == 1), None)
        row["speedup"] = base["makespan_s"] / row["makespan_s"] if base else float("nan")
        row["speedup_vs_best1"] = best1 / row["makespan_s"]
    return rows


def machine() -> str:
    import os

    return f"{platform.node()}: {platform.processor() or platform.machine()}, {os.cpu_count()} cores, Python {platform.python_version()}"


def markdown(raw: dict[str, Any], rows: list[dict[str, Any]], command: str) -> str:
    lines = [
        f"### {raw['models']} models, epoch times x {raw['scale']:g}",
        "",
        f"- machine: {machine()}",
        f"- command: `{command}`",
        f"- curves: `{Path(raw['curves']).name}`",
        "",
        f"- recorded work after scaling: {raw['runs'][0]['ideal_work_s']:.1f} s; workers are "
        "processes up to --max-processes, threads of one process above (`worker_processes`)",
        "",
        "| mode | workers | makespan (s) | utilization | speedup vs same mode, 1 worker "
        "| speedup vs best 1-worker run |",
        "|---|---:|---:|---:|---:|---:|",
    ]
    for r in rows:
        lines.append(
            f"| {r['mode']} | {r['workers']} | {r['makespan_s']:.2f} | "
            f"{100 * r['utilization']:.1f}% | {r['speedup']:.2f}x | {r['speedup_vs_best1']:.2f}x |"
        )
    return "\n".join(lines) + "\n"


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--curves", default=str(DEFAULT_CSV), help="commons CSV or a run directory")
    p.add_argument("--workers", type=int, nargs="+", default=[1, 4, 16, 64])
    p.add_argument("--modes", nargs="+", default=["generational", "async"])
    p.add_argument(
        "--models",
        type=int,
        help="models in the search (default: the recording's; "
        "more cycles through the recorded curves)",
    )
    p.add_argument("--scale", type=float, default=5e-4, help="seconds slept per recorded second")
    p.add_argument("--repeats", type=int, default=1)
    p.add_argument(
        "--max-processes",
        type=int,
        default=64,
        help="clusters with more workers run them as threads of one process",
    )
    p.add_argument("--out", help="folder for <tag>.json and <tag>.md")
    p.add_argument("--tag", default="results")
    p.add_argument("--from-json", help="re-render the tables of a saved <tag>.json")
    args = p.parse_args(argv)
    if args.from_json:
        raw = json.loads(Path(args.from_json).read_text())
        md = markdown(raw, summarize(raw), raw.get("command", ""))
        Path(args.from_json).with_suffix(".md").write_text(md)
        print(md)
        return 0
    raw = run_all(args)
    rows = summarize(raw)
    command = "python benchmarks/scheduling/simulate.py " + " ".join(argv or sys.argv[1:])
    md = markdown(raw, rows, command)
    print(md)
    if args.out:
        out = Path(args.out)
        out.mkdir(parents=True, exist_ok=True)
        raw.update(machine=machine(), command=command, summary=rows)
        (out / f"{args.tag}.json").write_text(json.dumps(raw, indent=2))
        (out / f"{args.tag}.md").write_text(md)
    return 0


if __name__ == "__main__":
    sys.exit(main())
