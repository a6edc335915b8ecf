"""Round trip of one Prefect task run on a local Dask worker.

The same set-up as `a4nn run` on its embedded default: the Prefect API of
`flows.search_flow.prefect_api` (`PREFECT_API_URL`, else Prefect's temporary server), a
local one-worker cluster from `flows/cluster.py`, `prefect_dask.DaskTaskRunner` by
address. Each flow run submits trivial task runs one after another (the quickstart's
config dict as a parameter, like a training task) and times each from submit to result.
The first 3 task runs of every flow run are left out (cold paths).

    python benchmarks/scheduling/task_roundtrip.py --tasks 40 --repeats 3 --out DIR
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import sys
import time
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
ROOT = HERE.parents[1]
sys.path.insert(0, str(ROOT))

WARM = 3


def _noop(i: int, config: dict[str, Any]) -> float:
    return time.perf_counter()


def time_flow(address: str, n: int, config: dict[str, Any]) -> list[float]:
    """Seconds from submit to result for `n` task runs of one flow run."""
    import dask
    from prefect import flow, task
    from prefect.cache_policies import NO_CACHE
    from prefect_dask import DaskTaskRunner

    noop = task(_noop, name="noop", cache_policy=NO_CACHE, persist_result=False)

    @flow(name="task-roundtrip", task_runner=DaskTaskRunner(address=address))
    def many() -> list[float]:
        out = []
        for i in range(n):
            t0 = time.perf_counter()
            with dask.annotate(resources={"GPU": 1}):
                fut = noop.submit(i, config)
            fut.result()
            out.append(time.perf_counter() - t0)
        return out

    return many()


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--tasks", type=int, default=40, help="task runs per flow run")
    p.add_argument("--repeats", type=int, default=3, help="flow runs")
    p.add_argument("--out", type=Path, required=True)
    args = p.parse_args(argv)

    import yaml

    from a4nn.config import RunConfig
    from flows.cluster import local_cluster
    from flows.search_flow import prefect_api

    os.environ.setdefault("DO_NOT_TRACK", "1")
    raw = yaml.safe_load((ROOT / "a4nn/configs/quickstart.yaml").read_text())
    config = RunConfig.model_validate(raw).model_dump(mode="json")

    times: list[float] = []
    with prefect_api(), local_cluster(1, 1, dashboard_address=None) as cluster:
        for rep in range(args.repeats):
            got = time_flow(cluster.scheduler_address, args.tasks, config)[WARM:]
            times += got
            print(f"repeat {rep}: median {statistics.median(got) * 1e3:.1f} ms")

    med = statistics.median(times) * 1e3
    from importlib.metadata import version

    result = {
        "machine": f"{platform.node()} ({os.cpu_count()} cores, Python {platform.python_version()})",
        "prefect": version("prefect"),
        "command": "python benchmarks/scheduling/task_roundtrip.py "
        + " ".join(argv or sys.argv[1:]),
        "tasks_per_flow_run": args.tasks,
        "repeats": args.repeats,
        "left_out_per_flow_run": WARM,
        "median_ms": med,
        "seconds": times,
    }
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / "task_roundtrip.json").write_text(json.dumps(result, indent=1))
    lines = [
        "### Prefect task run round trip on a local Dask worker",
        "",
        f"- machine: {result['machine']}, Prefect {result['prefect']}",
        f"- command: `{result['command']}`",
        f"- {args.repeats} flow runs, {args.tasks} task runs each (first {WARM} of each left out)",
        "",
        f"Median submit -> result: **{med:.1f} ms**.",
    ]
    (args.out / "task_roundtrip.md").write_text("\n".join(lines) + "\n")
    print("\n".join(lines))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
