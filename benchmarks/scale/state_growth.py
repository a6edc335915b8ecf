"""Issue 22: what in the driver's per-model work grows with the number of models.

Drives the real NSGA-Net adapter (steady state, pop_size = n_offspring = 100, 100
generations: 10,000 models) with 256 candidates in flight and made-up results (no
training, no engine), and at each mark times, once, what the session does per model
with the state it then holds:

- `adapter.ask(1)` and `tell` (mean over the models since the previous mark);
- `adapter.state_dict()`, `lineage.adapter_state.split_arrays` (the walk looking for
  arrays), the JSON encoding `atomic_write_json` does (indent=2, sort_keys), and the
  whole `RunDir.save_adapter_state` (encode, write, fsync, rename) - called 3 times per
  model in steady state (after the tell, and twice by `save_inflight`);
- `RunDir.update_meta(completion_order=..., in_flight=...)` with the run so far: run.json
  rewritten - also 3 times per model (`record`, and twice by `save_inflight`), and
  `Candidate.to_dict()` of the 256 in flight (twice per model, by `save_inflight`).

    python benchmarks/scale/state_growth.py --tag state_growth
"""

from __future__ import annotations

import argparse
import json
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
from lineage.adapter_state import split_arrays  # noqa: E402
from lineage.run_dir import RunDir  # noqa: E402


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
    work = Path(tempfile.mkdtemp(prefix="a4nn-state-"))
    run = RunDir.create(work / "run", "", {"name": "state-growth"})
    rng = np.random.default_rng(0)
    inflight: list = []
    order: list[int] = []
    t_ask = t_tell = 0.0
    since = 0
    rows = []
    try:
        while not adapter.done():
            while len(inflight) < args.inflight and len(adapter._cands) < adapter.budget:
                ms, got = timed(adapter.ask, 1)
                t_ask += ms
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
            t_tell += ms
            order.append(cand.model_id)
            n = len(order)
            if n not in args.marks:
                continue
            ms_sd, state = timed(adapter.state_dict)
            ms_walk, _ = timed(split_arrays, state)
            ms_enc, text = timed(json.dumps, state, indent=2, sort_keys=True, default=str)
            ms_save, _ = timed(run.save_adapter_state, state)
            ms_dicts, dicts = timed(lambda cands: [c.to_dict() for c in cands], inflight)
            ms_meta, _ = timed(run.update_meta, completion_order=order, in_flight=dicts)
            row = {
                "models": n,
                "ask_ms": t_ask / max(1, n - since),
                "tell_ms": t_tell / max(1, n - since),
                "state_dict_ms": ms_sd,
                "split_arrays_ms": ms_walk,
                "json_encode_ms": ms_enc,
                "save_adapter_state_ms": ms_save,
                "state_mb": len(text) / 1e6,
                "inflight_to_dict_ms": ms_dicts,
                "run_json_update_ms": ms_meta,
                "run_json_kb": (run.run_json.stat().st_size) / 1e3,
            }
            row["per_model_state_ms"] = 3 * (ms_sd + ms_save)
            row["per_model_run_json_ms"] = 3 * ms_meta + 2 * ms_dicts
            rows.append(row)
            print(json.dumps(row), flush=True)
            t_ask = t_tell = 0.0
            since = n
    finally:
        shutil.rmtree(work, ignore_errors=True)
    command = "python benchmarks/scale/state_growth.py " + " ".join(argv or sys.argv[1:])
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    doc = {"command": command, "inflight": args.inflight, "rows": rows}
    (out / f"{args.tag}.json").write_text(json.dumps(doc, indent=2) + "\n")
    cols = [k for k in rows[0] if k != "models"]
    md = [
        f"### Per-model driver work vs models told (NSGA-Net steady state, {args.inflight} in "
        "flight)",
        "",
        f"- command: `{command}`",
        "",
        "| models | " + " | ".join(cols) + " |",
        "|---:|" + "---:|" * len(cols),
    ]
    md += [f"| {r['models']} | " + " | ".join(f"{r[c]:.1f}" for c in cols) + " |" for r in rows]
    (out / f"{args.tag}.md").write_text("\n".join(md) + "\n")
    print("\n".join(md))
    return 0


if __name__ == "__main__":
    sys.exit(main())
