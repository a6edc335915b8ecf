"""Issue 22 (4): the real driver on a real Dask cluster 256 slots wide; where a model's round
trip goes.

The flow side is what `flows.search_flow._search` runs, minus the data and the progress
board: a real `SearchSession` (run directory, lineage tables, adapter state), the real
NSGA-Net adapter in steady state, `a4nn.scheduler.run_schedule`, and the real
`PrefectDaskExecutor` submitting one Prefect task run per model through
`prefect_dask.DaskTaskRunner` with `resources={"GPU": 1}`. Only the task is replaced:
`sleep_model` sleeps for the model's "training" time and writes the model's folder
(model.json with its result, epochs.csv) as a trained model leaves it, so the flow's
`record` reads and appends real lineage.

The cluster is a real `distributed.LocalCluster` (scheduler in the flow's process, as
`a4nn run` has it) of `--worker-procs` worker processes holding `--slots` slots between
them: each process one worker with `slots / worker-procs` threads and as many `GPU`
resources, so each thread is one slot (every task asks for `GPU=1`). 256 one-slot worker
processes do not fit a 2-core machine; `--worker-procs 256` gives that shape elsewhere.
(Many `distributed.Worker`s in one process, or a separate `dask scheduler`, lost the
flow's client connection here: "scheduler-connection-lost" on every task; not pursued.)

Per model the flow process times (wall clock): the adapter's `ask` and `tell` (and
`state_dict`), lineage (`record`: table parts and CSV lines, run.json; the state and
in-flight files saved after `ask`/`tell`), the Prefect submit (`PrefectDaskExecutor.submit`:
`task.submit` and the future's callback set-up) and the wait in `next_result`. The task
stamps when its body starts and ends (`time.time()`), so each model's round trip splits
into submit -> body start (Prefect's task engine on the worker: task run created, state
Running; Dask: scheduling, transfer) and body end -> result seen by the driver (state
Completed, result back through Dask, the done callback). The same cluster then runs
`--dask-tasks` plain `client.submit` calls of the same sleep, without Prefect, for Dask's
own share of those two gaps.

    python benchmarks/scale/dask_width.py --slots 256 --models 500 --sleep 60 --tag width_256

writes DASK_WIDTH.json / DASK_WIDTH.md (--out, default this folder).
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import random
import resource
import statistics
import sys
import tempfile
import time
from collections import defaultdict
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
ROOT = HERE.parents[1]
sys.path.insert(0, str(ROOT))

from a4nn.simulate import list_schedule  # noqa: E402
from flows.search_flow import PrefectDaskExecutor  # noqa: E402


def sleep_model(
    model_id: int,
    candidate: dict[str, Any],
    config: dict[str, Any],
    run_dir: str,
    prior_ids: bytes,
) -> dict[str, Any]:
    """A model whose training is a sleep; writes its folder as a trained model leaves it.

    `prior_ids` come packed, as the real task gets them."""
    from a4nn.types import Candidate, Result
    from lineage.run_dir import RunDir

    start = time.time()
    rng = random.Random(model_id)
    seconds = config["_sleep"] * rng.uniform(0.5, 1.5)
    time.sleep(seconds)
    epochs = 25
    vals = [min(99.0, 50 + 40 * (1 - 0.85**e) + rng.gauss(0, 1)) for e in range(epochs)]
    res = Result(
        model_id=model_id,
        fitness=vals[-1],
        mflops=rng.uniform(10, 400),
        params=rng.randint(10_000, 2_000_000),
        epochs_trained=epochs,
        last_val_acc=vals[-1],
        best_val_acc=max(vals),
        train_seconds=seconds,
    )
    md = RunDir(Path(run_dir)).model(model_id)
    md.write_epochs(
        [
            {
                "model_id": model_id,
                "epoch": e,
                "train_acc": v + 1,
                "val_acc": v,
                "train_loss": float("nan"),
                "val_loss": float("nan"),
                "epoch_seconds": seconds / epochs,
                "prediction": None,
                "converged": False,
                "engine_family": "",
                "engine_params": "",
                "checkpoint": "",
                "checkpoint_sha256": "",
                "checkpoint_wait_seconds": 0.0,
            }
            for e, v in enumerate(vals)
        ]
    )
    md.write_meta(
        {
            "candidate": Candidate.from_dict(candidate).to_dict(),
            "seed": model_id,
            "device": "sleep",
            "result": res.to_dict(),
        }
    )
    out = res.to_dict()
    out["extra"] = {"body_start": start, "body_end": time.time(), "slept": seconds}
    return out


def plain_sleep(seconds: float) -> tuple[float, float]:
    start = time.time()
    time.sleep(seconds)
    return start, time.time()


class TimedExecutor(PrefectDaskExecutor):
    """The flow's executor; its task sleeps, and submit/next_result are timed.

    Its timers live on the instance: cloudpickle ships this class by value with the
    flow's context, and re-sets a by-value class's methods in this process, so methods
    that closed over local variables would lose them after the first submit."""

    timers: Any
    stamps: dict[int, dict[str, float]]

    def submit(self, cand: Any, prior_ids: list[int]) -> None:
        self.stamps.setdefault(cand.model_id, {})["submit"] = time.time()
        with self.timers.time("submit"):
            super().submit(cand, prior_ids)

    def next_result(self) -> Any:
        with self.timers.time("wait"):
            cand, res = super().next_result()
        self.stamps[cand.model_id]["seen"] = time.time()
        self.stamps[cand.model_id].update(res.extra)
        return cand, res


class TimedSession:
    """The real session, with `record`, `tell` and `save_inflight` timed."""

    def __init__(self, session: Any, timers: Any) -> None:
        self._s = session
        self.record = timers.wrap("record", session.record)
        self.tell = timers.wrap("session_tell", session.tell)
        self.save_inflight = timers.wrap("save_inflight", session.save_inflight)

    def __getattr__(self, name: str) -> Any:
        return getattr(self._s, name)


def config(models: int) -> Any:
    from a4nn.config import config_from_dict

    size = models // 10
    if size * 10 != models:
        raise SystemExit(f"--models must be a multiple of 10, got {models}")
    return config_from_dict(
        {
            "name": f"width-{models}",
            "seed": 0,
            "train": {"epochs": 25},
            "search": {
                "adapter": "nsganet",
                "space": "nsganet-macro",
                "options": {
                    "pop_size": size,
                    "n_offspring": size,
                    "n_generations": 10,
                    "mode": "steady_state",
                },
                "space_options": {"channels": [24, 48, 96]},
            },
            "engine": {"preset": "paper"},
            "lineage": {"checkpoints": "none"},
        },
        "benchmarks/scale",
    )


def run_flow(address: str, cfg: Any, sleep: float, out: Path, slots: int) -> dict[str, Any]:
    from prefect import flow, task
    from prefect.cache_policies import NO_CACHE
    from prefect_dask import DaskTaskRunner

    from a4nn.scheduler import run_schedule
    from a4nn.search import SearchSession
    from a4nn.simulate import TimedAdapter, Timers

    sleeper = task(
        sleep_model,
        name="train-model",
        task_run_name="model-{model_id}",
        cache_policy=NO_CACHE,
        persist_result=False,
    )
    timers = Timers(seconds=defaultdict(float), calls=defaultdict(int))  # any category
    stamps: dict[int, dict[str, float]] = {}

    @flow(name="dask-width", task_runner=DaskTaskRunner(address=address))
    def width() -> dict[str, Any]:
        t0 = time.perf_counter()
        c0 = _cpu()
        with SearchSession.open(cfg, out) as session:
            session.adapter = TimedAdapter(session.adapter, timers)
            executor = TimedExecutor(cfg, session.run, slots)
            executor.timers, executor.stamps = timers, stamps
            executor.task = sleeper.with_options(retries=0)
            executor.config = {**executor.config, "_sleep": sleep}
            run_schedule(TimedSession(session, timers), executor)
            wall = time.perf_counter() - t0
            with timers.time("finish"):
                session.finish(wall)
        return {
            "wall_s": time.perf_counter() - t0,
            "loop_wall_s": wall,
            "flow_cpu_s": _cpu() - c0,
        }

    got = width()
    got["timers"] = {"seconds": dict(timers.seconds), "calls": dict(timers.calls)}
    got["stamps"] = stamps
    return got


def dask_only(address: str, n: int, sleep: float) -> list[dict[str, float]]:
    """`n` plain Dask tasks of the same sleep (no Prefect), all in flight at once."""
    from distributed import Client, as_completed

    out = []
    with Client(address) as client:
        subs = {}
        futs = []
        for i in range(n):
            subs[i] = time.time()
            futs.append(
                client.submit(
                    plain_sleep, sleep, key=f"plain-{i}", resources={"GPU": 1}, pure=False
                )
            )
        index = {f.key: i for i, f in enumerate(futs)}
        for fut in as_completed(futs):
            start, end = fut.result()
            seen = time.time()
            i = index[fut.key]
            out.append({"submit": subs[i], "body_start": start, "body_end": end, "seen": seen})
    return out


def _cpu() -> float:
    ru = resource.getrusage(resource.RUSAGE_SELF)
    return ru.ru_utime + ru.ru_stime


def _med_ms(xs: list[float]) -> float:
    return statistics.median(xs) * 1e3 if xs else float("nan")


def report(got: dict[str, Any], plain: list[dict[str, float]], args: Any) -> dict[str, Any]:
    st = [s for s in got["stamps"].values() if "seen" in s and "body_start" in s]
    if not st:
        raise RuntimeError("no model finished")
    n = len(st)
    sec = got["timers"]["seconds"]
    adapter_s = sec["ask"] + sec["tell"] + sec["state_dict"]
    lineage_s = sec["record"] + sec["session_tell"] + sec["save_inflight"] - sec["tell"]
    lineage_s -= sec["state_dict"]
    loop = got["loop_wall_s"]
    busy = sum(s["slept"] for s in st)
    in_order = [s["slept"] for s in sorted(st, key=lambda s: s["submit"])]
    bound = busy / (args.slots * list_schedule(in_order, args.slots))
    t0 = min(s["submit"] for s in st)
    t1 = max(s["seen"] for s in st)
    per_model = {
        "adapter ask+tell+state_dict": adapter_s,
        "lineage (record, state and in-flight files)": lineage_s,
        "Prefect submit (flow side)": sec["submit"],
        "waiting for a result (idle or blocked)": sec["wait"],
    }
    other = loop - sum(per_model.values())
    per_model["other driver time (loop, callbacks)"] = other
    return {
        "machine": (
            f"{platform.node()}: {os.cpu_count()} cores, Python {platform.python_version()}, "
            f"load {args.load:.1f} at start, benchmark at nice {os.nice(0)}"
        ),
        "command": "python benchmarks/scale/dask_width.py " + " ".join(args.argv),
        "prefect": _version("prefect"),
        "prefect_dask": _version("prefect-dask"),
        "distributed": _version("distributed"),
        "api": args.api,
        "slots": args.slots,
        "worker_procs": args.worker_procs,
        "models": n,
        "sleep_s": f"uniform {args.sleep * 0.5:g}-{args.sleep * 1.5:g}",
        "loop_wall_s": loop,
        "flow_cpu_s": got["flow_cpu_s"],
        "finish_s": sec["finish"],
        "utilization": busy / (args.slots * (t1 - t0)),
        "bound_utilization": bound,
        "driver_ms_per_model": {k: v / n * 1e3 for k, v in per_model.items()},
        "adapter_ms_per_model": {k: sec[k] / n * 1e3 for k in ("ask", "tell", "state_dict")},
        "round_trip_median_ms": {
            "prefect+dask: submit -> task body starts": _med_ms(
                [s["body_start"] - s["submit"] for s in st]
            ),
            "prefect+dask: task body ends -> driver has the result": _med_ms(
                [s["seen"] - s["body_end"] for s in st]
            ),
            "dask only: submit -> body starts": _med_ms(
                [p["body_start"] - p["submit"] for p in plain]
            ),
            "dask only: body ends -> result": _med_ms([p["seen"] - p["body_end"] for p in plain]),
        },
        "round_trip_p90_ms": {
            "prefect+dask: submit -> task body starts": _pct_ms(
                [s["body_start"] - s["submit"] for s in st], 0.9
            ),
            "prefect+dask: task body ends -> driver has the result": _pct_ms(
                [s["seen"] - s["body_end"] for s in st], 0.9
            ),
        },
        "dask_only_tasks": len(plain),
        "timers_seconds": sec,
        "timers_calls": got["timers"]["calls"],
    }


def _pct_ms(xs: list[float], q: float) -> float:
    xs = sorted(xs)
    return xs[min(len(xs) - 1, int(q * len(xs)))] * 1e3 if xs else float("nan")


def _version(name: str) -> str:
    from importlib.metadata import version

    return version(name)


def markdown(rep: dict[str, Any]) -> str:
    lines = [
        f"# The real driver on {rep['slots']} Dask slots (issue 22, part 4)",
        "",
        f"- machine: {rep['machine']}",
        f"- Prefect {rep['prefect']}, prefect-dask {rep['prefect_dask']}, distributed "
        f"{rep['distributed']}; Prefect API: {rep['api']}",
        f"- command: `{rep['command']}`",
        f"- {rep['models']} models (NSGA-Net, steady state), each task sleeping "
        f"{rep['sleep_s']} s; {rep['slots']} slots: {rep['worker_procs']} Dask worker processes "
        f"of {rep['slots'] // rep['worker_procs']} threads and as many GPU resources each",
        "",
        f"Driver loop: {rep['loop_wall_s']:.0f} s wall, {rep['flow_cpu_s']:.0f} s CPU of the "
        f"flow process; slot utilization (slept / slots x span) {rep['utilization'] * 100:.1f}% "
        f"(list scheduling of the same sleeps in submission order with zero overhead: "
        f"{rep['bound_utilization'] * 100:.1f}%); "
        f"closing the run (table compaction) {rep['finish_s']:.1f} s.",
        "",
        "## Driver time per model (flow process, wall clock)",
        "",
        "| where | ms per model |",
        "|---|---|",
    ]
    for k, v in rep["driver_ms_per_model"].items():
        lines.append(f"| {k} | {v:.1f} |")
    lines += [
        "",
        "Adapter detail (ms per model): "
        + ", ".join(f"{k} {v:.2f}" for k, v in rep["adapter_ms_per_model"].items()),
        "",
        "## A model's round trip outside its training (median ms; p90 in brackets)",
        "",
        "| gap | median ms |",
        "|---|---|",
    ]
    for k, v in rep["round_trip_median_ms"].items():
        p90 = rep["round_trip_p90_ms"].get(k)
        extra = f" ({p90:.0f})" if p90 is not None else ""
        lines.append(f"| {k} | {v:.0f}{extra} |")
    lines += ["", f"Dask only: {rep['dask_only_tasks']} plain sleeping tasks on the same cluster."]
    notes = rep.get("notes", [])
    if notes:
        lines += ["", "## Notes", "", *notes]
    return "\n".join(lines) + "\n"


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--slots", type=int, default=256)
    p.add_argument("--models", type=int, default=500)
    p.add_argument("--sleep", type=float, default=60.0, help="mean seconds a model sleeps")
    p.add_argument("--dask-tasks", type=int, default=256)
    p.add_argument("--worker-procs", type=int, default=8, help="worker processes sharing the slots")
    p.add_argument("--out", type=Path, default=HERE)
    args = p.parse_args(argv)
    args.argv = list(argv or sys.argv[1:])
    args.load = os.getloadavg()[0]
    os.environ.setdefault("DO_NOT_TRACK", "1")

    from flows.cluster import quiet_dask_logs
    from flows.search_flow import prefect_api

    own = "PREFECT_API_URL" not in os.environ
    cfg = config(args.models)
    with quiet_dask_logs(), prefect_api() as api, tempfile.TemporaryDirectory() as tmp:
        args.api = f"a4nn's own local server (SQLite), {api}" if own else api
        import dask
        from distributed import LocalCluster

        per = args.slots // args.worker_procs
        if per * args.worker_procs != args.slots:
            raise SystemExit("--slots must be a multiple of --worker-procs")
        with (
            dask.config.set({"distributed.worker.profile.enabled": False}),  # as a4nn's
            LocalCluster(  # worker processes inherit PREFECT_API_URL from prefect_api()
                n_workers=args.worker_procs,
                threads_per_worker=per,
                resources={"GPU": per},
                dashboard_address=None,
            ) as cluster,
        ):
            address = cluster.scheduler_address
            print(f"cluster at {address}; flow starts", flush=True)
            got = run_flow(address, cfg, args.sleep, Path(tmp) / "run", args.slots)
            print(f"flow done in {got['loop_wall_s']:.0f} s; Dask-only tasks", flush=True)
            plain = dask_only(address, args.dask_tasks, 1.0)
    rep = report(got, plain, args)
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / "DASK_WIDTH.json").write_text(json.dumps(rep, indent=1))
    (args.out / "DASK_WIDTH.md").write_text(markdown(rep))
    print(markdown(rep))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
