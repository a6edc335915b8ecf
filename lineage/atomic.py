"""Atomic file writes: write to a temporary file beside the target, then rename.

A run killed at any instant therefore leaves either the old or the new version of a file,
never a torn one: a killed process loses nothing it wrote, since the kernel holds it.
`durable=True` (the default) also fsyncs the file before the rename, so that the new
version survives an OS crash or a power loss too. The driver's per-model run-level files
skip that and are synced in groups instead (`RunDir.sync`; docs/run_dir.md, "Durability").
"""

from __future__ import annotations

import json
import os
import tempfile
import time
from pathlib import Path
from typing import Any

FSYNC_STATS = {"calls": 0, "seconds": 0.0}
"""fsync calls made by this module and `fsync_path`, and the seconds they waited (for
benchmarks: how much of the driver's time waits for the disk)."""


def fsync_fd(fd: int) -> None:
    """`os.fsync`, counted in `FSYNC_STATS`."""
    t0 = time.perf_counter()
    try:
        os.fsync(fd)
    finally:
        FSYNC_STATS["calls"] += 1
        FSYNC_STATS["seconds"] += time.perf_counter() - t0


def fsync_path(path: Path) -> None:
    """fsync a file or a directory (its entries: renames and new files in it)."""
    fd = os.open(path, os.O_RDONLY)
    try:
        fsync_fd(fd)
    finally:
        os.close(fd)


def atomic_write_bytes(path: Path, data: bytes, durable: bool = True) -> None:
    """Replace `path` with `data` atomically (same-directory temp file + os.replace)."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as fh:
            fh.write(data)
            if durable:
                fh.flush()
                fsync_fd(fh.fileno())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def atomic_write_text(path: Path, text: str, durable: bool = True) -> None:
    atomic_write_bytes(path, text.encode("utf-8"), durable)


def atomic_write_json(path: Path, obj: Any) -> None:
    atomic_write_text(path, json.dumps(obj, indent=2, sort_keys=True, default=str) + "\n")


def read_json(path: Path) -> Any:
    """Load JSON, naming the file when it is corrupt."""
    try:
        return json.loads(Path(path).read_text())
    except json.JSONDecodeError as err:
        raise ValueError(f"corrupt JSON file {path}: {err}") from None
