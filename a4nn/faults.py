"""Telling a model's own faults from the infrastructure's.

A model fails for what it is (an architecture that builds no network, a NaN loss): that
is recorded, told to the NAS, and the search goes on. Everything else (a full disk, a
file that cannot be written or read for permissions, a worker lost again and again) says
nothing about the model: recording it as a failed model would hand the NAS a fitness of
0 for a good architecture and never retrain it. Such a fault is raised as
`InfrastructureError`: the search stops with the message, the model stays unfinished,
and `a4nn run --resume` trains it again once the fault is fixed.
"""

from __future__ import annotations

import errno

INFRASTRUCTURE_ERRNOS = frozenset(
    {errno.ENOSPC, errno.EDQUOT, errno.EROFS, errno.EACCES, errno.EPERM, errno.EIO, errno.EEXIST}
)


class InfrastructureError(RuntimeError):
    """A fault of the machine, not of the model (the message names the model and the cause)."""


def infrastructure_cause(err: BaseException) -> OSError | None:
    """The OSError of the infrastructure behind `err` (itself or a cause), if any."""
    seen: set[int] = set()
    cur: BaseException | None = err
    while cur is not None and id(cur) not in seen:
        seen.add(id(cur))
        if isinstance(cur, OSError) and cur.errno in INFRASTRUCTURE_ERRNOS:
            return cur
        cur = cur.__cause__ or cur.__context__
    return None
