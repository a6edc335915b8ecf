"""Dask worker preload: start warming a local worker the moment its process starts.

A worker imports torch and Prefect's task engine and loads the run's data before its
first model can train. The flow also asks for that warm-up with a task
(`search_flow.warm_workers`), but only once the cluster is up and its client connected;
with this preload the worker begins the same warm-up in a background thread as soon as
it starts, with the run's configuration (Prefect's task engine is imported before that
thread starts: see `dask_setup`). Whichever comes second finds the work done
(the worker cache is keyed by the config and locked, so nothing is loaded twice).

A failure here is left to the training tasks, which load the same things and report
errors properly: the thread only logs a one-line warning. Used for the local clusters
`a4nn run` builds (`flows/cluster.py:local_cluster`).
"""

from __future__ import annotations

import json
import logging
import threading
from typing import Any

import click

logger = logging.getLogger(__name__)

PRELOAD = "flows.warm_start"
"""The module name to pass as a Dask preload (with `argv(config)` as its preload_argv)."""


def argv(config: dict[str, Any]) -> list[str]:
    """This preload's arguments for a run configuration (its JSON form)."""
    return [json.dumps(config, sort_keys=True)]


def warm(config: dict[str, Any]) -> None:
    """Import the training stack and load the data, as the first model would."""
    import prefect.task_engine  # noqa: F401  (runs every task run on this worker)

    from flows import worker_cache

    worker_cache.get_context(config)


def _warm_logged(config: dict[str, Any]) -> None:
    try:
        warm(config)
    except Exception as err:  # the first training task meets it again and records it
        logger.warning(
            "warming this worker failed (%s: %s); its first model will retry",
            type(err).__name__,
            err,
        )


@click.command()
@click.argument("config_json")
def dask_setup(worker: Any, config_json: str) -> None:
    config = json.loads(config_json)
    # Prefect is imported here, in the preload's foreground, before the worker sets up
    # its plugins (which import Prefect too): imported from the background thread at the
    # same time, Prefect's modules that import each other lazily made Python report a
    # "deadlock detected by _ModuleLock" and the worker's plugins fail to initialise
    # (seen on workers the nanny restarts). The data is what takes long: the thread
    # loads it.
    import prefect.task_engine  # noqa: F401

    threading.Thread(
        target=_warm_logged, args=(config,), name="a4nn-warm-start", daemon=True
    ).start()
