"""Epoch-loop speed of the same models where a4nn trains them, interleaved in one run.

`overhead.py` compares whole processes one after another, so a machine whose speed
drifts (this VM: the same bare loop took 149 to 229 s) blurs how fast the flow's epoch
loops themselves run. Here every model of the quickstart's first generation is trained
once per variant, the variants taking turns model by model (the order rotates), so
drift falls on all of them alike:

- `bare`: the bare loop's training (`bare_loop.train_bare`), nothing recorded;
- `plain`: `a4nn.train.train_candidate` in this process: run directory, per-epoch
  records and checkpoints (what `orchestration.runner: plain` does);
- `dask`: the flow's training function (`flows.search_flow.train_on_worker`: worker
  cache, engine feed, progress events, lineage) as a plain Dask task on one local
  worker with one thread (`flows.cluster.local_cluster`);
- `prefect`: the same inside a Prefect task run (`flows.search_flow.train_model`) on
  that worker, from a flow on a `DaskTaskRunner`, against a temporary Prefect API.

Each variant's epoch-loop seconds (as `train_candidate` times them) are divided by
`bare`'s for the same model; the result is the median of those ratios. All variants
must reach the same validation accuracies, epoch by epoch.

    python benchmarks/scheduling/training_speed.py --out benchmarks/scheduling
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
ROOT = HERE.parents[1]
sys.path[:0] = [str(ROOT), str(HERE)]

VARIANTS = ("bare", "plain", "dask", "prefect")


def train_on_dask(address: str, variant: str, job: dict[str, Any]) -> dict[str, Any]:
    """The flow body: train one model as a plain Dask task or as a Prefect task run."""
    from distributed import Client

    from flows.search_flow import train_model, train_on_worker

    args = (job["candidate"], job["config"], job["run_dir"], [])
    if variant == "dask":
        with Client(address, set_as_default=False) as client:
            return client.submit(train_on_worker, *args, pure=False).result()
    return train_model.submit(job["model_id"], *args).result()


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--config", default=str(ROOT / "a4nn/configs/quickstart.yaml"))
    p.add_argument("--epochs", type=int, default=0, help="override train.epochs (0: keep)")
    p.add_argument("--out", help="folder for training_speed.json / .md")
    args = p.parse_args(argv)
    os.environ.setdefault("DO_NOT_TRACK", "1")
    from flows.search_flow import prefect_api

    # PREFECT_API_URL, else Prefect's temporary server (as `a4nn run` does)
    with prefect_api() as url:
        return measure(args, argv, url)


def measure(args: argparse.Namespace, argv: list[str] | None, url: str) -> int:
    """Train every model in every variant, then write and print the results."""
    import torch
    from bare_loop import train_bare

    from a4nn.config import load_config
    from a4nn.dataset import ensure_xfel, prepare_data
    from a4nn.search import make_engine
    from a4nn.train import TensorData, pick_device, train_candidate
    from lineage.run_dir import RunDir

    cfg = load_config(args.config, base=ROOT)
    cfg.data.cache_dir = ROOT / "data"
    if args.epochs:
        cfg.train.epochs = args.epochs
    cfg.train.threads = 1
    cfg.orchestration.n_workers, cfg.orchestration.threads_per_worker = 1, 1
    ensure_xfel(cfg.data, progress=True)
    torch.set_num_threads(1)
    arrays = prepare_data(cfg.data, progress=False, seed=cfg.seed)
    data = TensorData.from_arrays(arrays.x_train, arrays.y_train, arrays.x_val, arrays.y_val)
    device = pick_device(cfg.train.device)
    cands = cfg.create_adapter().ask()
    config = cfg.model_dump(mode="json")

    from distributed import Client
    from prefect import flow
    from prefect_dask import DaskTaskRunner

    from flows.cluster import local_cluster
    from flows.search_flow import train_on_worker

    seconds: dict[str, dict[int, float]] = {v: {} for v in VARIANTS}
    accs: dict[str, dict[int, list[float]]] = {v: {} for v in VARIANTS}
    t_all = time.perf_counter()
    with (
        tempfile.TemporaryDirectory() as tmp,
        local_cluster(1, 1, extra_env={"PREFECT_API_URL": url}) as cluster,
        Client(cluster, set_as_default=False) as client,
    ):
        runs = {v: RunDir.create(Path(tmp) / v, "", {}) for v in VARIANTS[1:]}
        warm = RunDir.create(Path(tmp) / "warm", "", {})  # first task: imports and data
        client.submit(
            train_on_worker,
            cands[0].to_dict(),
            {**config, "train": {**config["train"], "epochs": 1}},
            str(warm.root),
            [],
        ).result()
        remote = flow(name="training-speed")(train_on_dask).with_options(
            task_runner=DaskTaskRunner(address=cluster.scheduler_address)
        )
        for i, cand in enumerate(cands):
            order = VARIANTS[i % 4 :] + VARIANTS[: i % 4]
            for variant in order:
                mid = cand.model_id
                if variant == "bare":
                    _, vals, secs = train_bare(cfg, cand, data, device, make_engine(cfg))
                elif variant == "plain":
                    res = train_candidate(cand, cfg, data, runs["plain"], make_engine(cfg))
                    secs = res.train_seconds
                    vals = [float(r["val_acc"]) for r in runs["plain"].model(mid).read_epochs()]
                else:
                    job = {
                        "model_id": mid,
                        "candidate": cand.to_dict(),
                        "config": config,
                        "run_dir": str(runs[variant].root),
                    }
                    res = remote(cluster.scheduler_address, variant, job)
                    secs = float(res["train_seconds"])
                    vals = [float(r["val_acc"]) for r in runs[variant].model(mid).read_epochs()]
                seconds[variant][mid], accs[variant][mid] = secs, vals
            print(
                f"model {cand.model_id}: "
                + ", ".join(f"{v} {seconds[v][cand.model_id]:.2f} s" for v in VARIANTS),
                flush=True,
            )
    same = all(
        len(accs[v][m]) == len(accs["bare"][m])
        and all(abs(a - b) < 1e-6 for a, b in zip(accs[v][m], accs["bare"][m], strict=True))
        for v in VARIANTS
        for m in accs["bare"]
    )
    ratios = {
        v: statistics.median(seconds[v][m] / seconds["bare"][m] for m in seconds["bare"])
        for v in VARIANTS
    }
    result = {
        "machine": f"{platform.node()}, {os.cpu_count()} cores, Python {platform.python_version()}",
        "command": "python benchmarks/scheduling/training_speed.py "
        + " ".join(argv or sys.argv[1:]),
        "config": Path(args.config).name,
        "epochs": cfg.train.epochs,
        "models": len(cands),
        "seconds": {v: {str(m): s for m, s in seconds[v].items()} for v in VARIANTS},
        "median_ratio_to_bare": ratios,
        "total_seconds": {v: sum(seconds[v].values()) for v in VARIANTS},
        "same_training": same,
        "wall_seconds": time.perf_counter() - t_all,
    }
    md = render(result)
    print(md)
    if args.out:
        out = Path(args.out)
        out.mkdir(parents=True, exist_ok=True)
        (out / "training_speed.json").write_text(json.dumps(result, indent=2) + "\n")
        (out / "training_speed.md").write_text(md)
    return 0 if same else 1


def render(r: dict[str, Any]) -> str:
    models = list(r["seconds"]["bare"])
    head = "| model | " + " | ".join(f"{v} (s)" for v in VARIANTS) + " |"
    lines = [
        f"### Epoch-loop speed by where the model trains ({r['machine']})",
        "",
        f"- command: `{r['command']}`",
        f"- {r['models']} models x {r['epochs']} epochs of `{r['config']}`, one torch "
        "thread everywhere, variants interleaved model by model",
        "",
        head,
        "|---|" + "---:|" * len(VARIANTS),
    ]
    for m in models:
        cells = " | ".join(f"{r['seconds'][v][m]:.2f}" for v in VARIANTS)
        lines.append(f"| {m} | {cells} |")
    totals = " | ".join(f"{r['total_seconds'][v]:.1f}" for v in VARIANTS)
    ratios = " | ".join(f"{r['median_ratio_to_bare'][v]:.3f}" for v in VARIANTS)
    lines += [f"| total | {totals} |", f"| median ratio to bare | {ratios} |", ""]
    lines.append(
        f"Same validation accuracies, epoch by epoch, in every variant: {r['same_training']}."
    )
    return "\n".join(lines) + "\n"


if __name__ == "__main__":
    sys.exit(main())
