"""Issue 22: does the engine's per-call cost stay flat as the prior's pool grows?

Fills a `default` engine's previous-builds pool with N finished curves (bootstrapped from the
published 1e15 set: a random model's curve plus small noise, so that no two are equal), then
times `Tracker.observe` over 50 further models, each replayed in full (stopped or not),
and reports the median milliseconds per call. The pool is taught with `Engine.learn_curve`
(as a resumed run or another worker's models would be); the time to teach it is reported too.

    python benchmarks/engine/engine_pool.py [--sizes 100 1000 5000 10000 20000]

Writes ENGINE_POOL.md and ENGINE_POOL.json beside this file.
"""

from __future__ import annotations

import argparse
import json
import platform
import statistics
import sys
import time
from pathlib import Path

import numpy as np

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
sys.path.insert(0, str(HERE.parents[1]))

from curve_sets import DATA  # noqa: E402

from engine import Engine, read_curves  # noqa: E402

PROBES = 50


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--sizes", type=int, nargs="+", default=[100, 1000, 5000, 10000, 20000])
    ap.add_argument("--preset", default="default")
    args = ap.parse_args()
    base = read_curves(DATA / "a4nn-icpp23" / "1gpu_1e15_training_data.csv")
    curves = [np.array(base.curve(k)[1], float) for k in base.models()]
    feats = [np.array(base.features[k], float) for k in base.models()]
    rng = np.random.default_rng(0)
    rows = []
    for n in args.sizes:
        eng = Engine.from_preset(args.preset)
        t0 = time.perf_counter()
        for _ in range(n):
            i = int(rng.integers(len(curves)))
            y = np.clip(curves[i] + rng.normal(0, 0.02, len(curves[i])), 0, 100)
            eng.learn_curve(range(len(y)), y, features=feats[i])
        teach = time.perf_counter() - t0
        calls = []
        stops = 0
        for j in range(PROBES):
            i = j % len(curves)
            tr = eng.start(("probe", j), features=feats[i])
            for e, v in enumerate(curves[i]):
                t1 = time.perf_counter()
                d = tr.observe(e, float(v))
                calls.append(time.perf_counter() - t1)
                if d.converged:
                    stops += 1
                    break
        ms = 1000 * statistics.median(calls)
        rows.append(
            {
                "pool": n,
                "ms_per_call_median": ms,
                "ms_per_call_p90": 1000 * float(np.percentile(calls, 90)),
                "calls": len(calls),
                "probes_stopped": stops,
                "teach_ms_per_curve": 1000 * teach / n,
            }
        )
        print(json.dumps(rows[-1]), flush=True)
    cmd = "python benchmarks/engine/engine_pool.py --sizes " + " ".join(map(str, args.sizes))
    out = {
        "command": cmd,
        "preset": args.preset,
        "machine": f"{platform.node()} {platform.machine()}, Python {platform.python_version()}",
        "rows": rows,
    }
    (HERE / "ENGINE_POOL.json").write_text(json.dumps(out, indent=2) + "\n")
    lines = [
        "# Engine cost against the size of the prior's pool (issue 22)",
        "",
        f"Command: `{cmd}` on {out['machine']} (2 cores shared with other work: timings are "
        "indicative). Preset `" + args.preset + "`; the pool holds N curves bootstrapped from "
        f"the published 1e15 set; {PROBES} further models are replayed through `observe`.",
        "",
        "| pool (curves) | ms per call, median | p90 | calls | probes stopped | "
        "teach ms per curve |",
        "|---:|---:|---:|---:|---:|---:|",
    ]
    for r in rows:
        lines.append(
            f"| {r['pool']:,} | {r['ms_per_call_median']:.3f} | {r['ms_per_call_p90']:.3f} | "
            f"{r['calls']} | {r['probes_stopped']} | {r['teach_ms_per_curve']:.2f} |"
        )
    (HERE / "ENGINE_POOL.md").write_text("\n".join(lines) + "\n")
    print("\n".join(lines))
    return 0


if __name__ == "__main__":
    sys.exit(main())
