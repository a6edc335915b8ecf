"""End a process whose work is done without Python's interpreter teardown.

Freeing the modules of a process that loaded Prefect, pydantic, pandas and Dask takes
about 0.5 s on the 2-core development VM at the end of every `a4nn run` (0.85 s in a
Dask worker that also holds torch), and nothing is gained by it. `arm()` registers an
`atexit` hook before anything else does, so it runs after every other one (they run in
reverse order): by then Python has joined the non-daemon threads and the other hooks
have run (Prefect's last events, the temporary API's stop, the Dask cluster's close).
Once `done(code)` has been called, the hook flushes the logs and the standard streams
and ends the process with that exit code; object finalizers and module teardown are
skipped. A process that ends without `done` (an exception escaped) exits the normal way.
"""

from __future__ import annotations

import atexit
import contextlib
import logging
import os
import sys

_armed = False
_code: int | None = None


def flush_and_exit(code: int) -> None:
    """Flush logging and stdout/stderr, then end the process now with `code`."""
    logging.shutdown()  # its own hook may be registered before ours, hence skipped
    for stream in (sys.stdout, sys.stderr, sys.__stdout__, sys.__stderr__):
        with contextlib.suppress(AttributeError, OSError, ValueError):  # None, closed...
            stream.flush()
    os._exit(code)


def _at_exit() -> None:
    if _code is not None:
        flush_and_exit(_code)


def arm() -> None:
    """Register the exit hook; call it first thing, before other modules register theirs."""
    global _armed
    if not _armed:
        atexit.register(_at_exit)
        _armed = True


def done(code: int) -> None:
    """The work ended with `code`: at exit, skip the teardown (if `arm` was called)."""
    global _code
    _code = int(code)
