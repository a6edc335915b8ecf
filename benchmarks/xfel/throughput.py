"""Throughput of the XFEL simulator at the default 127×127 detector.

Times, separately, the one-off precompute (reading both PDB files and the exact 3D
intensity of each conformation) and the per-image work of ``simulate_dataset`` (random
orientation, Ewald-sphere slice, Poisson noise, float32 TIFF write, angles and metadata),
as medians over repeats. Wall-clock rates depend on what else runs on the machine, so the
process CPU time is recorded too (``images_per_cpu_s``: what one otherwise idle core
gives, since the per-image work is single-threaded).

    .venv/bin/python benchmarks/xfel/throughput.py [--images 1000 --repeats 3]

Writes ``benchmarks/xfel/throughput.json`` and prints a summary.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import tempfile
import time
from pathlib import Path

from a4nn.data import xfel
from a4nn.data.pdb import read_pdb
from a4nn.data.xfel import Detector, XFELSimulator, default_pdb_files, write_dataset


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--images", type=int, default=1000)
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--intensity", type=float, default=1e15)
    ap.add_argument("--out", type=Path, default=Path(__file__).with_name("throughput.json"))
    args = ap.parse_args()

    precompute, rates, precompute_cpu, cpu_rates = [], [], [], []
    for rep in range(args.repeats):
        xfel._VOLUME_CACHE.clear()  # time the real precompute, not the in-process cache
        t0, c0 = time.perf_counter(), time.process_time()
        structures = [read_pdb(p) for p in default_pdb_files()]
        sim = XFELSimulator(structures, Detector())
        precompute.append(time.perf_counter() - t0)
        precompute_cpu.append(time.process_time() - c0)
        n_test = args.images // 5
        with tempfile.TemporaryDirectory() as tmp:
            t0, c0 = time.perf_counter(), time.process_time()
            write_dataset(sim, Path(tmp), args.intensity, args.images - n_test, n_test, rep)
            rates.append(args.images / (time.perf_counter() - t0))
            cpu_rates.append(args.images / (time.process_time() - c0))
        print(
            f"repeat {rep}: precompute {precompute[-1]:.2f} s ({precompute_cpu[-1]:.2f} CPU s), "
            f"{rates[-1]:.0f} images/s ({cpu_rates[-1]:.0f} per CPU s)",
            flush=True,
        )

    result = {
        "command": f"python benchmarks/xfel/throughput.py --images {args.images} "
        f"--repeats {args.repeats} --intensity {args.intensity:g}",
        "machine": f"{platform.machine()}, {os.cpu_count()} CPUs, Python "
        f"{platform.python_version()}",
        "detector_pixels": Detector().pixels,
        "grid_n": sim.volumes[0].n,
        "precompute_s_median": statistics.median(precompute),
        "images_per_s_median": statistics.median(rates),
        "precompute_cpu_s_median": statistics.median(precompute_cpu),
        "images_per_cpu_s_median": statistics.median(cpu_rates),
        "load_average_1min_at_end": os.getloadavg()[0],
        "precompute_s": precompute,
        "images_per_s": rates,
        "precompute_cpu_s": precompute_cpu,
        "images_per_cpu_s": cpu_rates,
    }
    args.out.write_text(json.dumps(result, indent=2) + "\n")
    print(
        f"precompute (2 conformations, grid {result['grid_n']}^3): "
        f"{result['precompute_s_median']:.2f} s median; "
        f"{result['images_per_s_median']:.0f} images/s median (target >= 100); CPU time: "
        f"{result['precompute_cpu_s_median']:.2f} s precompute, "
        f"{result['images_per_cpu_s_median']:.0f} images per CPU second"
    )


if __name__ == "__main__":
    main()
