"""Dask worker preload: once a local worker has closed cleanly, end its process at once.

A worker that trained models holds torch, Prefect and their extension modules; Python's
interpreter teardown after the worker closes then takes most of a second (measured 0.85 s
on the 2-core development VM), and the cluster's `close()`, so every `a4nn run`, waits
for it. This preload registers an exit hook before anything else in the process does
(preloads run at worker start, before the first task imports Prefect), so the hook runs
*last*, after Prefect's own exit hooks have flushed its events and logs to the API; it
then skips only the interpreter's module teardown. A worker that did not close cleanly
(`dask_teardown` not reached) exits the normal way, with its own exit code.

Used for the local clusters `a4nn run` starts; batch-job workers are left alone.
"""

from __future__ import annotations

import atexit
import contextlib
import logging
import os
import sys
from typing import Any

_closed_cleanly = False


def _exit_now() -> None:
    if not _closed_cleanly:
        return
    logging.shutdown()  # registered before this hook, so it would otherwise be skipped
    for stream in (sys.stdout, sys.stderr):
        with contextlib.suppress(OSError, ValueError):  # closed or detached stream
            stream.flush()
    os._exit(0)


def dask_setup(worker: Any) -> None:
    atexit.register(_exit_now)


def dask_teardown(worker: Any) -> None:
    global _closed_cleanly
    _closed_cleanly = True
