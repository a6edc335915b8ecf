"""One writer per run directory: an exclusive OS lock held while a search runs in it.

`a4nn run` (and `--resume`) takes `RUN_DIR/.a4nn.lock` through `filelock` before it
writes anything, and keeps it until the search ends. The lock is the operating system's
(`flock`): it dies with its process, so a lock left by a killed run is simply free
again. Beside it, `.a4nn.lock.json` names the holder (host, process id, since when), so
a second run on the same directory is refused with who holds it.
"""

from __future__ import annotations

import json
import os
import socket
from datetime import UTC, datetime
from pathlib import Path

from filelock import FileLock, Timeout

from lineage.atomic import atomic_write_json

LOCK_NAME = ".a4nn.lock"
HOLDER_NAME = ".a4nn.lock.json"


class RunInUseError(RuntimeError):
    """Another process holds the run directory's lock (the message names it)."""


class RunLock:
    """The exclusive lock of one run directory (see the module docstring)."""

    def __init__(self, root: Path) -> None:
        self.root = Path(root)
        self._lock = FileLock(self.root / LOCK_NAME, is_singleton=False)

    def acquire(self) -> RunLock:
        """Take the lock now, or raise RunInUseError naming the holder."""
        self.root.mkdir(parents=True, exist_ok=True)
        try:
            self._lock.acquire(timeout=0)
        except Timeout:
            raise RunInUseError(
                f"{self.root} is in use by another a4nn run ({self.holder()}); wait for it "
                "to end, stop it, or choose another --out"
            ) from None
        atomic_write_json(
            self.root / HOLDER_NAME,
            {
                "host": socket.gethostname(),
                "pid": os.getpid(),
                "since": datetime.now(UTC).isoformat(timespec="seconds"),
            },
        )
        return self

    def holder(self) -> str:
        """Who holds the lock, as far as the holder file says."""
        try:
            info = json.loads((self.root / HOLDER_NAME).read_text())
            return f"process {info['pid']} on host {info['host']}, since {info['since']}"
        except (OSError, ValueError, KeyError):
            return "holder unknown"

    def release(self) -> None:
        if self._lock.is_locked:
            (self.root / HOLDER_NAME).unlink(missing_ok=True)
            self._lock.release()
