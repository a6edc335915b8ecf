"""Dask worker preload: start warming a local worker the moment its process starts.

A worker imports torch and Prefect's task engine and loads the run's data before its
first model can train. The flow also asks for that warm-up with a task
(`search_flow.warm_workers`), but only once the cluster is up and its client connected;
with this preload the worker begins the same warm-up as soon as it starts, with the
run's configuration. Whichever comes second finds the work done (the worker cache is
keyed by the config and locked, so nothing is loaded twice).

The imports run in the preload itself, before the worker accepts a task; only the data
load runs in a background thread. Importing in a background thread raced the worker's
own imports (a task's deserialization imports Prefect too): Python 3.11 can then fail
with "deadlock detected by _ModuleLock" or, since anyio 4.16 parses its own source at
import time, "SystemError: AST constructor recursion depth mismatch".

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


def import_stack() -> None:
    """Import what every training task run needs (Prefect's task engine, torch, a4nn)."""
    import prefect.task_engine  # noqa: F401  (runs every task run on this worker)
    import prefect.tasks  # noqa: F401  (a submitted task run unpickles into one)
    import torch  # noqa: F401

    import a4nn.dataset  # noqa: F401
    import a4nn.search  # noqa: F401
    import a4nn.train  # noqa: F401
    import flows.worker_cache  # noqa: F401


def warm(config: dict[str, Any]) -> None:
    """Import the training stack and load the data, as the first model would."""
    import_stack()
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
    try:
        import_stack()  # in the foreground: see the module's docstring
    except Exception as err:  # the training tasks import the same and report it
        logger.warning("importing the training stack failed (%s: %s)", type(err).__name__, err)
    threading.Thread(
        target=_warm_logged, args=(config,), name="a4nn-warm-start", daemon=True
    ).start()
