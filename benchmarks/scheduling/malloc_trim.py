"""Training speed in a Dask worker, with and without Dask's malloc trimming undone.

Trains the same quickstart network (32x32 simulated XFEL images, channels 8/16/32, seed 0)
for a few epochs in three places, each a fresh process:

- `plain`: a plain Python process (what the bare loop and `runner: plain` do);
- `dask`: a Dask `LocalCluster` worker as Dask starts it (`MALLOC_TRIM_THRESHOLD_=65536`
  from `distributed.nanny.pre-spawn-environ`);
- `dask+relaxed`: the same worker after `flows.allocator.relax_malloc_trim()`, which the
  worker cache calls before a worker trains anything.

Reports the median seconds per epoch over `--repeats` interleaved rounds, for 1 and 2
torch threads.

    python benchmarks/scheduling/malloc_trim.py --out benchmarks/scheduling
"""

from __future__ import annotations

import argparse
import json
import multiprocessing as mp
import os
import platform
import statistics
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT))
GENOME = [[1, 1, 0, 0, 1, 1, 0], [1, 1, 1, 0, 0, 1, 0], [1, 0, 0, 0, 0, 0, 0]]


def epoch_seconds(threads: int, epochs: int, relax: bool = False) -> list[float]:
    """Train the benchmark network; seconds per epoch (training + validation)."""
    import torch

    from a4nn.config import load_config
    from a4nn.dataset import prepare_data
    from a4nn.train import (
        TensorData,
        _make_optimizer,
        _make_scheduler,
        _train_epoch,
        build_candidate_model,
        evaluate,
    )
    from flows.allocator import relax_malloc_trim

    if relax:
        relax_malloc_trim()
    torch.set_num_threads(threads)
    cfg = load_config(ROOT / "a4nn/configs/quickstart.yaml", base=ROOT)
    arrays = prepare_data(cfg.data, progress=False, seed=cfg.seed)
    data = TensorData.from_arrays(arrays.x_train, arrays.y_train, arrays.x_val, arrays.y_val)
    torch.manual_seed(0)
    model = build_candidate_model(cfg, GENOME, data)
    opt = _make_optimizer(cfg, model)
    sched = _make_scheduler(cfg, opt)
    gen, cpu = torch.Generator().manual_seed(0), torch.device("cpu")
    out = []
    for _ in range(epochs):
        t0 = time.perf_counter()
        _train_epoch(model, opt, data, cfg.train.batch_size, gen, cpu)
        sched.step()
        evaluate(model, data.x_val, data.y_val, cfg.train.batch_size, cpu)
        out.append(time.perf_counter() - t0)
    return out


def _plain(threads: int, epochs: int, q: mp.Queue) -> None:
    q.put(epoch_seconds(threads, epochs))


def in_plain_process(threads: int, epochs: int) -> list[float]:
    # a LocalCluster leaves MALLOC_TRIM_THRESHOLD_ in this process's environment (Dask
    # sets it before spawning workers); a plain process must not inherit it
    os.environ.pop("MALLOC_TRIM_THRESHOLD_", None)
    ctx = mp.get_context("spawn")
    q = ctx.Queue()
    p = ctx.Process(target=_plain, args=(threads, epochs, q))
    p.start()
    res = q.get()
    p.join()
    return res


def in_dask_worker(threads: int, epochs: int, relax: bool) -> list[float]:
    from distributed import Client, LocalCluster

    with (
        LocalCluster(n_workers=1, threads_per_worker=threads, dashboard_address=":0") as cluster,
        Client(cluster) as client,
    ):
        return client.submit(epoch_seconds, threads, epochs, relax, pure=False).result()


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--epochs", type=int, default=4)
    p.add_argument("--repeats", type=int, default=3)
    p.add_argument("--out")
    args = p.parse_args(argv)
    from a4nn.config import load_config
    from a4nn.dataset import ensure_xfel

    ensure_xfel(load_config(ROOT / "a4nn/configs/quickstart.yaml", base=ROOT).data)
    places = {
        "plain": lambda t: in_plain_process(t, args.epochs),
        "dask": lambda t: in_dask_worker(t, args.epochs, relax=False),
        "dask+relaxed": lambda t: in_dask_worker(t, args.epochs, relax=True),
    }
    samples: dict[str, list[float]] = {}
    for rep in range(args.repeats):
        for threads in (1, 2):
            for name, run in places.items():
                secs = run(threads)[1:]  # the first epoch warms caches up
                samples.setdefault(f"{name}/{threads}", []).extend(secs)
                print(
                    f"round {rep} {name} threads={threads}: {statistics.median(secs):.2f} s/epoch"
                )
    med = {k: statistics.median(v) for k, v in samples.items()}
    result = {
        "machine": f"{platform.node()}, {os.cpu_count()} cores, Python {platform.python_version()}",
        "command": "python benchmarks/scheduling/malloc_trim.py " + " ".join(argv or sys.argv[1:]),
        "median_epoch_seconds": med,
        "samples": samples,
    }
    rows = "".join(
        f"| {t} | {med[f'plain/{t}']:.2f} | {med[f'dask/{t}']:.2f} | {med[f'dask+relaxed/{t}']:.2f} "
        f"| {med[f'dask/{t}'] / med[f'plain/{t}']:.2f}x | "
        f"{med[f'dask+relaxed/{t}'] / med[f'plain/{t}']:.2f}x |\n"
        for t in (1, 2)
    )
    md = (
        f"### Seconds per epoch of a quickstart model, plain process vs Dask worker "
        f"({result['machine']})\n\n- command: `{result['command']}`\n\n"
        "| torch threads | plain | Dask worker | Dask worker, trim relaxed "
        "| Dask / plain | relaxed / plain |\n|---:|---:|---:|---:|---:|---:|\n"
        + rows
        + f"\nMedians over {args.repeats} interleaved rounds x {args.epochs - 1} epochs "
        "(the first epoch of each run is left out).\n"
    )
    print(md)
    if args.out:
        (Path(args.out) / "malloc_trim.json").write_text(json.dumps(result, indent=2))
        (Path(args.out) / "malloc_trim.md").write_text(md)
    return 0


if __name__ == "__main__":
    sys.exit(main())
