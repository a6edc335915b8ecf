"""Per-epoch checkpoints that load without unpickling code.

Weights go through `torch.save` of plain tensors and containers and come back with
`torch.load(weights_only=True)`; the architecture is rebuilt from its genome, never
unpickled. Each file's SHA-256 is recorded so a corrupt or truncated checkpoint is
detected before it is used.
"""

from __future__ import annotations

import hashlib
import io
from collections.abc import Callable
from pathlib import Path
from typing import Any

import torch

from lineage.atomic import atomic_write_bytes


class CheckpointError(RuntimeError):
    """A checkpoint that is missing, corrupt, or fails its checksum."""


def sha256_bytes(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def sha256_file(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as fh:
        for block in iter(lambda: fh.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def serialize_state(state: dict[str, Any]) -> bytes:
    """Bytes of a checkpoint (tensors, numbers, strings, lists, dicts only)."""
    buf = io.BytesIO()
    torch.save(state, buf)
    return buf.getvalue()


def save_checkpoint(path: Path, state: dict[str, Any]) -> str:
    """Write `state` atomically and return its SHA-256."""
    data = serialize_state(state)
    atomic_write_bytes(Path(path), data)
    return sha256_bytes(data)


def load_checkpoint(path: Path, expected_sha256: str | None = None) -> dict[str, Any]:
    """Load a checkpoint safely; verify its checksum first when one is given.

    `expected_sha256=None` skips the check; a recorded but blank or non-text checksum (a
    table cell left empty) is a CheckpointError: the file cannot be verified.
    """
    path = Path(path)
    if expected_sha256 is not None and (
        not isinstance(expected_sha256, str) or not expected_sha256
    ):
        raise CheckpointError(
            f"checkpoint {path} has no recorded SHA-256 (got {expected_sha256!r}), so it "
            "cannot be verified; use an epoch whose checkpoint was recorded"
        )
    if not path.is_file():
        raise CheckpointError(f"checkpoint not found: {path}")
    data = path.read_bytes()
    if expected_sha256 and sha256_bytes(data) != expected_sha256:
        raise CheckpointError(
            f"checkpoint {path} is corrupt: SHA-256 {sha256_bytes(data)[:12]}… does not match "
            f"the recorded {expected_sha256[:12]}… (truncated or overwritten file); "
            "retrain that epoch or use an earlier checkpoint"
        )
    try:
        return torch.load(io.BytesIO(data), map_location="cpu", weights_only=True)
    except Exception as err:  # torch raises several types for bad archives
        raise CheckpointError(f"checkpoint {path} cannot be read: {err}") from None


def snapshot(obj: Any) -> Any:
    """A detached CPU copy of a (nested) state dict, so training can go on mutating it."""
    if isinstance(obj, torch.Tensor):
        return obj.detach().to("cpu", copy=True)
    if isinstance(obj, dict):
        return {k: snapshot(v) for k, v in obj.items()}
    if isinstance(obj, list | tuple):
        return type(obj)(snapshot(v) for v in obj)
    return obj


def _save_then(path: Path, state: dict[str, Any], after: Callable[[str], None] | None) -> str:
    sha = save_checkpoint(path, state)
    if after is not None:
        after(sha)
    return sha


class CheckpointWriter:
    """Writes checkpoints on a background thread so training does not wait for the disk.

    `submit` takes a snapshot (the only foreground cost; pass `copied=True` for a state
    the caller snapshotted itself) and returns at once; `done()` yields the checkpoints
    finished since the last call with their SHA-256, and `done(wait=True)` waits for all
    of them. Writes stay atomic, so a crash mid-write leaves no torn file. An
    `after(sha256)` given to `submit` runs on the writer thread once that checkpoint is
    on disk, in submission order (the trainer records the epoch there, so a table row
    never names a checkpoint still being written; it may name one that retention
    deleted meanwhile, which a resume skips like any checkpoint that does not verify).
    """

    def __init__(self) -> None:
        from concurrent.futures import ThreadPoolExecutor

        self._pool = ThreadPoolExecutor(max_workers=1, thread_name_prefix="a4nn-ckpt")
        self._pending: list[tuple[Any, Any]] = []
        self.failures: list[BaseException] = []

    def submit(
        self,
        path: Path,
        state: dict[str, Any],
        tag: Any,
        after: Callable[[str], None] | None = None,
        *,
        copied: bool = False,
    ) -> None:
        copy = state if copied else snapshot(state)
        self._pending.append((tag, self._pool.submit(_save_then, Path(path), copy, after)))

    def done(self, wait: bool = False) -> list[tuple[Any, str]]:
        """(tag, sha256) of finished writes; with `wait`, of all pending writes.

        A write that failed (the checkpoint, or its `after`) is not among them: its error
        is appended to `failures`, once, for the caller to report.
        """
        out, still = [], []
        for tag, fut in self._pending:
            if not (wait or fut.done()):
                still.append((tag, fut))
            elif fut.exception() is not None:
                self.failures.append(fut.exception())
            else:
                out.append((tag, fut.result()))
        self._pending = still
        return out

    def close(self) -> None:
        self._pool.shutdown(wait=True)
