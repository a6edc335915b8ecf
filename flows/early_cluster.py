"""The local Dask cluster, started first thing by `a4nn run` so its workers boot early.

A worker process imports Python, Dask, Prefect, torch and the training code from scratch
(about 3 s of CPU here) before it trains anything. Started where the flow needs it, the
cluster waited for the flow process's own imports (Prefect, Dask: about 2 s) and the
workers' imports came after them. `prestart` starts the cluster in a background thread
at once, side by side with the flow process's imports and the Prefect API's start;
`run_search_flow` then takes it over with `take`, which waits for the workers exactly as
starting the cluster there did, and raises what starting it raised.

Only the `local-cpu` plan (no GPU visible) starts early: it is the layout of the
quickstart and of small machines, where start-up weighs most. GPU clusters, an existing
scheduler and batch jobs start where the flow needs them, as before.
"""

from __future__ import annotations

import atexit
import contextlib
import threading
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

from a4nn.config import OrchestrationConfig
from flows.cluster import ClusterPlan, local_cluster, plan_cluster, quiet_dask_logs


@dataclass
class _Prestarted:
    plan: ClusterPlan
    cluster: Any = None
    error: BaseException | None = None
    started: threading.Event = field(default_factory=threading.Event)

    def start(self, env: dict[str, str], warm_config: dict[str, Any] | None) -> None:
        try:
            self.cluster = local_cluster(
                self.plan.n_workers,
                self.plan.threads_per_worker,
                extra_env=env,
                warm_config=warm_config,
            )
        except BaseException as err:  # handed to `take`, which raises it in the flow
            self.error = err
        finally:
            self.started.set()

    def wait(self) -> Any:
        self.started.wait()
        if self.error is not None:
            raise self.error
        return self.cluster


_held: _Prestarted | None = None
_at_exit = contextlib.ExitStack()  # Dask's quiet logs, for the whole `a4nn run`
_quieted = False


def prestart(
    orch: OrchestrationConfig,
    env: dict[str, str] | None = None,
    warm_config: dict[str, Any] | None = None,
) -> bool:
    """Start the planned cluster now if it is a local CPU one; True if it did.

    `env` goes to the worker processes (the temporary API's `PREFECT_API_URL`, which the
    flow process sets in its own environment only later). With `warm_config` (the run's
    configuration, its data ready to load), the workers warm up as soon as they start
    instead of waiting for the flow's warm-up task (`flows/warm_start.py`).
    """
    global _held, _quieted
    if _held is not None:
        return True
    plan = plan_cluster(orch)
    if plan.kind != "local-cpu":
        return False
    if not _quieted:  # until the process ends (not at `take`: the flow nests its own)
        _at_exit.enter_context(quiet_dask_logs())  # before the workers read their env
        atexit.register(_close_unclaimed)
        _quieted = True
    held = _Prestarted(plan)
    threading.Thread(
        target=held.start,
        args=(dict(env or {}), warm_config),
        name="a4nn-early-cluster",
        daemon=True,
    ).start()
    _held = held
    return True


@contextlib.contextmanager
def take(plan: ClusterPlan) -> Iterator[Any | None]:
    """The prestarted cluster if it is the one `plan` describes, closed at exit; else None.

    Waits until its workers are up (or raises why they are not). A prestarted cluster
    that does not match (the config changed in between) is closed.
    """
    global _held
    held, _held = _held, None
    if held is None:
        yield None
        return
    cluster = held.wait()
    if held.plan != plan:
        cluster.close()
        yield None
        return
    with cluster:
        yield cluster


def _close_unclaimed() -> None:
    """At exit: close a cluster nobody took (the run failed before its flow started)."""
    global _held, _quieted
    held, _held = _held, None
    if held is not None:
        with contextlib.suppress(Exception):
            held.wait().close()
    _at_exit.close()
    _quieted = False
