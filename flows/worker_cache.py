"""What a Dask worker process keeps between training tasks: the data and the engine.

Loading (or simulating) the dataset and moving it into tensors costs seconds; a search
trains hundreds of models. Each worker process therefore loads the data once per run
configuration and keeps it, with the run's engine, in a module-level cache (one entry:
a worker serves one search at a time). Nothing here is Prefect-specific.

Engine priors: an engine that learns from finished models ("previous builds") must see
the same finished models whichever worker trains the next one. The driver passes the
ids of the models finished so far (`prior_ids`, completion order) and the worker's
`a4nn.engine_feed.EngineFeed` teaches its engine those it has not seen yet, so what a
model's engine knew depends only on `prior_ids`, never on which worker it landed on.
"""

from __future__ import annotations

import hashlib
import json
import os
import threading
from dataclasses import dataclass
from typing import Any

from a4nn.config import RunConfig
from a4nn.engine_feed import EngineFeed
from lineage.run_dir import RunDir

_lock = threading.Lock()
_cache: dict[str, WorkerContext] = {}
_loads = 0


@dataclass
class WorkerContext:
    """One run configuration's data and engine feed, as loaded in this worker process."""

    key: str
    cfg: RunConfig
    data: Any  # a4nn.train.TensorData
    feed: EngineFeed

    def engine_for(self, run: RunDir, prior_ids: list[int]) -> Any:
        """The engine to train the next model with, having learned from `prior_ids`."""
        return self.feed.engine_for(run, prior_ids)


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
        from flows.allocator import relax_malloc_trim

        relax_malloc_trim()  # Dask's MALLOC_TRIM_THRESHOLD_ halves training speed
        from a4nn.search import make_engine
        from a4nn.train import TensorData

        cfg = RunConfig.model_validate(config)
        threads = _torch_threads(cfg)
        if threads and torch.get_num_threads() != threads:
            torch.set_num_threads(threads)
        arrays = prepare_data(cfg.data, progress=False, seed=cfg.seed)
        data = TensorData.from_arrays(arrays.x_train, arrays.y_train, arrays.x_val, arrays.y_val)
        ctx = WorkerContext(key, cfg, data, EngineFeed(lambda: make_engine(cfg)))
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
