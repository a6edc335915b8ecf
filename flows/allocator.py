"""Undo Dask's aggressive malloc trimming in a training worker (glibc only).

Dask's nanny starts every worker process with `MALLOC_TRIM_THRESHOLD_=65536`
(`distributed.nanny.pre-spawn-environ`) so that workers hand freed memory back to the
OS. Setting that variable also freezes glibc's mmap threshold at 128 KiB, so every
activation and gradient buffer of a training step is a fresh `mmap` whose pages fault
in zeroed: measured here, a quickstart model trained 2.2-2.9x slower inside a Dask worker
than in a plain process, with 1 or 2 threads (benchmarks/scheduling/malloc_trim.md). `relax_malloc_trim` raises both thresholds
in the running process (`mallopt`), which restores plain-process speed for any cluster
(local, an existing scheduler, SLURM/PBS) without touching how the workers were started.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import os

M_TRIM_THRESHOLD = -1  # glibc <malloc.h>
M_MMAP_THRESHOLD = -3
MMAP_THRESHOLD_BYTES = 32 * 2**20  # glibc's largest allowed value on 64-bit
TRIM_THRESHOLD_BYTES = 64 * 2**20


def relax_malloc_trim() -> bool:
    """Raise glibc's mmap and trim thresholds if Dask lowered them; True if it did."""
    if "MALLOC_TRIM_THRESHOLD_" not in os.environ:
        return False
    name = ctypes.util.find_library("c")
    try:
        libc = ctypes.CDLL(name or "libc.so.6")
        mallopt = libc.mallopt
    except (OSError, AttributeError):  # not glibc (macOS, musl): nothing to undo
        return False
    ok = mallopt(M_MMAP_THRESHOLD, MMAP_THRESHOLD_BYTES) == 1
    return mallopt(M_TRIM_THRESHOLD, TRIM_THRESHOLD_BYTES) == 1 and ok
