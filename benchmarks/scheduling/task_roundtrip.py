"""Round trip of one Prefect task run on a local Dask worker, with and without
`flows/task_settings.py` (the worker validating the flow's settings once).

The same set-up as `a4nn run` on its embedded default: the temporary Prefect API
(`flows/ephemeral_api.py`, one-certificate CA bundle), a local cluster from
`flows/cluster.py`, `prefect_dask.DaskTaskRunner` by address. Each flow run submits
trivial task runs one after another (the quickstart's config dict as a parameter, like
a training task) and times each from submit to result. Two one-worker clusters take
turns, flow run by flow run: one worker keeps Prefect's settings rebuild, the other
installs the cache in its first task run. The first 3 task runs of every flow run are
left out (cold paths).

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


def _noop(i: int, config: dict[str, Any], install: bool) -> float:
    if install:
        from flows import task_settings

        task_settings.install()
    return time.perf_counter()


def time_flow(address: str, n: int, install: bool, config: dict[str, Any]) -> list[float]:
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
                fut = noop.submit(i, config, install)
            fut.result()
            out.append(time.perf_counter() - t0)
        return out

    return many()


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--tasks", type=int, default=40, help="task runs per flow run")
    p.add_argument("--repeats", type=int, default=3, help="flow runs per variant")
    p.add_argument("--out", type=Path, required=True)
    args = p.parse_args(argv)

    import yaml

    from a4nn.config import RunConfig
    from flows import ephemeral_api
    from flows.cluster import local_cluster

    os.environ.setdefault("DO_NOT_TRACK", "1")
    api = ephemeral_api.EphemeralAPI().start()
    url = api.wait_ready(90)
    home = Path(os.environ.get("PREFECT_HOME", Path.home() / ".prefect"))
    home.mkdir(parents=True, exist_ok=True)
    env = {
        "PREFECT_API_URL": url,
        "PREFECT_API_SSL_CERT_FILE": ephemeral_api.loopback_ca_file(home),
    }
    os.environ.update(env)
    raw = yaml.safe_load((ROOT / "a4nn/configs/quickstart.yaml").read_text())
    config = RunConfig.model_validate(raw).model_dump(mode="json")

    times: dict[str, list[float]] = {"prefect": [], "settings cached": []}
    try:
        with (
            local_cluster(1, 1, dashboard_address=None, extra_env=env) as plain,
            local_cluster(1, 1, dashboard_address=None, extra_env=env) as cached,
        ):
            for rep in range(args.repeats):
                for name, cluster in (("prefect", plain), ("settings cached", cached)):
                    got = time_flow(
                        cluster.scheduler_address, args.tasks, name != "prefect", config
                    )
                    times[name] += got[WARM:]
                    print(
                        f"repeat {rep} {name}: median {statistics.median(got[WARM:]) * 1e3:.1f} ms"
                    )
    finally:
        api.stop()

    med = {k: statistics.median(v) * 1e3 for k, v in times.items()}
    result = {
        "machine": f"{platform.node()} ({os.cpu_count()} cores, Python {platform.python_version()})",
        "command": "python benchmarks/scheduling/task_roundtrip.py "
        + " ".join(argv or sys.argv[1:]),
        "tasks_per_flow_run": args.tasks,
        "repeats": args.repeats,
        "left_out_per_flow_run": WARM,
        "median_ms": med,
        "ratio_cached_to_prefect": med["settings cached"] / med["prefect"],
        "seconds": times,
    }
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / "task_roundtrip.json").write_text(json.dumps(result, indent=1))
    lines = [
        "### Prefect task run round trip on a local Dask worker",
        "",
        f"- machine: {result['machine']}",
        f"- command: `{result['command']}`",
        f"- {args.repeats} flow runs per variant, taking turns, {args.tasks} task runs each "
        f"(first {WARM} of each left out)",
        "",
        "| worker | median submit -> result (ms) |",
        "|---|---:|",
        *(f"| {k} | {v:.1f} |" for k, v in med.items()),
        "",
        f"Ratio, settings cached / Prefect's rebuild: **{result['ratio_cached_to_prefect']:.2f}**.",
    ]
    (args.out / "task_roundtrip.md").write_text("\n".join(lines) + "\n")
    print("\n".join(lines))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
