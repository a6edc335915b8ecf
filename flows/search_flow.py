"""The search as a Prefect flow: the adapter in the flow process, one task run per model.

    a4nn run CONFIG [--out DIR] [--resume]      -> run_search_flow(cfg, out, resume)

The flow opens the run directory (`a4nn.search.SearchSession`: adapter state restored on
`--resume`), asks the adapter for candidates and submits each as one task run named
`model-<id>` to a Dask cluster (`flows.cluster`) through `prefect_dask.DaskTaskRunner`,
asking for one GPU slot. The task trains the model with `a4nn.train.train_candidate`,
which records every epoch and checkpoint in `RUN_DIR/models/<id>/` and resumes from the
last verified checkpoint when that folder already holds some; so a task re-run after a
worker died, or after the flow was killed, continues where it stopped.

Faults:
- a worker killed mid-training: Dask reschedules the task on another worker (up to
  `distributed.scheduler.allowed-failures` times); if Dask gives up (`KilledWorker`) or
  the task raises past its Prefect `retries`, the flow resubmits it up to
  `orchestration.task_retries` more times, then stops the search with an
  `InfrastructureError` (the model is not marked failed; `--resume` trains it again);
- a full disk or a permission error while recording: the same stop (`a4nn.faults`);
- the flow killed: `--resume` reopens the run; finished models are not retrained, the
  adapter's state is restored, and for a steady-state adapter the candidates that were
  in flight (kept in `in_flight.json`) are resubmitted;
- a model that raises: `train_candidate` records it as failed, the search goes on;
- data a worker cannot load (it vanished or broke after the run's check): the search
  stops with the data's message, without retries (every model would fail the same way);
- a user's error or a fault of the machine raised in the flow (a config that differs on
  `--resume`, a broken adapter, a run directory in use, a full disk): the flow run ends
  Failed with the message, and `run_search_flow` raises the error itself, so `a4nn run`
  prints one line and exits 2 or 3; neither the flow nor the workers log a traceback for
  it on the console (task runs log to the Prefect API only).

Without `PREFECT_API_URL` the flow runs on a local Prefect server a4nn starts for the run
(`flows.api_server`, Prefect's database in `PREFECT_HOME`); with it, on that server (its
UI shows one task run per model).
"""

from __future__ import annotations

import contextlib
import logging
import os
import queue
import signal
import threading
import time
from array import array
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

from prefect import flow, task
from prefect.cache_policies import NO_CACHE
from prefect.states import Failed, State

from a4nn.config import OrchestrationConfig, RunConfig
from a4nn.faults import InfrastructureError, is_reported
from a4nn.scheduler import run_schedule
from a4nn.search import SearchSession
from a4nn.types import Candidate, Result
from flows import progress as progress_mod
from flows import warm_start
from flows.cluster import TRAIN_RESOURCES, ClusterPlan, plan_cluster, quiet_dask_logs
from lineage.run_dir import RunDir


# -- the task (runs on a Dask worker) ----------------------------------------------------
def pack_ids(ids: Sequence[int]) -> bytes:
    """The finished models' ids as one opaque task parameter.

    Prefect walks every task run's parameters item by item (to find upstream futures and
    to resolve them), about 3 microseconds an item: a list of the 10,000 models a large
    search has finished would cost the flow some 30 ms per submitted model, growing with
    the search. Packed, it is one item, whatever its length (8 bytes an id)."""
    return array("q", ids).tobytes()


def unpack_ids(packed: bytes) -> list[int]:
    """The ids `pack_ids` packed, in their order."""
    ids = array("q")
    ids.frombytes(packed)
    return ids.tolist()


def train_on_worker(
    candidate: dict[str, Any], config: dict[str, Any], run_dir: str, prior_ids: list[int]
) -> dict[str, Any]:
    """Train one candidate in this worker process; data and engine come from its cache."""
    from a4nn.train import train_candidate
    from flows import worker_cache

    ctx = worker_cache.get_context(config)
    run = RunDir(Path(run_dir))
    cand = Candidate.from_dict(candidate)
    engine = ctx.engine_for(run, prior_ids)
    done_epochs = len(run.model(cand.model_id).read_epochs())
    progress_mod.publish("start", cand.model_id, resume_epoch=done_epochs)

    def on_epoch(c: Candidate, row: dict[str, Any]) -> None:
        progress_mod.publish(
            "epoch",
            c.model_id,
            epoch=int(row["epoch"]),
            val_acc=float(row["val_acc"]),
            prediction=progress_mod.as_float(row.get("prediction")),
        )

    res = train_candidate(cand, ctx.cfg, ctx.data, run, engine, on_epoch=on_epoch)
    return res.to_dict()


def _worth_retrying(task: Any, task_run: Any, state: State) -> bool:
    """Prefect's retries are for lost workers and passing faults, not for data that does
    not load (it would fail the same way again): the executor stops the search with it."""
    from a4nn.data.loaders import DataError

    return not isinstance(state.data, DataError)  # a failed task run's data: its exception


@task(
    name="train-model",
    task_run_name="model-{model_id}",
    cache_policy=NO_CACHE,
    persist_result=False,
    retry_condition_fn=_worth_retrying,
)
def train_model(
    model_id: int,
    candidate: dict[str, Any],
    config: dict[str, Any],
    run_dir: str,
    prior_ids: bytes,
) -> dict[str, Any]:
    """One model, trained (or resumed) to convergence or budget; returns its Result.

    `prior_ids`: the models finished before it was submitted, `pack_ids`-packed."""
    _task_logs_to_api_only()
    return train_on_worker(candidate, config, run_dir, unpack_ids(prior_ids))


@contextlib.contextmanager
def _flow_logs_to_api_only() -> Iterator[None]:
    """The flow run's log records go to the Prefect API (the UI), not to the console,
    while `run_search_flow` runs the flow.

    At a4nn's log level (WARNING) what the flow run logs is how it ended badly: an error
    `run_search_flow` raises again for `a4nn run` to tell in one line, or a Ctrl-C
    ("Crash detected! Execution was aborted by an interrupt signal"), which `a4nn run`
    tells as one line too. Standard `logging` configuration of Prefect's
    `prefect.flow_runs` logger, whose own handler sends to the API."""
    logger = logging.getLogger("prefect.flow_runs")
    saved = logger.propagate
    logger.propagate = False
    try:
        yield
    finally:
        logger.propagate = saved


def _task_logs_to_api_only() -> None:
    """Task-run log records go to the Prefect API (the UI), not to this worker's console.

    What reaches a task run's log is never a model's own fault (`train_candidate`
    records those): a full disk, data that does not load, a worker lost. The flow tells
    each on the user's console once (`PrefectDaskExecutor`, `a4nn run`); a worker
    echoing it as a traceback would bury that message. Standard `logging` configuration
    of Prefect's `prefect.task_runs` logger, whose own handler sends to the API."""
    logging.getLogger("prefect.task_runs").propagate = False


# -- the executor the schedules drive (flow side) ----------------------------------------
class PrefectDaskExecutor:
    """Submits `train_model` task runs asking for one GPU slot; yields finished models.

    A task run that ends in error (Prefect retries spent, or Dask's `KilledWorker`) is
    resubmitted up to `resubmits` times; after that the search stops with an
    `InfrastructureError` (a model's own faults never reach here: the task records them).
    """

    def __init__(
        self,
        cfg: RunConfig,
        run: RunDir,
        slots: int,
        board: progress_mod.ProgressBoard | None = None,
    ):
        orch = cfg.orchestration
        self.task = train_model.with_options(
            retries=orch.task_retries, retry_delay_seconds=orch.retry_delay_seconds
        )
        self.config = cfg.model_dump(mode="json")
        self.run = run
        self.slots = slots
        self.resubmits = orch.task_retries
        self.board = board
        self.attempts: dict[int, int] = {}
        self.done: queue.Queue = queue.Queue()

    def submit(self, cand: Candidate, prior_ids: list[int]) -> None:
        import dask

        with dask.annotate(resources=TRAIN_RESOURCES):
            fut = self.task.submit(
                model_id=cand.model_id,
                candidate=cand.to_dict(),
                config=self.config,
                run_dir=str(self.run.root),
                prior_ids=pack_ids(prior_ids),
            )
        fut.add_done_callback(lambda f: self.done.put((cand, list(prior_ids), f)))
        if self.board is not None and cand.model_id not in self.attempts:
            self.board.on_submit(cand)
        self.attempts.setdefault(cand.model_id, 0)

    def next_result(self) -> tuple[Candidate, Result]:
        from a4nn.data.loaders import DataError  # numpy and tifffile: loaded by now

        while True:
            try:
                cand, prior, fut = self.done.get(timeout=0.5)
            except queue.Empty:
                if INTERRUPTED.is_set():  # a Ctrl-C that something caught on its way
                    raise KeyboardInterrupt from None
                continue
            try:
                return cand, Result.from_dict(fut.result())
            except InfrastructureError:
                raise  # the disk or a permission: the search stops, the model is not failed
            except DataError as err:  # the data changed under the run: every model would fail
                raise DataError(
                    f"model {cand.model_id}: a worker could not load the run's data: {err}. "
                    "Every model would fail the same way, so the search stops (no model is "
                    "marked failed); restore the data, then continue with --resume"
                ) from err
            except Exception as err:  # the task errored past its retries, or Dask gave up
                reason = f"{type(err).__name__}: {err}"
                n = self.attempts[cand.model_id] = self.attempts[cand.model_id] + 1
                if n <= self.resubmits:
                    print(f"model {cand.model_id}: {reason}; resubmitting ({n}/{self.resubmits})")
                    self.submit(cand, prior)
                    continue
                # train_candidate records a model's own faults and returns: what reaches
                # here (a worker lost again and again, a task that cannot run) is not
                # the model's, so it is not recorded as a failed model
                raise InfrastructureError(
                    f"model {cand.model_id} could not be trained on any attempt "
                    f"({1 + self.resubmits}): {reason}; it is not marked failed. Check the "
                    "workers, then continue with --resume"
                ) from err


INTERRUPTED = threading.Event()
"""Set by a Ctrl-C (SIGINT) while `run_search_flow` runs (`ctrl_c_stops_the_search`)."""


@contextlib.contextmanager
def ctrl_c_stops_the_search() -> Iterator[None]:
    """While the search runs, a Ctrl-C raises KeyboardInterrupt here, and is remembered.

    Python's default handler raises KeyboardInterrupt too, but an event loop run in the
    main thread (`asyncio.run`, which Prefect's and Dask's clients use for short calls)
    swaps it for one that cancels its task, and a task that handles its cancellation
    lets the Ctrl-C go unnoticed: the search ran on to its end. With a handler of our
    own those loops leave it in place (they replace only the default), and the executor
    raises KeyboardInterrupt again for a Ctrl-C caught on its way
    (`PrefectDaskExecutor.next_result`). Standard `signal` use, main thread only."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return

    def on_sigint(signum: int, frame: Any) -> None:
        INTERRUPTED.set()
        raise KeyboardInterrupt

    INTERRUPTED.clear()
    saved = signal.signal(signal.SIGINT, on_sigint)
    try:
        yield
        if INTERRUPTED.is_set():  # the search ended anyway: still an interrupted run
            raise KeyboardInterrupt
    finally:
        signal.signal(signal.SIGINT, saved)


def _cluster_slots(client: Any, timeout: float = 600.0) -> int:
    """Workers offering a GPU slot (waits for the first one to join)."""
    client.wait_for_workers(1, timeout=timeout)
    workers = client.scheduler_info(n_workers=-1)["workers"].values()
    return max(1, sum(int(w.get("resources", {}).get("GPU", 0)) for w in workers))


# -- the flow ------------------------------------------------------------------------------
def _search(cfg: RunConfig, out: Path, resume: bool) -> dict[str, Any]:
    from prefect.context import FlowRunContext

    t0 = time.perf_counter()
    orch = cfg.orchestration
    with SearchSession.open(cfg, out, resume=resume) as session:
        if cfg.data.source == "xfel":  # simulate once here, not once per worker
            from a4nn.dataset import ensure_xfel

            ensure_xfel(cfg.data, progress=True)
        session.record_dataset()
        client = FlowRunContext.get().task_runner.client
        plan = plan_cluster(orch)
        slots = _cluster_slots(client)
        if plan.kind in ("slurm", "pbs"):  # batch jobs join over time: plan for all of them
            slots = max(slots, plan.n_workers)
        board = progress_mod.ProgressBoard(cfg.train.epochs)
        client.subscribe_topic(progress_mod.TOPIC, board.on_event)
        executor = PrefectDaskExecutor(cfg, session.run, slots, board)
        session.run.update_meta(
            orchestration={
                "mode": session.adapter.mode,
                "cluster": plan.describe(),
                "slots": slots,
            }
        )
        with board:
            inflight = session.inflight() if resume else []
            run_schedule(session, executor, board.on_result, resume_inflight=inflight)
        with contextlib.suppress(Exception):
            client.unsubscribe_topic(progress_mod.TOPIC)
        session.run.save_in_flight([])
        wall = time.perf_counter() - t0
        session.finish(wall)
    return {
        "run_dir": str(session.run.root),
        "models": len(session.done_results),
        "failed": sum(r.failed for r in session.done_results.values()),
        "wall_seconds": wall,
    }


def _failed(err: BaseException) -> State:
    """The flow run's end for an error whose message is the whole story (a user's error,
    a fault of the machine): Failed, with that message and the error as its data, and no
    traceback in the log. The caller raises the error again (`raise_failure`)."""
    return Failed(message=f"{type(err).__name__}: {err}", data=err)


def raise_failure(state: State) -> Any:
    """The flow run's result; for a run that ended Failed or Crashed, its error, raised.

    A flow run ended by `_failed` carries the error itself, so `a4nn run` tells it as
    it would outside Prefect (one message, exit status 2 or 3)."""
    if state.is_completed():
        return state.result()
    err = state.result(raise_on_failure=False)
    if isinstance(err, BaseException):
        raise err
    raise RuntimeError(f"the search flow run ended {state.name}: {state.message}")


@flow(name="a4nn-search", flow_run_name="{name}", validate_parameters=False)
def search_flow(
    config: dict[str, Any], out: str, resume: bool = False, name: str = "a4nn-search"
) -> dict[str, Any]:
    """A whole search; `config` is a validated RunConfig in JSON form.

    A user's error (a bad value found late, a broken adapter, a run directory in use) or
    a fault of the machine ends the run Failed with its message, not with a traceback in
    Prefect's log; the run directory then says `stopped` (`SearchSession`). Any other
    error is a bug, and Prefect logs its traceback."""
    try:
        cfg = RunConfig.model_validate(config)
        return _search(cfg, Path(out), resume)
    except Exception as err:
        if not is_reported(err):
            raise
        return _failed(err)  # type: ignore[return-value]


@contextlib.contextmanager
def prefect_api() -> Iterator[str]:
    """The Prefect API this search reports to (its URL), for the flow and its workers.

    `PREFECT_API_URL` (a server or Prefect Cloud) when set. Else a Prefect server of its
    own on loopback (`flows.api_server`: `prefect server start` in a session of its own,
    on Prefect's database in `PREFECT_HOME`, stopped at the end), not Prefect's ephemeral
    mode, whose server is a subprocess in this process group: a Ctrl-C in the terminal
    would stop it while the flow still reports that it stopped. Its URL is then set in
    Prefect's settings, which prefect-dask ships to the workers with every task, and in
    the environment, which the local worker processes started after this inherit.
    """
    from prefect.settings import (
        PREFECT_API_URL,
        PREFECT_SERVER_EPHEMERAL_STARTUP_TIMEOUT_SECONDS,
        temporary_settings,
    )

    from flows.api_server import local_server

    with contextlib.ExitStack() as stack:
        url = PREFECT_API_URL.value()
        if not url:
            timeout = float(PREFECT_SERVER_EPHEMERAL_STARTUP_TIMEOUT_SECONDS.value())
            try:
                url = stack.enter_context(local_server(timeout))
            except RuntimeError as err:
                raise RuntimeError(
                    f"a4nn's local Prefect API server did not start ({err}); set "
                    "PREFECT_SERVER_EPHEMERAL_STARTUP_TIMEOUT_SECONDS higher, or run "
                    "`prefect server start` and set PREFECT_API_URL"
                ) from err
        saved = os.environ.get("PREFECT_API_URL")
        os.environ["PREFECT_API_URL"] = url
        try:
            with temporary_settings(updates={PREFECT_API_URL: url}):
                yield url
        finally:
            send_queued_logs()  # while the server is still up: see below
            if saved is None:
                os.environ.pop("PREFECT_API_URL", None)
            else:
                os.environ["PREFECT_API_URL"] = saved


def send_queued_logs() -> None:
    """Send the flow's and tasks' queued log records to the Prefect API now.

    Prefect's API log handler sends in the background and drains at exit; a4nn stops its
    own server before that, so records queued late (a flow run that ends on a Ctrl-C logs
    its crash) would meet a closed port and print "--- Error logging to API ---". The
    standard `logging.Handler.flush` of the handlers on Prefect's run loggers sends them
    while the server is still up (it waits at most a few seconds)."""
    for name in ("prefect.flow_runs", "prefect.task_runs"):
        for handler in logging.getLogger(name).handlers:
            with contextlib.suppress(Exception):  # a record not sent is not the run's fault
                handler.flush()


def warm_workers(client: Any, n_workers: int, config: dict[str, Any]) -> set[Any]:
    """Start warming each local worker (imports, data) while the flow gets ready.

    Warm-up tasks take no GPU slot; a training task that lands on a worker still
    warming waits for its data on the worker cache's lock. Errors are left to the
    training tasks, which report them properly. Workers that already warmed up at start
    (`flows/warm_start.py`) find the work done.

    Returns the warm-ups still running (to cancel at the end). A finished one is let go
    at once: held, a worker killed later would "lose already computed tasks" and Dask
    would say so on the console, for a warm-up nobody needs again.
    """
    client.wait_for_workers(n_workers, timeout=600)
    workers = list(client.scheduler_info(n_workers=-1)["workers"])
    pending: set[Any] = set()
    for i, w in enumerate(workers):
        fut = client.submit(warm_start.warm, config, workers=[w], pure=False, key=f"a4nn-warm-{i}")
        pending.add(fut)
        fut.add_done_callback(pending.discard)
    return pending


@contextlib.contextmanager
def start_cluster(
    orch: OrchestrationConfig, plan: ClusterPlan, warm_config: dict[str, Any] | None = None
) -> Iterator[Any]:
    """The planned cluster, started here (an address is passed through), closed at exit.

    With `warm_config`, the workers of the local clusters built here load the run's data
    as soon as they start (the `flows/warm_start.py` Dask preload).
    """
    from flows import cluster as cl

    if plan.kind == "address":
        yield plan.address
        return
    if plan.kind == "local-cuda":
        cm = cl.local_cuda_cluster(plan.gpus, plan.threads_per_worker)
    elif plan.kind in ("slurm", "pbs"):
        cm = cl.jobqueue_cluster(orch, plan.n_workers)
    else:
        cm = cl.local_cluster(
            plan.n_workers,
            plan.threads_per_worker,
            gpus=plan.gpus or None,
            warm_config=warm_config,
        )
    with cm as cluster:
        try:
            yield cluster
        finally:
            if plan.kind.startswith("local"):
                close_workers_first(cluster)


def close_workers_first(cluster: Any, timeout: float = 30.0) -> None:
    """Stop a local cluster's workers (nannies first, so none restarts) before the
    cluster closes its scheduler.

    A worker the nanny restarted late (after a kill) could otherwise outlive the
    scheduler for a moment and print a "Failed to communicate with scheduler during
    heartbeat" traceback. `SpecCluster.scale(0)` closes every nanny and its worker; the
    cluster's own close then finds only the scheduler left."""
    cluster.scale(0)
    deadline = time.monotonic() + timeout
    while cluster.workers and time.monotonic() < deadline:
        time.sleep(0.1)


def run_search_flow(cfg: RunConfig, out: Path, resume: bool = False) -> dict[str, Any]:
    """Run the flow in this process on the cluster the config chooses (what `a4nn run` calls).

    The Prefect API first (its URL goes to the workers), then the Dask cluster, whose
    workers warm up (imports, data) while the flow starts.
    """
    from distributed import Client
    from prefect_dask import DaskTaskRunner

    orch = cfg.orchestration
    plan = plan_cluster(orch)
    from a4nn.dataset import ensure_xfel, prepare_data

    if cfg.data.source == "xfel":  # simulate once, before any worker loads it
        ensure_xfel(cfg.data, progress=True)
    else:
        # a user's data is checked once here (readable, non-empty, labelled), before
        # Prefect or a worker starts: a bad file is one message now, not a failure of
        # every model on the workers
        prepare_data(cfg.data, progress=False, seed=cfg.seed)
    config = cfg.model_dump(mode="json")
    with (
        ctrl_c_stops_the_search(),
        quiet_dask_logs(),
        _flow_logs_to_api_only(),
        prefect_api(),
        start_cluster(orch, plan, warm_config=config) as target,
        contextlib.ExitStack() as stack,
    ):
        if plan.kind.startswith("local"):
            client = stack.enter_context(Client(target, set_as_default=False))
            stack.callback(
                lambda futs: client.cancel(list(futs)),
                warm_workers(client, plan.n_workers, config),
            )
        # by address, not the cluster object: the flow (and its runner) is pickled into
        # every task's context, and a cluster object does not pickle
        address = target if isinstance(target, str) else target.scheduler_address
        runner = DaskTaskRunner(address=address)
        flow_fn = search_flow.with_options(task_runner=runner)
        state = flow_fn(
            config=config, out=str(out), resume=resume, name=cfg.name, return_state=True
        )
        return raise_failure(state)


@flow(name="a4nn-search-deployment", validate_parameters=True)
def a4nn_search(config_path: str, out: str, resume: bool = False) -> dict[str, Any]:
    """Deployment entry point (prefect.yaml): load the config, run the search as a subflow.

    The cluster depends on the config, so the subflow gets its task runner here. The same
    checks as `a4nn run` come first (a run to resume, the run directory's lock, the data:
    in `run_search_flow`); a user's error or a fault of the machine ends this run Failed
    with one error line in its log naming it, not a traceback.
    """
    from prefect.logging import get_run_logger

    from a4nn.config import load_config
    from lineage.run_lock import RunLock

    try:
        cfg = load_config(config_path)
        if resume and not (Path(out) / "run.json").exists():
            raise FileNotFoundError(f"--resume: {out} holds no run to resume (no run.json)")
        RunLock(Path(out)).acquire().release()  # another run in `out`: refused at once
        return run_search_flow(cfg, Path(out), resume)
    except Exception as err:
        if not is_reported(err):
            raise
        get_run_logger().error("a4nn: %s", err)
        return _failed(err)  # type: ignore[return-value]
