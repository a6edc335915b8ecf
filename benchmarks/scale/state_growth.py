"""Issue 22: does the driver's per-model work grow with the number of models?

Drives the real NSGA-Net adapter (steady state, pop_size = n_offspring = models / 100,
100 generations: 10,000 models by default) with 256 candidates in flight and made-up
results (no training, no engine), and does per model what the session does
(`a4nn.search.SearchSession`, `a4nn.scheduler.run_steady_state`):

- `adapter.ask(1)` and `tell`;
- `adapter.state_parts()` and `RunDir.save_adapter_state(head, logs)` (the head whole,
  the logs' new items appended; not fsynced), once per model;
- `RunDir.save_in_flight` of the 256 in flight (their dicts made once each) and
  `RunDir.append_completed`, once per model;

each as the mean ms per model over the models since the previous mark. At each mark it
also times, once, what a save cost before `state_parts` (issue 22's fix 1):
`adapter.state_dict()` and `lineage.adapter_state.save_state` (the whole state, fsynced),
and the state's size.

    python benchmarks/scale/state_growth.py --tag state_growth
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import shutil
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT))

from a4nn.registry import create_adapter, create_space  # noqa: E402
from a4nn.types import Result  # noqa: E402
from lineage.adapter_state import save_state  # noqa: E402
from lineage.run_dir import RunDir  # noqa: E402

WINDOW = ("ask", "tell", "state_parts", "state_save", "in_flight", "completed")


def timed(fn, *args, **kwargs) -> tuple[float, object]:
    t0 = time.perf_counter()
    out = fn(*args, **kwargs)
    return 1000.0 * (time.perf_counter() - t0), out


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--models", type=int, default=10_000)
    p.add_argument("--inflight", type=int, default=256)
    p.add_argument("--marks", type=int, nargs="+", default=[100, 1000, 2000, 5000, 10_000])
    p.add_argument("--out", default=str(Path(__file__).parent))
    p.add_argument("--tag", required=True)
    args = p.parse_args(argv)
    gens = 100
    size = args.models // gens
    space = create_space("nsganet-macro", {})
    adapter = create_adapter(
        "nsganet",
        space,
        {"pop_size": size, "n_offspring": size, "n_generations": gens, "mode": "steady_state"},
        0,
    )
    load = os.getloadavg()[0]
    work = Path(tempfile.mkdtemp(prefix="a4nn-state-"))
    run = RunDir.create(work / "run", "", {"name": "state-growth"})
    rng = np.random.default_rng(0)
    inflight: list = []
    dicts: dict[int, dict] = {}
    acc = dict.fromkeys(WINDOW, 0.0)
    since = 0
    told = 0
    rows = []
    try:
        while not adapter.done():
            while len(inflight) < args.inflight and len(adapter._cands) < adapter.budget:
                ms, got = timed(adapter.ask, 1)
                acc["ask"] += ms
                inflight += got
            cand = inflight.pop(0)
            res = Result(
                cand.model_id,
                float(rng.uniform(80, 99)),
                float(rng.uniform(100, 1000)),
                10_000,
                16,
                status="converged",
                last_val_acc=90.0,
                best_val_acc=91.0,
                train_seconds=1000.0,
            )
            ms, _ = timed(adapter.tell, [res])
            acc["tell"] += ms
            told += 1
            ms, _ = timed(run.append_completed, cand.model_id)
            acc["completed"] += ms
            t0 = time.perf_counter()
            dicts = {c.model_id: dicts.get(c.model_id) or c.to_dict() for c in inflight}
            run.save_in_flight(list(dicts.values()))
            acc["in_flight"] += 1000.0 * (time.perf_counter() - t0)
            ms, (head, logs) = timed(adapter.state_parts)
            acc["state_parts"] += ms
            ms, _ = timed(run.save_adapter_state, head, logs)
            acc["state_save"] += ms
            if told not in args.marks:
                continue
            n = told - since
            row = {"models": told, **{f"{k}_ms": v / n for k, v in acc.items()}}
            row["per_model_ms"] = sum(acc.values()) / n
            ms_sd, state = timed(adapter.state_dict)
            ms_whole, _ = timed(save_state, work / "whole.json", state)
            row["whole_state_dict_ms"] = ms_sd
            row["whole_save_ms"] = ms_whole
            row["state_mb"] = len(json.dumps(state, separators=(",", ":"))) / 1e6
            row["head_kb"] = run.adapter_state_path.stat().st_size / 1e3
            row["log_mb"] = (work / "run" / "adapter_state.log.jsonl").stat().st_size / 1e6
            rows.append(row)
            print(json.dumps(row), flush=True)
            acc = dict.fromkeys(WINDOW, 0.0)
            since = told
    finally:
        shutil.rmtree(work, ignore_errors=True)
    command = "python benchmarks/scale/state_growth.py " + " ".join(argv or sys.argv[1:])
    machine = (
        f"{platform.node()}: {os.cpu_count()} cores, Python {platform.python_version()}, "
        f"load {load:.1f} at start"
    )
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    doc = {"command": command, "machine": machine, "inflight": args.inflight, "rows": rows}
    (out / f"{args.tag}.json").write_text(json.dumps(doc, indent=2) + "\n")
    cols = [k for k in rows[0] if k != "models"]
    md = [
        f"### Per-model driver work vs models told (NSGA-Net steady state, {args.inflight} in "
        "flight)",
        "",
        f"- command: `{command}`",
        f"- machine: {machine}",
        "- window columns (`*_ms` up to `per_model_ms`): mean ms per model since the previous "
        "mark; `whole_*`: one save of the whole state as before `state_parts` (fsynced)",
        "",
        "| models | " + " | ".join(cols) + " |",
        "|---:|" + "---:|" * len(cols),
    ]
    md += [f"| {r['models']} | " + " | ".join(f"{r[c]:.2f}" for c in cols) + " |" for r in rows]
    (out / f"{args.tag}.md").write_text("\n".join(md) + "\n")
    print("\n".join(md))
    return 0


if __name__ == "__main__":
    sys.exit(main())
