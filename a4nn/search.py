"""A search session and the plain runner: ask the adapter, train, tell.

`SearchSession` owns the run directory, the adapter and its persisted state, so resume
behaves the same whichever runner drives it. Both runners use the one scheduler
(`a4nn.scheduler`): the plain runner with `InProcessExecutor` (one model at a time, in
this process), `flows/` with Prefect task runs on Dask workers.
"""

from __future__ import annotations

import contextlib
import platform
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import yaml

from a4nn.config import ConfigError, RunConfig, config_from_dict
from a4nn.engine_feed import EngineFeed
from a4nn.hardware import hardware
from a4nn.scheduler import run_schedule
from a4nn.types import Candidate, Result
from engine import Engine
from lineage.run_dir import RunDir
from lineage.run_lock import RunLock


def utc_now() -> str:
    return datetime.now(UTC).isoformat(timespec="seconds")


def package_versions() -> dict[str, str]:
    from importlib.metadata import PackageNotFoundError, version

    out = {"python": platform.python_version()}
    for name in ("a4nn", "torch", "numpy", "scipy", "pandas", "pymoo", "prefect", "distributed"):
        try:
            out[name] = version(name)
        except PackageNotFoundError:
            continue
    return out


# What a resumed run may change: where the data and the hardware are, not what is searched.
RESUME_MAY_CHANGE = frozenset(
    {"name", "plugins", "data.path", "data.cache_dir", "train.device", "train.threads"}
)
RESUME_MAY_CHANGE_SECTIONS = ("lineage", "orchestration")

SYNC_SECONDS = 10.0
"""How often, at most, the session fsyncs the driver's per-model files (`RunDir.sync`):
an OS crash or a power loss loses at most the last this many seconds of the driver's
writes; a killed process loses nothing (docs/run_dir.md, "Durability")."""


def _flatten(d: dict[str, Any], prefix: str = "") -> dict[str, Any]:
    out: dict[str, Any] = {}
    for key, value in d.items():
        name = f"{prefix}{key}"
        if isinstance(value, dict) and value:
            out.update(_flatten(value, name + "."))
        else:
            out[name] = value
    return out


def config_changes(before: RunConfig, now: RunConfig) -> list[str]:
    """The settings that differ between a run's config and the one resuming it.

    Only what decides the search counts (seed, data, training, search space and adapter,
    engine); the run's name, data locations, device, threads, lineage and orchestration
    may change (a run killed on one machine resumes on another cluster).
    """
    a = _flatten(before.model_dump(mode="json"))
    b = _flatten(now.model_dump(mode="json"))
    changed = []
    for key in sorted(set(a) | set(b)):
        if key in RESUME_MAY_CHANGE or key.split(".")[0] in RESUME_MAY_CHANGE_SECTIONS:
            continue
        if a.get(key) != b.get(key):
            changed.append(f"{key} (run: {a.get(key)!r}, now: {b.get(key)!r})")
    return changed


def check_resume_config(cfg: RunConfig, stored: Path) -> None:
    """Refuse to resume a run with settings that would change what it searches.

    A run resumed with another epoch budget, data set, seed or engine would mix two
    searches in one run directory, and nothing downstream could tell. A stored config
    this version cannot read is not checked (the run predates a config change).
    """
    try:
        before = config_from_dict(yaml.safe_load(stored.read_text()), str(stored))
    except (OSError, yaml.YAMLError, ConfigError) as err:  # nothing to compare against
        print(f"warning: resuming unchecked, the run's config could not be read: {err}")
        return
    changes = config_changes(before, cfg)
    if changes:
        raise ValueError(
            f"--resume: the config differs from the run's ({stored}) in "
            + "; ".join(changes)
            + ". Resume with the run's own config.yaml, or start a new run with another --out"
        )


def make_engine(cfg: RunConfig) -> Engine:
    """The run's engine: preset (or engine YAML) plus overrides.

    `e_pred` is the epoch budget unless `engine.e_pred` is set; with `engine.config`
    (a YAML file), that file's `e_pred` wins unless `engine.e_pred` is set.
    """
    sec = cfg.engine
    overrides = dict(sec.overrides)
    if sec.e_pred is not None:
        overrides["e_pred"] = sec.e_pred
    if sec.config is not None:
        return Engine.from_yaml(sec.config, **overrides)
    overrides.setdefault("e_pred", cfg.train.epochs)
    return Engine.from_preset(sec.preset, **overrides)


@dataclass
class SearchSession:
    """A run directory plus the adapter whose state it persists."""

    cfg: RunConfig
    run: RunDir
    adapter: Any
    done_results: dict[int, Result] = field(default_factory=dict)
    order: list[int] = field(default_factory=list)
    lock: RunLock | None = None
    _cand_dicts: dict[int, dict[str, Any]] = field(default_factory=dict, repr=False)
    _synced: float = field(default_factory=time.monotonic, repr=False)

    @classmethod
    def open(cls, cfg: RunConfig, out: Path, resume: bool = False) -> SearchSession:
        """Create `out` (or reopen it with `resume`) and restore the adapter's state.

        Holds `out`'s lock from here to `close()`: a second run on it is refused."""
        adapter = cfg.create_adapter()
        if resume and not (Path(out) / "run.json").exists():
            raise FileNotFoundError(f"--resume: {out} holds no run to resume (no run.json)")
        lock = RunLock(Path(out)).acquire()
        try:
            session = cls._open_locked(cfg, Path(out), adapter, resume)
        except BaseException:
            lock.release()
            raise
        session.lock = lock
        return session

    @classmethod
    def _open_locked(cls, cfg: RunConfig, out: Path, adapter: Any, resume: bool) -> SearchSession:
        if resume:
            run = RunDir.open(out)
            check_resume_config(cfg, run.root / "config.yaml")
            run.remove_temp_files()  # half-written files of a killed run (we hold its lock)
            state = run.load_adapter_state()
            if state is not None:
                adapter.load_state_dict(state)
            done = run.finished_results()
            order = [m for m in run.completion_order() if m in done]
            order += [m for m in sorted(done) if m not in order]
            # reconcile: a model a worker finished just before a kill, whose row never
            # reached the run-level tables, is in them from now on
            run.write_tables(order)
            run.write_completion_order(order)
            run.update_meta(status="running", resumed_at=utc_now())
            return cls(cfg, run, adapter, done, order)
        config_yaml = yaml.safe_dump(cfg.model_dump(mode="json"), sort_keys=False)
        meta = {
            "name": cfg.name,
            "started": utc_now(),
            "versions": package_versions(),
            "hardware": hardware(),
        }
        run = RunDir.create(out, config_yaml, meta)
        return cls(cfg, run, adapter)

    def pending(self, cands: list[Candidate]) -> list[Candidate]:
        """Candidates not yet trained (a resumed run skips finished models)."""
        return [c for c in cands if c.model_id not in self.done_results]

    def record(self, res: Result) -> None:
        self.done_results[res.model_id] = res
        if res.model_id not in self.order:
            self.order.append(res.model_id)
            self.run.append_completed(res.model_id)
        self.run.append_model(res.model_id)  # its cost does not grow with the run
        self._maybe_sync()

    def tell(self, cands: list[Candidate], save: bool = True) -> None:
        """Hand the batch's results to the adapter and persist its new state (`save=False`:
        the caller saves it later, see `a4nn.scheduler.run_steady_state`)."""
        self.adapter.tell([self.done_results[c.model_id] for c in cands])
        if save:
            self.save_state()

    def save_state(self) -> None:
        """The adapter's state: its head and append-only logs when it has `state_parts`
        (a save then costs what the head costs, not what the search holds), else the whole
        `state_dict()` (docs/plugins.md)."""
        parts = getattr(self.adapter, "state_parts", None)
        if callable(parts):
            head, logs = parts()
            self.run.save_adapter_state(head, logs)
        else:
            self.run.save_adapter_state(self.adapter.state_dict())
        self._maybe_sync()

    def save_inflight(self, cands: list[Candidate], state: bool = True) -> None:
        """Steady state: the candidates asked and not told in the saved state, then that
        state.

        In that order: a kill in between re-proposes the same candidate from the older
        state, and the scheduler de-duplicates it; a finished model still listed is told
        again on resume (a no-op once told). Each candidate's dict is made once."""
        cache = self._cand_dicts
        dicts = {c.model_id: cache.get(c.model_id) or c.to_dict() for c in cands}
        self._cand_dicts = dicts
        self.run.save_in_flight(list(dicts.values()))
        if state:
            self.save_state()

    def _maybe_sync(self) -> None:
        """`RunDir.sync` at most every `SYNC_SECONDS` (docs/run_dir.md, "Durability")."""
        now = time.monotonic()
        if now - self._synced >= SYNC_SECONDS:
            self.run.sync()
            self._synced = now

    def unfinished(self) -> list[Candidate]:
        """Models with a folder but no recorded result (not done here, not in flight)."""
        out = []
        for md in self.run.model_dirs():
            if md.model_id in self.done_results:
                continue
            meta = md.read_meta()
            if "candidate" in meta and "result" not in meta:
                out.append(Candidate.from_dict(meta["candidate"]))
        return out

    def inflight(self) -> list[Candidate]:
        """The candidates a killed steady-state run had in flight."""
        return [Candidate.from_dict(d) for d in self.run.load_in_flight()]

    def record_dataset(self) -> None:
        """Fingerprint the data the run trains on (call once it exists)."""
        from a4nn.dataset import dataset_fingerprint

        self.run.update_meta(dataset=dataset_fingerprint(self.cfg.data))

    def finish(self, wall_seconds: float) -> None:
        """Join the tables' parts, then mark the run finished (and sync its files)."""
        self.run.compact_tables(self.order)
        self.run.sync()
        self.run.update_meta(
            status="finished",
            finished=utc_now(),
            wall_seconds=wall_seconds,
            completion_order=list(self.order),
        )

    def close(self) -> None:
        """Release the run directory's lock (the process's end releases it too)."""
        if self.lock is not None:
            self.lock.release()
            self.lock = None

    def __enter__(self) -> SearchSession:
        return self

    def __exit__(self, kind: Any, err: BaseException | None, tb: Any) -> None:
        """A search that ends by an error is `stopped` (never left `running`), and unlocked."""
        try:
            if err is not None and self.run.read_meta().get("status") == "running":
                reason = "interrupted" if isinstance(err, KeyboardInterrupt) else str(err)
                with contextlib.suppress(OSError):  # the tables so far (a full disk: not)
                    self.run.compact_tables(self.order)
                    self.run.sync()
                self.run.update_meta(
                    status="stopped",
                    stopped=utc_now(),
                    stop_reason=reason,
                    completion_order=list(self.order),
                )
        finally:
            self.close()


TrainFn = Callable[[Candidate, list[int]], Result]


class InProcessExecutor:
    """The plain runner's executor: one slot; a submitted model trains when its result is
    asked for, in submission order."""

    slots = 1

    def __init__(self, train_one: TrainFn) -> None:
        self.train_one = train_one
        self.queue: deque[tuple[Candidate, list[int]]] = deque()

    def submit(self, cand: Candidate, prior_ids: list[int]) -> None:
        self.queue.append((cand, list(prior_ids)))

    def next_result(self) -> tuple[Candidate, Result]:
        cand, prior = self.queue.popleft()
        return cand, self.train_one(cand, prior)


def run_search_local(
    cfg: RunConfig, out: Path, resume: bool = False, reporter: Any = None
) -> SearchSession:
    """Run a whole search in this process; returns the finished session."""
    t0 = time.perf_counter()
    with SearchSession.open(cfg, out, resume=resume) as session:
        _run_local(session, cfg, resume, reporter)
        session.finish(time.perf_counter() - t0)
    return session


def _run_local(session: SearchSession, cfg: RunConfig, resume: bool, reporter: Any) -> None:
    from a4nn.dataset import prepare_data
    from a4nn.train import TensorData, train_candidate

    arrays = prepare_data(cfg.data, progress=reporter is not None, seed=cfg.seed)
    session.record_dataset()
    data = TensorData.from_arrays(arrays.x_train, arrays.y_train, arrays.x_val, arrays.y_val)
    feed = EngineFeed(lambda: make_engine(cfg))  # a resumed run relearns finished models
    on_epoch = reporter.on_epoch if reporter is not None else None

    def train_one(cand: Candidate, prior_ids: list[int]) -> Result:
        if reporter is not None:
            reporter.on_start(cand)
        engine = feed.engine_for(session.run, prior_ids)
        return train_candidate(cand, cfg, data, session.run, engine, on_epoch=on_epoch)

    on_result = reporter.on_result if reporter is not None else None
    inflight = session.inflight() if resume else []
    run_schedule(session, InProcessExecutor(train_one), on_result, resume_inflight=inflight)
    session.run.save_in_flight([])
