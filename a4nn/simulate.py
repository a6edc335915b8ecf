"""Simulated search: the real scheduler, adapter, engine and lineage on a virtual clock.

Only training is replaced. Each candidate is given a recorded (or synthetic) learning
curve with its epoch times; its engine (`a4nn.engine_feed`, the same prior rule as a real
run) observes the curve epoch by epoch and may stop it; the model's lineage is written as
`a4nn.train.train_candidate` leaves it (model.json with the result and engine_log,
epochs.csv; no checkpoints); the model completes on a virtual clock of N virtual GPUs.
Used to plan a search ("how long on 4 GPUs, with this engine?") and to measure the
driver at scale. `a4nn simulate` is the command line; docs/simulate.md the guide.

Rules (documented in docs/simulate.md):

- Curve of a candidate: `sha256` of its choice vector (`space.encode(arch)`) modulo the
  number of curves, so the same architecture always gets the same curve.
- Epoch times: the curve's own (`epoch_times` / `epoch_seconds`), else those of the
  `--times` recording's model with the same index (modulo its size); epochs past what
  that model recorded take the median of its epochs after the first; else a constant.
- Cost (mflops, params): `recorded` (the curve's), `space` (the space's `cost`, once per
  architecture), `auto` (recorded when the curve has it, else the space's).
- Clock: N slots, list scheduling (FIFO); `next_result` returns the earliest-finishing
  model and advances the clock to its end. The driver's own time between executor calls
  (result -> record -> tell -> ask -> submit) is charged to the clock, as a real driver
  delays the next start; the replay itself (the engine's calls) is the models' training
  and is not.
- An engine that learns nothing across models (`paper`, `off`) decides the same for the
  same curve: each distinct curve is replayed once and its decisions reused (`memo`).
"""

from __future__ import annotations

import bisect
import csv
import hashlib
import heapq
import json
import math
import statistics
import time
from collections import deque
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import numpy as np

from a4nn.config import RunConfig
from a4nn.engine_feed import EngineFeed, engine_learns
from a4nn.scheduler import run_schedule
from a4nn.search import SearchSession, make_engine
from a4nn.space import vector_key
from a4nn.train import model_seed
from a4nn.types import Candidate, Result
from engine.replay import CurveFormatError
from lineage.run_dir import RunDir

COST_MODES = ("auto", "recorded", "space")
STATE_MODES = ("every", "final")


# -- curves -------------------------------------------------------------------------------
@dataclass(frozen=True)
class Curve:
    """One recorded model: validation accuracy (%) per epoch, and what else was recorded."""

    label: str
    epochs: tuple[int, ...]
    values: tuple[float, ...]
    seconds: tuple[float, ...] | None = None
    train_acc: tuple[float, ...] | None = None
    mflops: float | None = None
    params: int | None = None


@dataclass
class CurveSet:
    """Curves in recording order, and where they came from."""

    source: str
    curves: list[Curve]

    def __len__(self) -> int:
        return len(self.curves)

    @property
    def has_times(self) -> bool:
        return all(c.seconds is not None for c in self.curves)


def _num(text: str | None) -> float:
    t = (text or "").strip()
    if t == "":
        return float("nan")
    try:
        return float(t)
    except ValueError:
        return float("nan")


def _sibling_models_table(epochs_csv: Path) -> Path | None:
    """`models.csv` beside a run's `epochs.csv`, or `x_models.csv` beside `x_epochs.csv`."""
    name = epochs_csv.name
    if name == "epochs.csv":
        cand = epochs_csv.with_name("models.csv")
    elif "epochs" in name:
        cand = epochs_csv.with_name(name.replace("epochs", "models"))
    else:
        return None
    return cand if cand.is_file() else None


def read_curve_set(path: str | Path) -> CurveSet:
    """Read an A4NN commons CSV, a run's epochs.csv, or a run directory (see the module doc).

    Commons: a model starts where `epoch` is 0; `val_accs`, and when present `train_accs`,
    `epoch_times`, `flops` (MFLOPs), `params`. Ours: `model_id, epoch, val_acc` and when
    present `train_acc`, `epoch_seconds`; MFLOPs and parameters from the models table
    beside it (`models.csv`, or `<x>_models.csv` beside `<x>_epochs.csv`).
    """
    p = Path(path)
    if p.is_dir():
        p = p / "epochs.csv"
    if not p.is_file():
        raise FileNotFoundError(
            f"curves file not found: {p}; give an A4NN commons CSV, a run's epochs.csv or "
            "its run directory"
        )
    try:
        with p.open(newline="") as fh:
            rows = list(csv.DictReader(fh))
    except UnicodeDecodeError:
        raise CurveFormatError(f"{p}: not a text CSV file (it does not decode as UTF-8)") from None
    if not rows:
        raise CurveFormatError(f"{p}: no data rows after the header")
    header = set(rows[0])
    groups: list[tuple[str, list[dict[str, str]]]] = []
    if {"epoch", "val_accs"} <= header:  # the A4NN commons
        for r in rows:
            if _num(r["epoch"]) == 0 or not groups:
                label = (r.get("arch") or "").strip() or str(len(groups))
                groups.append((label, []))
            groups[-1][1].append(r)
        vcol, tcol, scol = "val_accs", "train_accs", "epoch_times"
    elif {"model_id", "epoch", "val_acc"} <= header:  # a run of ours
        by_id: dict[str, list[dict[str, str]]] = {}
        for r in rows:
            by_id.setdefault(r["model_id"].strip(), []).append(r)
        groups = list(by_id.items())
        vcol, tcol, scol = "val_acc", "train_acc", "epoch_seconds"
    else:
        raise CurveFormatError(
            f"{p}: line 1: expected columns epoch,val_accs (A4NN commons CSV) or "
            f"model_id,epoch,val_acc (a4nn run epochs.csv); found {sorted(header)}"
        )
    cost: dict[str, tuple[float, int | None]] = {}
    models_csv = _sibling_models_table(p) if vcol == "val_acc" else None
    if models_csv is not None:
        with models_csv.open(newline="") as fh:
            for r in csv.DictReader(fh):
                par = _num(r.get("params"))
                cost[r.get("model_id", "").strip()] = (
                    _num(r.get("mflops")),
                    int(par) if math.isfinite(par) else None,
                )
    curves = []
    for label, grp in groups:
        grp = sorted(grp, key=lambda r: _num(r["epoch"]))
        epochs = tuple(int(_num(r["epoch"])) for r in grp)
        secs = [_num(r.get(scol)) for r in grp] if scol in header else None
        train = tuple(_num(r.get(tcol)) for r in grp) if tcol in header else None
        if vcol == "val_accs":
            mf = _num(grp[0].get("flops"))
            par = _num(grp[0].get("params"))
            mflops, params = (
                (mf if math.isfinite(mf) else None),
                (int(par) if math.isfinite(par) else None),
            )
        else:
            mf, params = cost.get(label, (float("nan"), None))
            mflops = mf if math.isfinite(mf) else None
        seconds = tuple(secs) if secs and all(math.isfinite(s) and s >= 0 for s in secs) else None
        curves.append(
            Curve(label, epochs, tuple(_num(r[vcol]) for r in grp), seconds, train, mflops, params)
        )
    return CurveSet(str(p), curves)


def _extend(seconds: Sequence[float], n: int) -> tuple[float, ...]:
    """`seconds` to `n` epochs: later epochs take the median of those after the first."""
    if len(seconds) >= n:
        return tuple(seconds[:n])
    steady = statistics.median(seconds[1:]) if len(seconds) > 1 else seconds[0]
    return tuple(seconds) + (steady,) * (n - len(seconds))


def with_times(curves: CurveSet, times: CurveSet | None, epoch_seconds: float | None) -> CurveSet:
    """`curves` with epoch times for every epoch (see the module doc for the rule)."""
    out = []
    for i, c in enumerate(curves.curves):
        n = len(c.values)
        if times is not None:
            src = times.curves[i % len(times)]
            if src.seconds is None:
                raise CurveFormatError(
                    f"{times.source}: no epoch times (an `epoch_times` or `epoch_seconds` column)"
                )
            out.append(replace(c, seconds=_extend(src.seconds, n)))
        elif c.seconds is not None:
            out.append(replace(c, seconds=_extend(c.seconds, n)))
        elif epoch_seconds is not None:
            out.append(replace(c, seconds=(float(epoch_seconds),) * n))
        else:
            raise ValueError(
                f"{curves.source} records no epoch times; give --times FILE (a recording "
                "with `epoch_times` or `epoch_seconds`) or --epoch-seconds S"
            )
    return CurveSet(curves.source, out)


def synthesize(
    curves: CurveSet, n: int, seed: int = 0, noise: float = 0.5, time_sigma: float = 0.1
) -> CurveSet:
    """`n` synthetic curves resampled from `curves` (which need epoch times).

    Curve k: a recorded curve drawn uniformly (numpy `default_rng(seed)`), each epoch's
    validation accuracy plus Gaussian noise of `noise` points (clipped to [0, 100]), its
    epoch times all multiplied by one log-normal factor exp(N(0, time_sigma)) (the first
    epoch stays the longest, as recorded); MFLOPs and parameters as recorded.
    """
    if n < 1:
        raise ValueError(f"--synthetic must be >= 1, got {n}")
    rng = np.random.default_rng(seed)
    out = []
    for k in range(n):
        base = curves.curves[int(rng.integers(len(curves)))]
        vals = np.asarray(base.values, float) + rng.normal(0.0, noise, len(base.values))
        vals = np.where(np.isfinite(vals), np.clip(vals, 0.0, 100.0), vals)
        factor = float(np.exp(rng.normal(0.0, time_sigma)))
        secs = tuple(s * factor for s in base.seconds) if base.seconds is not None else None
        out.append(
            replace(
                base,
                label=f"synthetic-{k}<{base.label}",
                values=tuple(float(v) for v in vals),
                seconds=secs,
            )
        )
    return CurveSet(f"{curves.source} (synthetic x{n}, seed {seed}, noise {noise})", out)


def curve_index(space: Any, arch: Any, n: int) -> int:
    """The curve of an architecture: sha256 of its choice vector, modulo `n`."""
    key = vector_key(space.encode(arch)).encode()
    return int.from_bytes(hashlib.sha256(key).digest()[:8], "big") % n


# -- timing ---------------------------------------------------------------------------------
CATEGORIES = (
    "ask",
    "tell",
    "state_dict",
    "state_save",
    "tables",
    "run_json",
    "in_flight",
    "sync",
    "engine_feed",
    "model_files",
    "replay",
)


@dataclass
class Timers:
    """Seconds spent per category (wall clock, this process)."""

    seconds: dict[str, float] = field(default_factory=lambda: dict.fromkeys(CATEGORIES, 0.0))
    calls: dict[str, int] = field(default_factory=lambda: dict.fromkeys(CATEGORIES, 0))

    @contextmanager
    def time(self, name: str) -> Iterator[None]:
        t0 = time.perf_counter()
        try:
            yield
        finally:
            self.seconds[name] += time.perf_counter() - t0
            self.calls[name] += 1

    def wrap(self, name: str, fn: Callable[..., Any]) -> Callable[..., Any]:
        def timed(*args: Any, **kwargs: Any) -> Any:
            with self.time(name):
                return fn(*args, **kwargs)

        return timed


class TimedAdapter:
    """The session's adapter, with `ask`, `tell` and `state_dict` timed; all else forwarded."""

    def __init__(self, adapter: Any, timers: Timers, state: bool = True) -> None:
        self._adapter = adapter
        self.ask = timers.wrap("ask", adapter.ask)
        self.tell = timers.wrap("tell", adapter.tell)
        # state=False: the session's saves are skipped, so is building what they save
        self.state_dict = timers.wrap("state_dict", adapter.state_dict if state else dict)
        parts = getattr(adapter, "state_parts", None)
        if callable(parts):
            self.state_parts = timers.wrap("state_dict", parts if state else lambda: ({}, {}))

    def __getattr__(self, name: str) -> Any:
        return getattr(self._adapter, name)


# -- the executor -------------------------------------------------------------------------------
@dataclass
class Replayed:
    """What replaying one model gave: its lineage, result and virtual duration."""

    cand: Candidate
    result: Result
    meta: dict[str, Any]
    rows: list[dict[str, Any]]
    duration: float
    budget_epochs: int
    budget_seconds: float
    seq: int = 0
    batch: int = 0
    start: float = float("nan")
    end: float = float("nan")


@dataclass
class _Decisions:
    """A non-learning engine's replay of one curve, reused for every model given it."""

    rows: list[tuple[float | None, bool, str, str]]  # prediction, converged, family, params
    fitness: float
    converged: bool
    log: list[list[Any]]


def _blank(v: float) -> float:
    return v if math.isfinite(v) else float("nan")


class SimulatedExecutor:
    """N virtual GPUs on a virtual clock (see the module docstring); an `Executor`."""

    def __init__(
        self,
        cfg: RunConfig,
        run: RunDir,
        curves: CurveSet,
        gpus: int,
        *,
        feed: EngineFeed | None = None,
        space: Any = None,
        cost: str = "auto",
        input_shape: Sequence[int] | None = None,
        num_classes: int = 2,
        memo: bool = True,
        charge_driver: bool = True,
        assign: Callable[[Candidate], int] | None = None,
        timers: Timers | None = None,
    ) -> None:
        if gpus < 1:
            raise ValueError(f"--gpus must be >= 1, got {gpus}")
        if cost not in COST_MODES:
            raise ValueError(f"--cost must be one of {COST_MODES}, got {cost!r}")
        if not curves.has_times:
            raise ValueError(f"{curves.source}: every curve needs epoch times (with_times)")
        self.cfg, self.run, self.curves, self.slots = cfg, run, curves, int(gpus)
        self.feed = feed if feed is not None else EngineFeed(lambda: make_engine(cfg))
        self.space = space if space is not None else cfg.create_space()
        self.cost_mode = cost
        self.input_shape = tuple(input_shape) if input_shape is not None else None
        self.num_classes = num_classes
        self.memo = memo
        self.charge_driver = charge_driver
        self.assign = assign or (lambda c: curve_index(self.space, c.arch, len(self.curves)))
        self.timers = timers or Timers()
        self.clock = 0.0
        self.driver_charged = 0.0
        self._since: float | None = None  # when the driver last got control back
        self._running: list[tuple[float, int, Replayed]] = []  # heap by (end, seq)
        self._queue: deque[Replayed] = deque()
        self._seq = 0
        self._batch = 0
        self._last_call = "next_result"
        self._decisions: dict[int, _Decisions] = {}
        self._cost_cache: dict[str, tuple[float, int]] = {}
        self.finished: list[Replayed] = []
        self.engine_replays = 0
        self.memo_hits = 0

    # -- the Executor protocol --------------------------------------------------------------
    def submit(self, cand: Candidate, prior_ids: list[int]) -> None:
        self._enter()
        try:
            if self._last_call == "next_result":
                self._batch += 1  # the submissions between two results: one batch
            self._last_call = "submit"
            job = self._replay(cand, prior_ids)
            job.seq, job.batch = self._seq, self._batch
            self._seq += 1
            if len(self._running) < self.slots:
                self._start(job)
            else:
                self._queue.append(job)
        finally:
            self._leave()

    def next_result(self) -> tuple[Candidate, Result]:
        self._enter()
        try:
            self._last_call = "next_result"
            if not self._running:
                raise RuntimeError("next_result() with no model submitted")
            end, _, job = heapq.heappop(self._running)
            self.clock = max(self.clock, end)  # late if the driver was busy past `end`
            if self._queue:
                self._start(self._queue.popleft())
            with self.timers.time("model_files"):
                md = self.run.model(job.cand.model_id)
                md.write_epochs(job.rows)
                md.write_meta({**job.meta, "result": job.result.to_dict()})
            job.meta, job.rows = {}, []  # on disk now; a long search keeps only the timings
            self.finished.append(job)
            return job.cand, job.result
        finally:
            self._leave()

    # -- clock ------------------------------------------------------------------------------
    def _enter(self) -> None:
        now = time.perf_counter()
        if self.charge_driver and self._since is not None:
            gap = now - self._since
            self.clock += gap
            self.driver_charged += gap

    def _leave(self) -> None:
        self._since = time.perf_counter()

    def _start(self, job: Replayed) -> None:
        job.start = self.clock
        job.end = self.clock + job.duration
        heapq.heappush(self._running, (job.end, job.seq, job))

    # -- one model --------------------------------------------------------------------------
    def _cost(self, cand: Candidate, curve: Curve) -> tuple[float, int]:
        recorded = curve.mflops is not None
        if self.cost_mode == "recorded" or (self.cost_mode == "auto" and recorded):
            if not recorded:
                raise ValueError(
                    f"--cost recorded: curve {curve.label!r} of {self.curves.source} records "
                    "no MFLOPs; use --cost space (or auto)"
                )
            return float(curve.mflops), int(curve.params or 0)  # type: ignore[arg-type]
        key = vector_key(self.space.encode(cand.arch))
        if key not in self._cost_cache:
            if self.input_shape is None:
                raise ValueError("--cost space needs the input shape of the data")
            self._cost_cache[key] = self.space.cost(cand.arch, self.input_shape, self.num_classes)
        return self._cost_cache[key]

    def _decide(self, cand: Candidate, index: int, curve: Curve, n: int, prior: list[int]):
        with self.timers.time("engine_feed"):
            engine = self.feed.engine_for(self.run, prior)
        reuse = self.memo and not engine_learns(engine)
        if reuse and index in self._decisions:
            self.memo_hits += 1
            return self._decisions[index]
        self.engine_replays += 1
        with self.timers.time("replay"):  # the models' "training": the engine's calls
            tracker = engine.start(cand.model_id)
            rows = []
            for e in range(n):
                d = tracker.observe(curve.epochs[e], curve.values[e])
                params = json.dumps(d.params) if d.params else ""
                rows.append((d.prediction, bool(d.converged), d.family or "", params))
                if d.converged:
                    break
            engine.finish(tracker)
            out = _Decisions(
                rows, float(tracker.fitness()), tracker.converged, tracker.prediction_log()
            )
        if reuse:
            self._decisions[index] = out
        return out

    def _replay(self, cand: Candidate, prior: list[int]) -> Replayed:
        index = self.assign(cand)
        curve = self.curves.curves[index]
        budget = min(self.cfg.train.epochs, len(curve.values))
        seconds = curve.seconds or ()
        dec = self._decide(cand, index, curve, budget, list(prior))
        with self.timers.time("model_files"):
            meta: dict[str, Any] = {
                "candidate": cand.to_dict(),
                "seed": model_seed(self.cfg.seed, cand.model_id),
                "device": "simulated",
                "input_shape": list(self.input_shape) if self.input_shape else None,
                "num_classes": self.num_classes,
                "choices": self.space.encode(cand.arch),
                "architecture": self.space.describe(cand.arch),
                "simulated": {"curve": curve.label, "curve_index": index},
            }
            mflops, params = self._cost(cand, curve)
            meta.update(mflops=mflops, params=params)
            if dec.log:
                meta["engine_log"] = dec.log
        rows = []
        for e, (pred, conv, fam, par) in enumerate(dec.rows):
            train = curve.train_acc[e] if curve.train_acc else float("nan")
            rows.append(
                {
                    "model_id": cand.model_id,
                    "epoch": curve.epochs[e],
                    "train_acc": _blank(train),
                    "val_acc": _blank(curve.values[e]),
                    "train_loss": float("nan"),
                    "val_loss": float("nan"),
                    "epoch_seconds": seconds[e],
                    "prediction": pred,
                    "converged": conv,
                    "engine_family": fam,
                    "engine_params": par,
                    "checkpoint": "",
                    "checkpoint_sha256": "",
                    "checkpoint_wait_seconds": 0.0,
                }
            )
        vals = [v for v in (r["val_acc"] for r in rows) if math.isfinite(v)]
        duration = float(sum(seconds[: len(rows)]))
        res = Result(
            model_id=cand.model_id,
            fitness=dec.fitness,
            mflops=mflops,
            params=params,
            epochs_trained=len(rows),
            status="converged" if dec.converged else "budget",
            last_val_acc=vals[-1] if vals else float("nan"),
            best_val_acc=max(vals) if vals else float("nan"),
            train_seconds=duration,
        )
        return Replayed(cand, res, meta, rows, duration, budget, float(sum(seconds[:budget])))

    # -- what happened -------------------------------------------------------------------------
    @property
    def busy_seconds(self) -> float:
        return sum(j.duration for j in self.finished)

    @property
    def makespan(self) -> float:
        return max((j.end for j in self.finished), default=0.0)


def list_schedule(durations: Sequence[float], slots: int, batches: Sequence[int] = ()) -> float:
    """Makespan of list scheduling `durations` (FIFO) on `slots` with zero overhead.

    With `batches` (one id per duration), a batch starts once the previous one has
    finished (a generational schedule's barrier)."""
    if not batches:
        batches = [0] * len(durations)
    t0 = 0.0
    end = 0.0
    i = 0
    while i < len(durations):
        j = i
        while j < len(durations) and batches[j] == batches[i]:
            j += 1
        free = [t0] * min(slots, j - i)
        heapq.heapify(free)
        for d in durations[i:j]:
            start = heapq.heappop(free)
            heapq.heappush(free, start + d)
            end = max(end, start + d)
        t0 = end
        i = j
    return end


# -- the whole simulation --------------------------------------------------------------------------
@dataclass
class Point:
    """Cumulative totals when the `models`-th model had finished."""

    models: int
    wall: float
    seconds: dict[str, float]


@dataclass
class Simulation:
    """A finished simulated search: what the clock and the driver's timers say."""

    run_dir: Path
    name: str
    mode: str
    adapter: str
    engine: str
    gpus: int
    curves: str
    curve_count: int
    models: int
    stopped: int
    makespan: float
    busy: float
    bound_makespan: float
    work_bound: float
    epochs_replayed: int
    epochs_budget: int
    seconds_budget: float
    wall: float
    finish_seconds: float
    driver_charged: float
    engine_replays: int
    memo_hits: int
    save_state: str
    totals: dict[str, float]
    points: list[Point]

    @property
    def utilization(self) -> float:
        return self.busy / (self.gpus * self.makespan) if self.makespan > 0 else float("nan")

    @property
    def bound_utilization(self) -> float:
        den = self.gpus * self.bound_makespan
        return self.busy / den if den > 0 else float("nan")

    @property
    def driver_seconds(self) -> float:
        """The search loop's wall time minus the replay (the engine's calls)."""
        return self.loop_wall - self.totals["replay"]

    @property
    def loop_wall(self) -> float:
        return self.points[-1].wall if self.points else 0.0

    @property
    def driver_ms_per_model(self) -> float:
        return 1000.0 * self.driver_seconds / self.models if self.models else float("nan")

    def breakdown_ms(self) -> dict[str, float]:
        """Driver milliseconds per model by category (`other`: the rest of the loop)."""
        n = max(self.models, 1)
        out = {k: 1000.0 * v / n for k, v in self.totals.items() if k != "replay"}
        out["other"] = self.driver_ms_per_model - sum(out.values())
        return out

    def curve(self, marks: Sequence[int] | None = None) -> list[dict[str, Any]]:
        """Driver ms per model between successive marks (model counts), by category."""
        if not self.points:
            return []
        if marks is None:
            marks = [m for m in (1, 100, 200, 500, 1000, 2000, 5000, 10_000) if m < self.models]
            marks = [*marks, self.models]
        counts = [p.models for p in self.points]
        out = []
        prev = None
        for m in marks:
            k = bisect.bisect_left(counts, m)
            if k >= len(self.points):
                break
            p = self.points[k]
            if prev is not None and p.models > prev.models:
                n = p.models - prev.models
                wall = p.wall - prev.wall
                secs = {c: p.seconds[c] - prev.seconds[c] for c in p.seconds}
                driver = wall - secs["replay"]
                row = {
                    "from": prev.models,
                    "to": p.models,
                    "driver_ms": 1000.0 * driver / n,
                    **{f"{c}_ms": 1000.0 * v / n for c, v in secs.items() if c != "replay"},
                }
                row["other_ms"] = row["driver_ms"] - sum(
                    v for k2, v in row.items() if k2.endswith("_ms") and k2 != "driver_ms"
                )
                out.append(row)
            prev = p
        return out

    def to_dict(self) -> dict[str, Any]:
        return {
            "run_dir": str(self.run_dir),
            "name": self.name,
            "mode": self.mode,
            "adapter": self.adapter,
            "engine": self.engine,
            "gpus": self.gpus,
            "curves": self.curves,
            "curve_count": self.curve_count,
            "models": self.models,
            "models_stopped": self.stopped,
            "makespan_s": self.makespan,
            "busy_gpu_s": self.busy,
            "utilization": self.utilization,
            "bound_makespan_s": self.bound_makespan,
            "bound_utilization": self.bound_utilization,
            "work_bound_s": self.work_bound,
            "epochs_replayed": self.epochs_replayed,
            "epochs_budget": self.epochs_budget,
            "epochs_saved_pct": self.epochs_saved_pct,
            "gpu_seconds_budget": self.seconds_budget,
            "gpu_seconds_saved_pct": self.seconds_saved_pct,
            "wall_s": self.wall,
            "loop_wall_s": self.loop_wall,
            "finish_s": self.finish_seconds,
            "driver_s": self.driver_seconds,
            "driver_ms_per_model": self.driver_ms_per_model,
            "driver_charged_s": self.driver_charged,
            "breakdown_ms_per_model": self.breakdown_ms(),
            "driver_curve": self.curve(),
            "engine_replays": self.engine_replays,
            "memo_hits": self.memo_hits,
            "save_state": self.save_state,
        }

    @property
    def epochs_saved_pct(self) -> float:
        b = self.epochs_budget
        return 100.0 * (b - self.epochs_replayed) / b if b else float("nan")

    @property
    def seconds_saved_pct(self) -> float:
        b = self.seconds_budget
        return 100.0 * (b - self.busy) / b if b else float("nan")


def _duration(s: float) -> str:
    if s >= 2 * 3600:
        return f"{s / 3600:.2f} h"
    if s >= 120:
        return f"{s / 60:.1f} min"
    return f"{s:.1f} s"


def format_simulation(sim: Simulation) -> str:
    """The summary `a4nn simulate` prints."""
    b = sim.breakdown_ms()
    parts = ", ".join(f"{k} {v:.2f}" for k, v in b.items())
    lines = [
        f"Simulated search '{sim.name}': {sim.models} models on {sim.gpus} virtual GPUs "
        f"({sim.adapter}, {sim.mode}; engine {sim.engine})",
        f"  curves          {sim.curve_count} from {sim.curves}",
        f"  makespan        {_duration(sim.makespan)} virtual"
        f"  (list scheduling, zero overhead: {_duration(sim.bound_makespan)};"
        f" work / GPUs: {_duration(sim.work_bound)})",
        f"  utilization     {100 * sim.utilization:.2f}%"
        f"  (bound {100 * sim.bound_utilization:.2f}%; busy GPU time {_duration(sim.busy)})",
        f"  epochs saved    {sim.epochs_saved_pct:.1f}% ({sim.epochs_replayed} of "
        f"{sim.epochs_budget} trained; {sim.stopped} models stopped early; GPU time saved "
        f"{sim.seconds_saved_pct:.1f}%)",
        f"  driver          {sim.driver_ms_per_model:.2f} ms per model"
        f" ({sim.driver_seconds:.1f} s; charged to the clock {sim.driver_charged:.1f} s)",
        f"    ms per model: {parts}",
    ]
    curve = sim.curve()
    if len(curve) > 1:
        pts = ", ".join(f"{r['from']}-{r['to']}: {r['driver_ms']:.1f}" for r in curve)
        lines.append(f"    by models finished: {pts}")
    lines += [
        f"  wall            {_duration(sim.wall)} (tables joined at the end:"
        f" {sim.finish_seconds:.1f} s; engine replays {sim.engine_replays},"
        f" reused {sim.memo_hits})",
        f"  run directory   {sim.run_dir}",
    ]
    return "\n".join(lines)


def input_shape_of(cfg: RunConfig) -> tuple[tuple[int, int, int], int] | None:
    """(input shape, classes) of the config's data without loading it: known for `xfel`
    (1 channel, `resize` or 127 pixels, 2 classes); None for other sources."""
    if cfg.data.source == "xfel":
        side = cfg.data.resize or 127
        return (1, side, side), 2
    return None


def simulate(
    cfg: RunConfig,
    curves: CurveSet,
    gpus: int,
    out: Path,
    *,
    cost: str = "auto",
    memo: bool = True,
    save_state: str = "every",
    charge_driver: bool = True,
    progress: Callable[[int, int], None] | None = None,
) -> Simulation:
    """Run the config's whole search on `gpus` virtual GPUs into run directory `out`.

    `save_state="final"` saves the adapter's state once, at the end, instead of after
    every ask and tell (a run that cannot be resumed midway; for measuring the rest of
    the driver when the adapter's state grows with the search).
    """
    if gpus < 1:
        raise ValueError(f"--gpus must be >= 1, got {gpus}")
    if cost not in COST_MODES:
        raise ValueError(f"--cost must be one of {', '.join(COST_MODES)}, got {cost!r}")
    if save_state not in STATE_MODES:
        raise ValueError(f"--save-state must be one of {', '.join(STATE_MODES)}")
    shape = input_shape_of(cfg)
    needs_space_cost = cost == "space" or (
        cost == "auto" and any(c.mflops is None for c in curves.curves)
    )
    if shape is None and needs_space_cost:
        from a4nn.dataset import prepare_data

        arrays = prepare_data(cfg.data, progress=False, seed=cfg.seed)
        shape = (tuple(arrays.x_train.shape[1:]), int(max(arrays.y_train.max(), 1)) + 1)
    t0 = time.perf_counter()
    timers = Timers()
    with SearchSession.open(cfg, Path(out)) as session:
        run = session.run
        run.update_meta(
            simulated={"gpus": gpus, "curves": curves.source, "curve_count": len(curves)}
        )
        real_save = run.save_adapter_state
        run.append_model = timers.wrap("tables", run.append_model)  # type: ignore[method-assign]
        run.update_meta = timers.wrap("run_json", run.update_meta)  # type: ignore[method-assign]
        run.append_completed = timers.wrap("run_json", run.append_completed)  # type: ignore[method-assign]
        run.save_in_flight = timers.wrap("in_flight", run.save_in_flight)  # type: ignore[method-assign]
        run.sync = timers.wrap("sync", run.sync)  # type: ignore[method-assign]
        if save_state == "every":
            run.save_adapter_state = timers.wrap("state_save", real_save)  # type: ignore[method-assign]
        else:
            run.save_adapter_state = lambda state, logs=None: None  # type: ignore[method-assign]
        adapter = session.adapter
        session.adapter = TimedAdapter(adapter, timers, state=save_state == "every")
        ex = SimulatedExecutor(
            cfg,
            run,
            curves,
            gpus,
            cost=cost,
            input_shape=shape[0] if shape else None,
            num_classes=shape[1] if shape else 2,
            memo=memo,
            charge_driver=charge_driver,
            timers=timers,
        )
        points: list[Point] = []
        total = getattr(adapter, "budget", 0)

        def on_result(_c: Candidate, _r: Result) -> None:
            points.append(Point(len(points) + 1, time.perf_counter() - t0, dict(timers.seconds)))
            if progress is not None:
                progress(len(points), total)

        run_schedule(session, ex, on_result)
        run.save_in_flight([])
        if save_state == "final":
            real_save(adapter.state_dict())
        t_finish = time.perf_counter()
        session.finish(t_finish - t0)  # joins the tables
        finish_seconds = time.perf_counter() - t_finish
        jobs = ex.finished
        order = sorted(jobs, key=lambda j: j.seq)
        batches = [j.batch for j in order] if adapter.mode == "generational" else []
        sim = Simulation(
            run_dir=Path(out),
            name=cfg.name,
            mode=adapter.mode,
            adapter=adapter.name,
            engine=cfg.engine.preset if cfg.engine.config is None else str(cfg.engine.config),
            gpus=gpus,
            curves=curves.source,
            curve_count=len(curves),
            models=len(jobs),
            stopped=sum(1 for j in jobs if j.result.status == "converged"),
            makespan=ex.makespan,
            busy=ex.busy_seconds,
            bound_makespan=list_schedule([j.duration for j in order], gpus, batches),
            work_bound=max(ex.busy_seconds / gpus, max((j.duration for j in jobs), default=0.0)),
            epochs_replayed=sum(j.result.epochs_trained for j in jobs),
            epochs_budget=sum(j.budget_epochs for j in jobs),
            seconds_budget=sum(j.budget_seconds for j in jobs),
            wall=time.perf_counter() - t0,
            finish_seconds=finish_seconds,
            driver_charged=ex.driver_charged,
            engine_replays=ex.engine_replays,
            memo_hits=ex.memo_hits,
            save_state=save_state,
            totals=dict(points[-1].seconds) if points else dict(timers.seconds),
            points=points,
        )
        run.update_meta(simulation=_strict(sim.to_dict()))
    return sim


def _strict(value: Any) -> Any:
    """`value` with NaN and infinities as None (strict JSON)."""
    if isinstance(value, float):
        return value if math.isfinite(value) else None
    if isinstance(value, dict):
        return {k: _strict(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_strict(v) for v in value]
    return value


def load_curves(
    path: str | Path,
    *,
    times: str | Path | None = None,
    epoch_seconds: float | None = None,
    synthetic: int | None = None,
    seed: int = 0,
    noise: float = 0.5,
) -> CurveSet:
    """The curves `a4nn simulate` replays: read, timed, and optionally synthesized."""
    curves = read_curve_set(path)
    if epoch_seconds is not None and not epoch_seconds > 0:
        raise ValueError(f"--epoch-seconds must be > 0, got {epoch_seconds}")
    timed = with_times(curves, read_curve_set(times) if times else None, epoch_seconds)
    if synthetic:
        timed = synthesize(timed, synthetic, seed=seed, noise=noise)
    return timed
