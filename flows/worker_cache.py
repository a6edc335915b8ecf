"""What a Dask worker process keeps between training tasks: the data and the engine.

Loading (or simulating) the dataset and moving it into tensors costs seconds; a search
trains hundreds of models. Each worker process therefore loads the data once per run
configuration and keeps it, with the run's engine, in a module-level cache (one entry:
a worker serves one search at a time). Nothing here is Prefect-specific.

Engine priors: an engine that learns from finished models ("previous builds") must see
the same finished models whichever worker trains the next one. The driver passes the
ids of the models finished so far (`prior_ids`, completion order); the worker feeds any
it has not fed yet from their `models/<id>/epochs.csv` and trains on a copy, so what a
model's engine knew depends only on `prior_ids`, never on which worker it landed on.
The paper's engine learns nothing across models, so none of this runs for it.
"""

from __future__ import annotations

import copy
import hashlib
import json
import os
import threading
from dataclasses import dataclass, field
from typing import Any

from a4nn.config import RunConfig
from lineage.run_dir import RunDir

_lock = threading.Lock()
_cache: dict[str, WorkerContext] = {}
_loads = 0


@dataclass
class WorkerContext:
    """One run configuration's data and engine, as loaded in this worker process."""

    key: str
    cfg: RunConfig
    data: Any  # a4nn.train.TensorData
    engine: Any  # engine.Engine
    fed: list[int] = field(default_factory=list)

    def engine_for(self, run: RunDir, prior_ids: list[int]) -> Any:
        """The engine to train the next model with, having learned from `prior_ids`."""
        if not engine_learns(self.engine):
            return self.engine
        if self.fed != list(prior_ids[: len(self.fed)]):
            from a4nn.search import make_engine

            self.engine, self.fed = make_engine(self.cfg), []
        for mid in prior_ids[len(self.fed) :]:
            feed_finished_model(self.engine, run, mid)
            self.fed.append(mid)
        return copy.deepcopy(self.engine)


def engine_learns(engine: Any) -> bool:
    """Whether `engine.finish` teaches the engine anything (the paper's method: no)."""
    method = getattr(getattr(engine, "config", None), "method", "paper")
    return method not in ("paper", "off")


def feed_finished_model(engine: Any, run: RunDir, model_id: int) -> None:
    """Replay one finished model's recorded curve into `engine` (skips failed models)."""
    md = run.model(model_id)
    res = md.result()
    if res is None or res.failed:
        return
    tracker = engine.start(model_id)
    for row in md.read_epochs():
        tracker.observe(int(row["epoch"]), float(row["val_acc"]))
    engine.finish(tracker)


def config_key(config: dict[str, Any]) -> str:
    """Stable digest of a run configuration (JSON form)."""
    blob = json.dumps(config, sort_keys=True, default=str).encode()
    return hashlib.sha256(blob).hexdigest()[:16]


def _torch_threads(cfg: RunConfig) -> int:
    """Threads for torch here: the config's, else the Dask worker's thread count.

    A worker holds one GPU slot, so it trains one model at a time with all its threads
    (Dask's nannies export OMP_NUM_THREADS=1, which torch would otherwise follow).
    """
    if cfg.train.threads:
        return cfg.train.threads
    try:
        from distributed import get_worker

        return max(1, int(get_worker().state.nthreads))
    except (ImportError, ValueError):
        return max(1, int(os.environ.get("OMP_NUM_THREADS", "1") or 1))


def get_context(config: dict[str, Any]) -> WorkerContext:
    """This process's context for `config`, loading data and engine on first use."""
    global _loads
    key = config_key(config)
    with _lock:
        ctx = _cache.get(key)
        if ctx is not None:
            return ctx
        import torch

        from a4nn.dataset import prepare_data
        from a4nn.search import make_engine
        from a4nn.train import TensorData

        cfg = RunConfig.model_validate(config)
        threads = _torch_threads(cfg)
        if threads and torch.get_num_threads() != threads:
            torch.set_num_threads(threads)
        arrays = prepare_data(cfg.data, progress=False, seed=cfg.seed)
        data = TensorData.from_arrays(arrays.x_train, arrays.y_train, arrays.x_val, arrays.y_val)
        ctx = WorkerContext(key, cfg, data, make_engine(cfg))
        _cache.clear()  # one search per worker at a time: free the previous data
        _cache[key] = ctx
        _loads += 1
        return ctx


def cache_info() -> dict[str, Any]:
    """How often this process loaded data (tests check it is once per worker)."""
    return {"pid": os.getpid(), "loads": _loads, "cached": list(_cache)}


def clear() -> None:
    """Forget the cached data (tests; or a worker reused for another dataset)."""
    global _loads
    with _lock:
        _cache.clear()
        _loads = 0
