"""Dask worker preload: a local worker process ignores SIGINT (Ctrl-C).

A Ctrl-C in a terminal goes to its whole foreground process group: `a4nn run` and the
worker processes of the local cluster it started. `a4nn run` stops the search, records
that it stopped and closes the cluster, which stops its workers in order; a worker
interrupted on its own would only print a `KeyboardInterrupt` traceback and lose the
model it trains without a word. Used for the local clusters `a4nn run` builds
(`flows/cluster.py:local_cluster`).
"""

from __future__ import annotations

import signal
import threading
from typing import Any

PRELOAD = "flows.no_interrupt"
"""The module name to pass as a Dask preload."""


def dask_setup(worker: Any) -> None:
    # preloads run on the worker's event loop, the process's main thread (the only
    # thread that may set a signal handler); anywhere else, leave it
    if threading.current_thread() is threading.main_thread():
        signal.signal(signal.SIGINT, signal.SIG_IGN)
