"""Train one candidate: the paper's Algorithm 1 with per-epoch lineage and checkpoints.

After each epoch the model is validated, the accuracy is appended to the history H, the
engine is asked for a prediction p_e (appended to P), the epoch is recorded and
checkpointed, and training stops as soon as the engine reports convergence. The fitness
handed to the NAS is P[-1] when converged, else the last validation accuracy.

The function is self-contained (config, data and run directory in; a `Result` out) so the
same code runs in a plain loop, a Dask worker or a Prefect task. If the model's folder
already holds checkpoints (a worker died, a flow was killed), training resumes from the
last good one and the engine's state is rebuilt by replaying the recorded history.
"""

from __future__ import annotations

import json
import logging
import math
import time
import traceback
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import torch
from torch import nn

from a4nn.config import RunConfig
from a4nn.faults import InfrastructureError, infrastructure_cause
from a4nn.space import SearchSpace
from a4nn.types import Candidate, Result
from engine import Engine
from lineage.checkpoints import CheckpointError, CheckpointWriter, load_checkpoint, snapshot
from lineage.run_dir import ModelDir, RunDir

EpochCallback = Callable[[Candidate, dict[str, Any]], None]
logger = logging.getLogger(__name__)


@dataclass
class TensorData:
    """Train and validation tensors (host memory; `on(device)` gives a device copy)."""

    x_train: torch.Tensor
    y_train: torch.Tensor
    x_val: torch.Tensor
    y_val: torch.Tensor
    num_classes: int
    # device -> (the host tensors it was copied from, the copy); not an init field, so
    # dataclasses.replace() starts a fresh cache
    _copies: dict[str, tuple[tuple[torch.Tensor, ...], TensorData]] = field(
        default_factory=dict, init=False, repr=False, compare=False
    )

    @classmethod
    def from_arrays(
        cls, x_train: np.ndarray, y_train: np.ndarray, x_val: np.ndarray, y_val: np.ndarray
    ) -> TensorData:
        num_classes = int(max(y_train.max(), y_val.max())) + 1
        return cls(
            torch.from_numpy(np.ascontiguousarray(x_train, dtype=np.float32)),
            torch.from_numpy(np.ascontiguousarray(y_train, dtype=np.int64)),
            torch.from_numpy(np.ascontiguousarray(x_val, dtype=np.float32)),
            torch.from_numpy(np.ascontiguousarray(y_val, dtype=np.int64)),
            max(num_classes, 2),
        )

    @property
    def image_shape(self) -> tuple[int, int, int]:
        return tuple(self.x_train.shape[1:])  # type: ignore[return-value]

    def on(self, device: torch.device) -> TensorData:
        """The same data on `device`, copied once per process and device.

        On a GPU every batch then slices device memory, instead of crossing PCIe each
        step; the datasets A4NN trains on (thousands of small images) fit many times over.
        """
        if self.x_train.device == device or device.type == "cpu":
            return self
        sources = (self.x_train, self.y_train, self.x_val, self.y_val)
        key = str(device)
        cached = self._copies.get(key)
        if cached is None or any(a is not b for a, b in zip(cached[0], sources, strict=True)):
            copy = TensorData(*(t.to(device) for t in sources), self.num_classes)
            self._copies[key] = (sources, copy)  # a reassigned field replaces the copy
        return self._copies[key][1]


def pick_device(name: str) -> torch.device:
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    return torch.device(name)


def model_seed(run_seed: int, model_id: int) -> int:
    """Independent, reproducible seed per model (same model, same seed, same weights)."""
    return (run_seed * 1_000_003 + model_id * 7919) % (2**31 - 1)


def _make_optimizer(cfg: RunConfig, model: nn.Module) -> torch.optim.Optimizer:
    t = cfg.train
    if t.optimizer == "sgd":
        return torch.optim.SGD(
            model.parameters(), lr=t.lr, momentum=t.momentum, weight_decay=t.weight_decay
        )
    if t.optimizer == "adam":
        return torch.optim.Adam(model.parameters(), lr=t.lr, weight_decay=t.weight_decay)
    return torch.optim.AdamW(model.parameters(), lr=t.lr, weight_decay=t.weight_decay)


def _make_scheduler(
    cfg: RunConfig, opt: torch.optim.Optimizer
) -> torch.optim.lr_scheduler.LRScheduler:
    if cfg.train.lr_schedule == "cosine":
        return torch.optim.lr_scheduler.CosineAnnealingLR(opt, T_max=cfg.train.epochs)
    return torch.optim.lr_scheduler.LambdaLR(opt, lambda _e: 1.0)


def _sum_dtype(device: torch.device) -> torch.dtype:
    """float64 for the epoch's loss sum, except where the device has none (Apple's MPS)."""
    return torch.float32 if device.type == "mps" else torch.float64


def _train_epoch(
    model: nn.Module,
    opt: torch.optim.Optimizer,
    data: TensorData,
    batch_size: int,
    gen: torch.Generator,
    device: torch.device,
) -> tuple[float, float]:
    """One pass over the training set; returns (loss, accuracy %).

    A NaN or inf loss returns (NaN, NaN), found once the epoch ends (the sums are checked
    once per epoch, not per step, to spare a device a host sync per step).
    """
    model.train()
    loss_fn = nn.CrossEntropyLoss()
    n = data.x_train.shape[0]
    order = torch.randperm(n, generator=gen).to(data.x_train.device)
    # sums stay on the device: one host sync per epoch, not three per step
    total_loss = torch.zeros((), dtype=_sum_dtype(device), device=device)
    correct = torch.zeros((), dtype=torch.int64, device=device)
    for start in range(0, n, batch_size):
        idx = order[start : start + batch_size]
        xb = data.x_train[idx].to(device, non_blocking=True)
        yb = data.y_train[idx].to(device, non_blocking=True)
        opt.zero_grad(set_to_none=True)
        out = model(xb)
        loss = loss_fn(out, yb)
        loss.backward()
        opt.step()
        total_loss += loss.detach().to(total_loss.dtype) * len(idx)
        correct += (out.argmax(1) == yb).sum()
    mean_loss = float(total_loss) / n
    if not math.isfinite(mean_loss):  # a NaN or inf loss anywhere in the epoch
        return float("nan"), float("nan")
    return mean_loss, 100.0 * int(correct) / n


@torch.no_grad()
def evaluate(
    model: nn.Module, x: torch.Tensor, y: torch.Tensor, batch_size: int, device: torch.device
) -> tuple[float, float]:
    """Loss and accuracy (%) of `model` on (x, y)."""
    model.eval()
    loss_fn = nn.CrossEntropyLoss(reduction="sum")
    total_loss = torch.zeros((), dtype=_sum_dtype(device), device=device)
    correct = torch.zeros((), dtype=torch.int64, device=device)
    for start in range(0, x.shape[0], batch_size):
        xb = x[start : start + batch_size].to(device)
        yb = y[start : start + batch_size].to(device)
        out = model(xb)
        total_loss += loss_fn(out, yb).to(total_loss.dtype)
        correct += (out.argmax(1) == yb).sum()
    return float(total_loss) / x.shape[0], 100.0 * int(correct) / x.shape[0]


def candidate_space(cfg: RunConfig, cand: Candidate) -> SearchSpace:
    """The run's search space, checked to be the one `cand` was proposed in."""
    space = cfg.create_space()
    if cand.space != space.name:
        raise ValueError(
            f"model {cand.model_id} belongs to search space {cand.space!r}, but the run "
            f"searches {space.name!r} (search.space)"
        )
    return space


def _resume_point(
    md: ModelDir, rows: list[dict[str, Any]]
) -> tuple[dict[str, Any] | None, list[dict[str, Any]]]:
    """The last epoch whose checkpoint verifies, and the rows up to it."""
    for i in range(len(rows) - 1, -1, -1):
        row = rows[i]
        if not _names_checkpoint(row):
            continue  # never written, dropped by retention, or still in flight at a crash
        try:
            state = load_checkpoint(md.root / row["checkpoint"], row["checkpoint_sha256"])
        except CheckpointError as err:  # said, not silent: the resume goes back further
            logger.warning("model %s: resuming before epoch %s: %s", md.model_id, row["epoch"], err)
            continue
        return state, rows[: i + 1]
    return None, []


def _failed(cand: Candidate, reason: str, **fields: Any) -> Result:
    return Result(
        model_id=cand.model_id,
        fitness=0.0,
        mflops=fields.pop("mflops", float("nan")),
        params=fields.pop("params", 0),
        epochs_trained=fields.pop("epochs_trained", 0),
        status="failed",
        reason=reason,
        **fields,
    )


def train_candidate(
    cand: Candidate,
    cfg: RunConfig,
    data: TensorData,
    run: RunDir,
    engine: Engine,
    on_epoch: EpochCallback | None = None,
) -> Result:
    """Train `cand` under Algorithm 1 and record it; never raises for a bad model.

    A fault of the infrastructure (a checkpoint or record that cannot be written: a full
    disk, permissions) raises `InfrastructureError` and records no result: the model is
    not failed, and a resumed run trains it again (`a4nn.faults`).
    """
    try:
        return _train_and_record(cand, cfg, data, run, engine, on_epoch)
    except (CheckpointError, OSError) as err:
        cause = infrastructure_cause(err)
        if isinstance(err, OSError) and cause is None:
            raise
        what = f"{type(cause).__name__}: {cause}" if cause else f"{type(err).__name__}: {err}"
        raise InfrastructureError(
            f"model {cand.model_id} could not be recorded ({what}); it is not marked failed. "
            "Fix the cause (disk space, permissions), then continue with --resume"
        ) from err


def _train_and_record(
    cand: Candidate,
    cfg: RunConfig,
    data: TensorData,
    run: RunDir,
    engine: Engine,
    on_epoch: EpochCallback | None,
) -> Result:
    md = run.model(cand.model_id)
    md.root.mkdir(parents=True, exist_ok=True)
    device = pick_device(cfg.train.device)
    if cfg.train.threads:
        torch.set_num_threads(cfg.train.threads)
    seed = model_seed(cfg.seed, cand.model_id)
    torch.manual_seed(seed)
    meta: dict[str, Any] = {
        "candidate": cand.to_dict(),
        "seed": seed,
        "device": str(device),
        "input_shape": list(data.image_shape),
        "num_classes": data.num_classes,
    }
    try:
        space = candidate_space(cfg, cand)
        meta["choices"] = space.encode(cand.arch)
        meta["architecture"] = space.describe(cand.arch)
        model = space.build(cand.arch, data.image_shape, data.num_classes)
        mflops, params = space.cost(cand.arch, data.image_shape, data.num_classes, model=model)
    except Exception as err:  # an architecture that cannot build a network
        res = _failed(cand, f"architecture cannot build a network: {type(err).__name__}: {err}")
        md.write_meta({**meta, "result": res.to_dict()})
        return res
    meta.update(mflops=mflops, params=params)
    md.write_meta(meta)
    model.to(device)
    data = data.on(device)
    opt = _make_optimizer(cfg, model)
    sched = _make_scheduler(cfg, opt)
    tracker = engine.start(cand.model_id, features=meta.get("choices"))

    state, rows = _resume_point(md, md.read_epochs())
    start_epoch = 0
    if state is not None:
        model.load_state_dict(state["model"])
        opt.load_state_dict(state["optimizer"])
        sched.load_state_dict(state["scheduler"])
        for row in rows:
            tracker.observe(int(row["epoch"]), float(row["val_acc"]))
        start_epoch = int(rows[-1]["epoch"]) + 1
        meta["resumed_from_epoch"] = start_epoch
        md.write_meta(meta)

    gen = torch.Generator().manual_seed(seed)
    t_start = time.perf_counter()
    keep = cfg.lineage.checkpoints
    writer = CheckpointWriter() if keep != "none" else None
    written: dict[int, str] = {}  # epoch -> SHA-256, touched by the writer thread only
    status, reason = "budget", ""
    try:
        for epoch in range(start_epoch, cfg.train.epochs):
            if tracker.converged:
                break
            gen.manual_seed(seed + epoch)  # per-epoch shuffle, identical after a resume
            t0 = time.perf_counter()
            train_loss, train_acc = _train_epoch(
                model, opt, data, cfg.train.batch_size, gen, device
            )
            if math.isnan(train_loss):
                status, reason = "failed", f"NaN loss at epoch {epoch}"
                break
            sched.step()
            val_loss, val_acc = evaluate(
                model, data.x_val, data.y_val, cfg.train.batch_size, device
            )
            decision = tracker.observe(epoch, val_acc)
            row = {
                "model_id": cand.model_id,
                "epoch": epoch,
                "train_acc": train_acc,
                "val_acc": val_acc,
                "train_loss": train_loss,
                "val_loss": val_loss,
                "epoch_seconds": time.perf_counter() - t0,
                "prediction": decision.prediction,
                "converged": bool(decision.converged),
                "engine_family": decision.family or "",
                "engine_params": json.dumps(decision.params) if decision.params else "",
                "checkpoint": "",
                "checkpoint_sha256": "",
                "checkpoint_wait_seconds": 0.0,
            }
            if writer is not None:
                _collect_checkpoints(writer, md, rows, keep)
                t_wait = time.perf_counter()
                state = snapshot(
                    {
                        "model": model.state_dict(),
                        "optimizer": opt.state_dict(),
                        "scheduler": sched.state_dict(),
                        "epoch": epoch,
                    }
                )
                row["checkpoint_wait_seconds"] = time.perf_counter() - t_wait
                path = md.checkpoint_path(epoch)
                row["checkpoint"] = str(path.relative_to(md.root))
                rows.append(row)
                after = _epochs_recorder(md, [dict(r) for r in rows], written)
                writer.submit(path, state, tag=row, after=after, copied=True)
            else:
                rows.append(row)
                md.write_epochs(rows)
            if on_epoch is not None:
                on_epoch(cand, row)
            if decision.converged:
                status = "converged"
                break
    except Exception as err:  # a model that raises is recorded, and the search goes on
        if isinstance(err, CheckpointError) or infrastructure_cause(err) is not None:
            raise  # the disk's fault, not the model's: train_candidate reports it
        status = "failed"
        reason = f"{type(err).__name__}: {err}"
        meta["traceback"] = traceback.format_exc()
    finally:
        if writer is not None:
            try:  # a checkpoint (or its record) not written raises CheckpointError
                _collect_checkpoints(writer, md, rows, keep, wait=True)
            finally:
                writer.close()
            md.write_epochs(rows)

    engine.finish(tracker)
    log = tracker.prediction_log()
    if log:  # what another process's engine needs to learn this model (a4nn.engine_feed)
        meta["engine_log"] = log
    vals = [float(r["val_acc"]) for r in rows]
    common = dict(
        mflops=mflops,
        params=params,
        epochs_trained=len(rows),
        last_val_acc=vals[-1] if vals else float("nan"),
        best_val_acc=max(vals) if vals else float("nan"),
        train_seconds=time.perf_counter() - t_start,
    )
    if status == "failed":
        res = _failed(cand, reason, **common)
    else:
        res = Result(
            model_id=cand.model_id,
            fitness=float(tracker.fitness()),
            status=status,
            **common,
        )
    md.write_meta({**meta, "result": res.to_dict()})
    return res


def _epochs_recorder(
    md: ModelDir, table: list[dict[str, Any]], written: dict[int, str]
) -> Callable[[str], None]:
    """What the checkpoint writer runs once the last row's checkpoint is on disk.

    It writes the model's `epochs.csv` as of that epoch (`table`: a copy of the rows,
    since training goes on with the originals), every written checkpoint with its
    SHA-256. Recording the epoch there, not in the training loop, spares each epoch the
    wait for the disk (`fsync`: 6-7 ms an epoch here, behind the checkpoint's own), and a
    run killed during the next epoch resumes from this one: written in the loop, the
    table could only name this epoch's checkpoint, still being written, without its
    SHA-256, so a resume went back one epoch further.
    """
    epoch = int(table[-1]["epoch"])

    def record(sha: str) -> None:
        written[epoch] = sha
        for r in table:
            ckpt = r.get("checkpoint")
            if isinstance(ckpt, str) and ckpt and not _names_checkpoint(r):
                r["checkpoint_sha256"] = written.get(int(r["epoch"]), "")
        md.write_epochs(table)

    return record


def _collect_checkpoints(
    writer: CheckpointWriter,
    md: ModelDir,
    rows: list[dict[str, Any]],
    keep: str,
    wait: bool = False,
) -> None:
    """Record the SHA-256 of written checkpoints; apply `last_best` retention.

    Raises CheckpointError, naming the first write that failed (after recording the
    others), once per failure.
    """
    for row, sha in writer.done(wait=wait):
        row["checkpoint_sha256"] = sha
    if keep == "last_best":
        written = [r for r in rows if _names_checkpoint(r)]
        best = max(written, key=lambda r: float(r["val_acc"])) if written else None
        for r in written[:-1]:
            if r is not best:
                (md.root / r["checkpoint"]).unlink(missing_ok=True)
                r["checkpoint"], r["checkpoint_sha256"] = "", ""
    if writer.failures:
        err, writer.failures[:] = writer.failures[0], []
        raise CheckpointError(f"checkpoint not written: {type(err).__name__}: {err}") from err


def _names_checkpoint(row: dict[str, Any]) -> bool:
    """Whether a row names a written checkpoint (rows read back hold NaN for blanks)."""
    ckpt, sha = row.get("checkpoint"), row.get("checkpoint_sha256")
    return isinstance(ckpt, str) and bool(ckpt) and isinstance(sha, str) and bool(sha)
