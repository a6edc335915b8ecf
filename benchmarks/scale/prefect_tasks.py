"""Issue 22 (3): the per-task cost of Prefect task runs as a search's count grows.

One flow run per N submits N trivial task runs (the quickstart's config dict as a
parameter, like a training task) through `prefect_dask.DaskTaskRunner` to a local Dask
cluster set up as `a4nn run` sets it up (`flows.cluster.local_cluster`: one-slot worker
processes, each task asking for `GPU=1`), keeping `--inflight` of them in flight the way
the steady-state executor does (`add_done_callback` into a queue; a new task run is
submitted the moment one finishes). The Prefect API is the one `flows.search_flow.
prefect_api` gives: `PREFECT_API_URL` when set (a `prefect server start`, on SQLite or
PostgreSQL: `scripts/prefect_server_postgres.sh`), else a4nn's own local server on SQLite
(`flows.api_server`, what `a4nn run` uses by default). `--deployment ephemeral` uses
neither: Prefect's own ephemeral API (no PREFECT_API_URL; every process that talks to
Prefect, the flow's and each worker's, starts a temporary server on the same database),
what a4nn used before it started its own server.

Per window of completions (the first 100, then tenths of N above 100), the per-task
cost is the wall time between the window's last completion and the previous window's,
divided by the window's size (the first window counts from the first submit, so it holds
the cold start); also the median submit -> result latency and the flow process's CPU per
task. `steady_ms` of a flow run leaves its first 10 completions out.

    PREFECT_API_URL=... python benchmarks/scale/prefect_tasks.py --deployment server-sqlite \
        --n 100 100 100 1000 10000

merges each flow run into --json (default: PREFECT.json beside this file, keyed by
deployment and N, repeats kept) and rewrites PREFECT.md from it.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import platform
import queue
import resource
import statistics
import sys
import time
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
ROOT = HERE.parents[1]
sys.path.insert(0, str(ROOT))

SKIP = 10  # completions left out of steady_ms (cold paths)


def _noop(i: int, config: dict[str, Any], prior: Any = None) -> int:
    return i


def prior_parameter(k: int, packed: bool) -> Any:
    """What a training task gets as the ids of the k models finished before it: a list
    (as before) or `flows.search_flow.pack_ids` bytes (as now); None for k = 0."""
    if not k:
        return None
    from flows.search_flow import pack_ids

    ids = list(range(k))
    return pack_ids(ids) if packed else ids


def edges(n: int) -> list[int]:
    """Window boundaries: 0, 100, then every tenth of n above 100."""
    step = max(100, n // 10)
    out = [0, min(100, n)]
    k = step
    while k <= n:
        if k > out[-1]:
            out.append(k)
        k += step
    if out[-1] != n:
        out.append(n)
    return out


def cpu_seconds() -> float:
    ru = resource.getrusage(resource.RUSAGE_SELF)
    return ru.ru_utime + ru.ru_stime


def run_flow(
    address: str, n: int, inflight: int, config: dict[str, Any], prior: Any = None
) -> dict[str, Any]:
    """One flow run of n task runs, `inflight` at a time; completion times and latencies."""
    import dask
    from prefect import flow, task
    from prefect.cache_policies import NO_CACHE
    from prefect_dask import DaskTaskRunner

    noop = task(_noop, name="noop", cache_policy=NO_CACHE, persist_result=False)

    @flow(name="prefect-tasks", task_runner=DaskTaskRunner(address=address))
    def many() -> dict[str, Any]:
        done: queue.Queue = queue.Queue()
        submitted: dict[int, float] = {}
        submit_s = 0.0

        def submit(i: int) -> None:
            nonlocal submit_s
            t = time.perf_counter()
            submitted[i] = t
            with dask.annotate(resources={"GPU": 1}):
                fut = noop.submit(i, config, prior)
            fut.add_done_callback(lambda f, i=i: done.put((i, f)))
            submit_s += time.perf_counter() - t

        t0 = time.perf_counter()
        c0 = cpu_seconds()
        for i in range(min(inflight, n)):
            submit(i)
        nxt = min(inflight, n)
        finished: list[float] = []
        latency: list[float] = []
        cpu: list[float] = []
        while len(finished) < n:
            i, fut = done.get()
            if fut.result() != i:
                raise RuntimeError(f"task run {i} returned {fut.result()!r}")
            now = time.perf_counter()
            finished.append(now - t0)
            latency.append(now - submitted.pop(i))
            cpu.append(cpu_seconds() - c0)
            if nxt < n:
                submit(nxt)
                nxt += 1
        return {
            "finished_s": finished,
            "latency_s": latency,
            "cpu_s": cpu,
            "submit_s": submit_s,
        }

    t = time.perf_counter()
    got = many()
    got["flow_wall_s"] = time.perf_counter() - t
    return got


def windows(got: dict[str, Any]) -> list[dict[str, Any]]:
    fin, lat, cpu = got["finished_s"], got["latency_s"], got["cpu_s"]
    e = edges(len(fin))
    out = []
    for a, b in zip(e, e[1:], strict=False):
        t_prev = fin[a - 1] if a else 0.0
        c_prev = cpu[a - 1] if a else 0.0
        out.append(
            {
                "from": a,
                "to": b,
                "ms_per_task": (fin[b - 1] - t_prev) / (b - a) * 1e3,
                "median_latency_ms": statistics.median(lat[a:b]) * 1e3,
                "flow_cpu_ms_per_task": (cpu[b - 1] - c_prev) / (b - a) * 1e3,
            }
        )
    return out


def summary(got: dict[str, Any]) -> dict[str, Any]:
    fin = got["finished_s"]
    n = len(fin)
    k = min(SKIP, n - 1)
    return {
        "n": n,
        "wall_s": fin[-1],
        "mean_ms": fin[-1] / n * 1e3,
        "steady_ms": (fin[-1] - fin[k - 1]) / (n - k) * 1e3,
        "last_window_ms": windows(got)[-1]["ms_per_task"],
        "median_latency_ms": statistics.median(got["latency_s"]) * 1e3,
        "flow_cpu_ms_per_task": got["cpu_s"][-1] / n * 1e3,
        "flow_submit_ms_per_task": got["submit_s"] / n * 1e3,
        "windows": windows(got),
    }


def machine() -> str:
    load = os.getloadavg()[0]
    return (
        f"{platform.node()}: {os.cpu_count()} cores, Python {platform.python_version()}, "
        f"load {load:.1f} at start, benchmark at nice {os.nice(0)}"
    )


def table(runs_by_dep: dict[str, Any]) -> list[str]:
    lines = [
        "| deployment | N | runs | steady ms/task | last window ms/task | median latency ms "
        "| flow CPU ms/task | wall s |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for dep, by_n in runs_by_dep.items():
        for n in sorted(by_n, key=int):
            runs = by_n[n]

            def med(key: str, runs: list[dict[str, Any]] = runs) -> float:
                return statistics.median(r["summary"][key] for r in runs)

            lines.append(
                f"| {dep} | {int(n):,} | {len(runs)} | {med('steady_ms'):.0f} "
                f"| {med('last_window_ms'):.0f} | {med('median_latency_ms'):.0f} "
                f"| {med('flow_cpu_ms_per_task'):.0f} | {med('wall_s'):.0f} |"
            )
    return lines


def markdown(doc: dict[str, Any]) -> str:
    lines = [
        "# Prefect per-task cost at 100, 1,000 and 10,000 task runs (issue 22, part 3)",
        "",
        "Written by `benchmarks/scale/prefect_tasks.py` from `PREFECT.json` (every run's",
        "machine, command and per-window numbers are there). Per-task cost: wall time between",
        "completions divided by the task runs completed, with `inflight` trivial task runs in",
        f"flight; `steady` leaves each flow run's first {SKIP} completions out. Medians over",
        "repeats where there are several. The machine is shared and noisy (its load and the",
        "benchmark's nice level are in each run's line): read ratios, not absolute values.",
        "",
    ]
    lines += table(doc["runs"])
    lines += ["", "## Ratios (steady ms/task at N over at 100, medians)", ""]
    for dep, by_n in doc["runs"].items():
        if "100" not in by_n:
            continue
        base = statistics.median(r["summary"]["steady_ms"] for r in by_n["100"])
        for n in sorted(by_n, key=int):
            if n == "100":
                continue
            s = statistics.median(r["summary"]["steady_ms"] for r in by_n[n])
            last = statistics.median(r["summary"]["last_window_ms"] for r in by_n[n])
            lines.append(
                f"- {dep}: N={int(n):,} / N=100 = {s / base:.2f} (whole run), "
                f"{last / base:.2f} (its last window)"
            )
    lines += ["", "## Windows (per-task cost over the run)", ""]
    for dep, by_n in doc["runs"].items():
        for n in sorted(by_n, key=int):
            if int(n) < 1000:
                continue
            for r in by_n[n]:
                ws = ", ".join(
                    f"{w['from']}-{w['to']}: {w['ms_per_task']:.0f}"
                    for w in r["summary"]["windows"]
                )
                lines.append(f"- {dep}, N={int(n):,} ({r['started']}): {ws} ms/task")
    lines += ["", "## Runs", ""]
    for dep, by_n in doc["runs"].items():
        for n in sorted(by_n, key=int):
            for r in by_n[n]:
                lines.append(
                    f"- {dep} N={int(n):,}, {r['started']}: {r['machine']}; Prefect "
                    f"{r['prefect']}; {r['inflight']} in flight on {r['workers']} one-slot "
                    f"workers; `{r['command']}`"
                )
    if doc.get("overlapped"):
        lines += [
            "",
            "## Earlier runs that overlapped this session's own smoke tests (not compared)",
            "",
            *table(doc["overlapped"]),
        ]
    notes = doc.get("notes", [])
    if notes:
        lines += ["", "## Notes", "", *notes]
    return "\n".join(lines) + "\n"


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--deployment", required=True, help="label: ephemeral, server-sqlite, ...")
    p.add_argument("--n", type=int, nargs="+", default=[100, 1000], help="task runs per flow run")
    p.add_argument("--inflight", type=int, default=8)
    p.add_argument("--workers", type=int, default=8, help="one-slot Dask worker processes")
    p.add_argument(
        "--prior",
        type=int,
        default=0,
        help="also pass each task the ids of this many finished models (as a training task)",
    )
    p.add_argument(
        "--packed", action="store_true", help="--prior's ids packed (pack_ids), not a list"
    )
    p.add_argument("--json", type=Path, default=HERE / "PREFECT.json")
    p.add_argument("--report-only", action="store_true", help="rewrite the .md from --json")
    args = p.parse_args(argv)
    md_path = args.json.with_suffix(".md")
    doc: dict[str, Any] = {"runs": {}}
    if args.json.exists():
        doc = json.loads(args.json.read_text())
    if args.report_only:
        md_path.write_text(markdown(doc))
        return 0

    from importlib.metadata import version

    import yaml

    from a4nn.config import RunConfig
    from flows.cluster import local_cluster, quiet_dask_logs
    from flows.search_flow import prefect_api

    os.environ.setdefault("DO_NOT_TRACK", "1")
    raw = yaml.safe_load((ROOT / "a4nn/configs/quickstart.yaml").read_text())
    config = RunConfig.model_validate(raw).model_dump(mode="json")
    command = "python benchmarks/scale/prefect_tasks.py " + " ".join(argv or sys.argv[1:])
    ephemeral = args.deployment == "ephemeral"
    if ephemeral and os.environ.get("PREFECT_API_URL"):
        raise SystemExit("--deployment ephemeral needs PREFECT_API_URL unset")
    home = os.environ.get("PREFECT_HOME", "~/.prefect (default)")
    with (
        quiet_dask_logs(),
        contextlib.nullcontext("ephemeral") if ephemeral else prefect_api() as api,
        local_cluster(args.workers, 1, dashboard_address=None) as cluster,
    ):
        own = not ephemeral and not os.environ.get("PREFECT_API_URL")
        api_kind = f"a4nn's own local server (SQLite), {api}" if own else api
        print(f"Prefect API: {api}")
        for n in args.n:
            started = time.strftime("%Y-%m-%d %H:%M:%S")
            mach = machine()
            prior = prior_parameter(args.prior, args.packed)
            got = run_flow(cluster.scheduler_address, n, args.inflight, config, prior)
            s = summary(got)
            print(
                f"{args.deployment} N={n}: steady {s['steady_ms']:.0f} ms/task, last window "
                f"{s['last_window_ms']:.0f}, latency {s['median_latency_ms']:.0f} ms, "
                f"wall {s['wall_s']:.0f} s",
                flush=True,
            )
            rec = {
                "started": started,
                "machine": mach,
                "prefect": version("prefect"),
                "prefect_dask": version("prefect-dask"),
                "distributed": version("distributed"),
                "api": api_kind,
                "prefect_home": home,
                "command": command,
                "inflight": args.inflight,
                "workers": args.workers,
                "prior_ids": args.prior,
                "prior_packed": args.packed,
                "summary": s,
            }
            if args.json.exists():  # re-read: another deployment may have written meanwhile
                doc = json.loads(args.json.read_text())
            doc.setdefault("runs", {}).setdefault(args.deployment, {}).setdefault(
                str(n), []
            ).append(rec)
            args.json.write_text(json.dumps(doc, indent=1))
            md_path.write_text(markdown(doc))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
