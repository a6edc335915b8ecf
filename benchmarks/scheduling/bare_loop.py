"""The overhead baseline: a bare Python loop that runs the same search with nothing around it.

No Prefect, no Dask, no lineage (no run directory, no checkpoints, no tables): the adapter
proposes, each model is built and trained with the same seeds, optimizer, schedule and
engine as `a4nn.train.train_candidate`, and the adapter is told. What it trained (epochs
and validation accuracies per model) is written to OUT_JSON so that `overhead.py` can
check the flow trained exactly the same models.

    python benchmarks/scheduling/bare_loop.py CONFIG OUT_JSON [--threads N]
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import torch

from a4nn.config import RunConfig, load_config
from a4nn.dataset import prepare_data
from a4nn.search import make_engine
from a4nn.train import (
    TensorData,
    _make_optimizer,
    _make_scheduler,
    _train_epoch,
    evaluate,
    model_seed,
    pick_device,
)
from a4nn.types import Candidate, Result
from engine.engine import Engine


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("config")
    p.add_argument("out_json")
    p.add_argument("--threads", type=int, default=0, help="torch threads (0: torch's default)")
    args = p.parse_args(argv)
    t0 = time.perf_counter()
    cfg = load_config(args.config)
    if args.threads:
        torch.set_num_threads(args.threads)
    arrays = prepare_data(cfg.data, progress=False, seed=cfg.seed)
    data = TensorData.from_arrays(arrays.x_train, arrays.y_train, arrays.x_val, arrays.y_val)
    device = pick_device(cfg.train.device)
    engine = make_engine(cfg)
    adapter = cfg.create_adapter()
    trained: dict[int, list[float]] = {}
    train_seconds: dict[int, float] = {}  # the epochs loop, as train_candidate times it
    while not adapter.done():
        cands = adapter.ask()
        if not cands:
            break
        results = []
        for cand in cands:
            res, vals, seconds = train_bare(cfg, cand, data, device, engine)
            trained[cand.model_id] = vals
            train_seconds[cand.model_id] = seconds
            results.append(res)
        adapter.tell(results)
    wall = time.perf_counter() - t0
    Path(args.out_json).write_text(
        json.dumps({"wall_seconds": wall, "val_acc": trained, "train_seconds": train_seconds})
    )
    return 0


def train_bare(
    cfg: RunConfig, cand: Candidate, data: TensorData, device: torch.device, engine: Engine
) -> tuple[Result, list[float], float]:
    """One candidate as `train_candidate` trains it, with nothing recorded.

    Returns its result, its validation accuracy per epoch, and the seconds of its epoch
    loop (`train_candidate`'s `train_seconds` also covers its last checkpoint flush, its
    final table write and `engine.finish`: a few milliseconds).
    """
    seed = model_seed(cfg.seed, cand.model_id)
    torch.manual_seed(seed)
    space = cfg.create_space()
    model = space.build(cand.arch, data.image_shape, data.num_classes)
    mflops, params = space.cost(cand.arch, data.image_shape, data.num_classes, model=model)
    model.to(device)
    opt = _make_optimizer(cfg, model)
    sched = _make_scheduler(cfg, opt)
    tracker = engine.start(cand.model_id)
    gen = torch.Generator().manual_seed(seed)
    vals: list[float] = []
    t_start = time.perf_counter()
    for epoch in range(cfg.train.epochs):
        gen.manual_seed(seed + epoch)
        _train_epoch(model, opt, data, cfg.train.batch_size, gen, device)
        sched.step()
        _, val_acc = evaluate(model, data.x_val, data.y_val, cfg.train.batch_size, device)
        vals.append(float(val_acc))
        if tracker.observe(epoch, val_acc).converged:
            break
    seconds = time.perf_counter() - t_start
    engine.finish(tracker)
    status = "converged" if tracker.converged else "budget"
    res = Result(cand.model_id, float(tracker.fitness()), mflops, params, len(vals), status)
    return res, vals, seconds


if __name__ == "__main__":
    sys.exit(main())
