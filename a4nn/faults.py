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


class UserError(Exception):
    """An error whose message is the whole story for the user."""


def user_errors() -> tuple[type[BaseException], ...]:
    """Errors of the user's making (a config, file, value or folder) whose message is the
    whole story: `a4nn` prints it without a traceback and exits 2, and the flow ends its
    run Failed with it rather than logging a traceback (`flows.search_flow`)."""
    errors: list[type[BaseException]] = [
        UserError,
        ValueError,
        FileNotFoundError,
        FileExistsError,
        PermissionError,
        NotADirectoryError,
        IsADirectoryError,
    ]
    from a4nn.scheduler import SchedulerError
    from lineage.run_lock import RunInUseError

    errors += [RunInUseError, SchedulerError]
    try:
        from lineage.dataverse import DataverseError

        errors.append(DataverseError)
    except ImportError:  # pragma: no cover - pyDataverse is a core dependency
        pass
    return tuple(errors)


def is_machine_fault(err: BaseException) -> bool:
    """An `InfrastructureError`, or an OSError of the machine (a full disk, a read-only or
    failing file system) raised outside a model's training, e.g. writing the run's tables;
    `a4nn` exits 3 for it. A permission error stays the user's (a folder they chose)."""
    if isinstance(err, InfrastructureError):
        return True
    return (
        isinstance(err, OSError)
        and not isinstance(err, user_errors())
        and infrastructure_cause(err) is not None
    )


def is_reported(err: BaseException) -> bool:
    """Whether `err` ends a search with one message and no traceback: a user's error
    (status 2) or a fault of the machine (status 3). Anything else is a bug and keeps its
    traceback."""
    return isinstance(err, user_errors()) or is_machine_fault(err)


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
