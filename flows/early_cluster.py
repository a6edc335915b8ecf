"""The local Dask cluster, started first thing by `a4nn run` so its workers boot early.

A worker process imports Python, Dask, Prefect, torch and the training code from scratch
(about 3 s of CPU here) before it trains anything. Started where the flow needs it, the
cluster waited for the flow process's own imports (Prefect, Dask: about 2 s) and the
workers' imports came after them. `prestart` starts the scheduler at once and lets the
workers boot in the background, side by side with the flow process's imports and the
Prefect API's start; `run_search_flow` then takes the cluster over with `take`.

Only the `local-cpu` plan (no GPU visible) starts early: it is the layout of the
quickstart and of small machines, where start-up weighs most. GPU clusters, an existing
scheduler and batch jobs start where the flow needs them, as before.
"""

from __future__ import annotations

import atexit
import contextlib
from collections.abc import Iterator
from typing import Any

from a4nn.config import OrchestrationConfig
from flows.cluster import ClusterPlan, local_cluster, plan_cluster, quiet_dask_logs

_held: tuple[ClusterPlan, Any, contextlib.ExitStack] | None = None


def prestart(orch: OrchestrationConfig) -> bool:
    """Start the planned cluster now if it is a local CPU one; True if it did."""
    global _held
    if _held is not None:
        return True
    plan = plan_cluster(orch)
    if plan.kind != "local-cpu":
        return False
    stack = contextlib.ExitStack()
    stack.enter_context(quiet_dask_logs())  # before the workers read their environment
    cluster = stack.enter_context(
        local_cluster(plan.n_workers, plan.threads_per_worker, wait=False)
    )
    _held = (plan, cluster, stack)
    atexit.register(_close_unclaimed)
    return True


@contextlib.contextmanager
def take(plan: ClusterPlan) -> Iterator[Any | None]:
    """The prestarted cluster if it is the one `plan` describes, closed at exit; else None.

    A prestarted cluster that does not match (the config changed in between) is closed.
    """
    global _held
    held, _held = _held, None
    if held is None:
        yield None
        return
    held_plan, cluster, stack = held
    with stack:
        yield cluster if held_plan == plan else None


def _close_unclaimed() -> None:
    """At exit: close a cluster nobody took (the run failed before its flow started)."""
    global _held
    held, _held = _held, None
    if held is not None:
        held[2].close()
