"""Dask worker preload: once a local worker's close has run, end its process at once.

A worker that trained models holds torch, Prefect and their extension modules; Python's
interpreter teardown after the worker closes then takes most of a second (0.85 s per
worker on the 2-core development VM), and the cluster's `close()`, so every `a4nn run`,
waits for it. This preload arms an exit hook that ends the process with `os._exit(0)`
once the worker's close has run (`dask_teardown`), skipping the module teardown.

What still runs first: everything registered with `threading` for interpreter exit
(Prefect sends its last events and logs that way, and Python joins the standard thread
pools, such as the one that writes checkpoints) and every `atexit` hook registered after
this preload (preloads run at worker start, before the first task imports Prefect).
What is skipped: `atexit` hooks registered before it (Dask's own clean-ups of a process
about to end, and a coverage tool's save hook: do not measure worker coverage with this
preload), object finalizers, and module teardown. A worker whose close never ran (it
crashed, or was killed) exits the normal way with its own exit code; after a close, the
exit code is 0 whatever the reason for the close, which the nanny only logs.

Used for the local CPU/GPU clusters `a4nn run` starts; dask-cuda's `LocalCUDACluster`
and batch-job workers are left alone.
"""

from __future__ import annotations

import atexit
from typing import Any

from a4nn.quick_exit import flush_and_exit

_armed = False
_closed_cleanly = False


def _exit_now() -> None:
    if _closed_cleanly:
        flush_and_exit(0)


def dask_setup(worker: Any) -> None:
    global _armed
    atexit.register(_exit_now)
    _armed = True


def dask_teardown(worker: Any) -> None:
    global _closed_cleanly
    _closed_cleanly = True
