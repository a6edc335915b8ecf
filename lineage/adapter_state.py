"""An adapter's resumable state on disk: JSON, with its numpy arrays in an `.npz` beside it.

A NAS method's state is mostly JSON (counters, RNG state, population), but some hold
arrays (a PPO controller's weights). Each array found at any depth of the state (a numpy
array, or anything with `.detach().cpu().numpy()` such as a torch tensor) is replaced in
the JSON by `{"$array": "a0"}` and stored under that key in `adapter_state.npz`, which is
read back with `allow_pickle=False`: loading a state never runs code. Arrays come back as
numpy arrays (an adapter turns them back into tensors itself).

A state that grows with the search (every candidate, result and seen architecture) would
cost O(models) to rebuild, encode and write at every save. An adapter may therefore hand
its state over in two parts (`Adapter.state_parts`, docs/plugins.md): a small head, saved
whole each time as above, and append-only logs (lists the adapter only ever appends JSON
items to). `StateStore` appends each log's new items to `adapter_state.log.jsonl`, one
line per save, and then writes the head with the log's length (`"$log"`); the head is
written last, so a save killed in between leaves the previous head, which reads only the
log's first `bytes` bytes. Loading joins the logs back into the head as lists: the state
`load_state_dict` gets is the same as `state_dict()` would have given.
"""

from __future__ import annotations

import io
import json
import os
import uuid
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from lineage.atomic import atomic_write_bytes, atomic_write_text, read_json

ARRAY_KEY = "$array"
LOG_KEY = "$log"


def _as_array(value: Any) -> np.ndarray | None:
    if isinstance(value, np.ndarray):
        return value
    detach = getattr(value, "detach", None)
    if callable(detach):  # a torch tensor, without importing torch
        return np.asarray(detach().cpu().numpy())
    return None


def split_arrays(state: Any) -> tuple[Any, dict[str, np.ndarray]]:
    """The state with every array replaced by a reference, and the arrays by key."""
    arrays: dict[str, np.ndarray] = {}

    def walk(value: Any) -> Any:
        arr = _as_array(value)
        if arr is not None:
            if arr.dtype == object:
                raise TypeError("adapter state: arrays of Python objects cannot be stored")
            key = f"a{len(arrays)}"
            arrays[key] = arr
            return {ARRAY_KEY: key}
        if isinstance(value, dict):
            return {k: walk(v) for k, v in value.items()}
        if isinstance(value, list | tuple):
            return [walk(v) for v in value]
        return value

    return walk(state), arrays


def join_arrays(state: Any, arrays: dict[str, np.ndarray]) -> Any:
    """Inverse of `split_arrays`."""
    if isinstance(state, dict):
        if set(state) == {ARRAY_KEY}:
            return arrays[state[ARRAY_KEY]]
        return {k: join_arrays(v, arrays) for k, v in state.items()}
    if isinstance(state, list):
        return [join_arrays(v, arrays) for v in state]
    return state


def log_path_of(json_path: Path) -> Path:
    """The append-only log beside a state's JSON (`adapter_state.log.jsonl`)."""
    return json_path.with_name(json_path.stem + ".log.jsonl")


class StateStore:
    """An adapter's state on disk: head JSON, arrays `.npz`, append-only log (see above).

    Remembers how many items of each log it has written, so that each save appends only
    the new ones: its cost is the head's, not the search's. Writes are atomic but not
    fsynced (`sync` does that, for a group of saves): a killed process loses nothing.
    """

    def __init__(self, json_path: Path) -> None:
        self.path = Path(json_path)
        self.npz = self.path.with_suffix(".npz")
        self.log = log_path_of(self.path)
        self._log_id: str | None = None  # None: no log of this store's yet
        self._bytes = 0
        self._counts: dict[str, int] = {}
        self._npz: bool | None = None  # whether an .npz of this store's is there
        self._log_gone: bool | None = None  # whether no log is there (None: not known)

    def save(self, head: dict[str, Any], logs: Mapping[str, Sequence[Any]] | None = None) -> None:
        """Write the arrays, append the logs' new items, then the head that covers them."""
        doc, arrays = split_arrays(head)
        if arrays:
            buf = io.BytesIO()
            np.savez(buf, **arrays)
            atomic_write_bytes(self.npz, buf.getvalue(), durable=False)
            self._npz = True
        elif self._npz is not False:  # one there (None: not known yet)
            self.npz.unlink(missing_ok=True)
            self._npz = False
        if logs:
            clash = sorted(set(logs) & set(doc))
            if clash:
                raise ValueError(f"adapter state: {clash} both in the head and in the logs")
            doc[LOG_KEY] = self._append(logs)
        elif self._log_id is not None:  # a whole state now: the log is not needed
            self._log_id, self._bytes, self._counts = None, 0, {}
        # compact: json's C encoder (an indented dump is Python's, 10x slower)
        atomic_write_text(self.path, json.dumps(doc, separators=(",", ":")), durable=False)
        if not logs and self._log_gone is not True:
            self.log.unlink(missing_ok=True)
            self._log_gone = True

    def _append(self, logs: Mapping[str, Sequence[Any]]) -> dict[str, Any]:
        self._log_gone = False
        if self._log_id is None:  # a new log, replacing any other atomically
            self._log_id, self._counts = uuid.uuid4().hex, {}
            first = json.dumps({LOG_KEY: self._log_id}) + "\n"
            atomic_write_text(self.log, first, durable=False)
            self._bytes = len(first.encode())
        elif os.path.getsize(self.log) != self._bytes:  # a save killed before its head
            os.truncate(self.log, self._bytes)
        new: dict[str, list[Any]] = {}
        for key, items in logs.items():
            done = self._counts.get(key, 0)
            if len(items) < done:
                raise ValueError(
                    f"adapter state: log {key!r} shrank from {done} to {len(items)} items; "
                    "a log is append-only (docs/plugins.md)"
                )
            if len(items) > done:
                new[key] = list(items[done:])
        if new:
            line = (json.dumps(new, separators=(",", ":")) + "\n").encode()
            with open(self.log, "ab") as fh:
                fh.write(line)
            self._bytes += len(line)
            for key, items in new.items():
                self._counts[key] = self._counts.get(key, 0) + len(items)
        counts = {key: self._counts.get(key, 0) for key in logs}
        return {"file": self.log.name, "id": self._log_id, "bytes": self._bytes, "counts": counts}

    def load(self) -> dict[str, Any] | None:
        """The saved state, arrays and logs joined in, or None when there is none; later
        saves append to the log from where that state ends."""
        if not self.path.exists():
            return None
        doc = read_json(self.path)
        ref = doc.pop(LOG_KEY, None)
        self._npz = None
        if self.npz.exists():
            with np.load(self.npz, allow_pickle=False) as data:
                arrays = {k: data[k] for k in data.files}
            doc = join_arrays(doc, arrays)
        if ref is None:
            self._log_id, self._bytes, self._counts = None, 0, {}
            return doc
        lists = self._read_log(ref)
        doc.update(lists)
        self._log_id, self._bytes = str(ref["id"]), int(ref["bytes"])
        self._counts = {k: len(v) for k, v in lists.items()}
        return doc

    def _read_log(self, ref: dict[str, Any]) -> dict[str, list[Any]]:
        size = int(ref["bytes"])
        try:
            with open(self.log, "rb") as fh:
                data = fh.read(size)
        except FileNotFoundError:
            data = b""
        lines = data.split(b"\n")
        if len(data) < size or lines[-1] != b"":
            raise ValueError(
                f"{self.log}: {len(data)} bytes, but {self.path.name} needs the first {size}: "
                "the adapter's state log was lost or cut (a crash of the machine before the "
                "driver's last sync?); the run cannot be resumed exactly"
            )
        head = json.loads(lines[0])
        if head.get(LOG_KEY) != ref["id"]:
            raise ValueError(
                f"{self.log} is not the log {self.path.name} was written with "
                f"(log {head.get(LOG_KEY)!r}, state {ref['id']!r})"
            )
        lists: dict[str, list[Any]] = {key: [] for key in ref["counts"]}
        for line in lines[1:-1]:
            for key, items in json.loads(line).items():
                lists.setdefault(key, []).extend(items)
        got = {k: len(v) for k, v in lists.items()}
        if got != {k: int(n) for k, n in ref["counts"].items()}:
            raise ValueError(f"{self.log}: items {got}, {self.path.name} expects {ref['counts']}")
        return lists

    def files(self) -> list[Path]:
        """The files a saved state consists of (for `sync`, bundles)."""
        return [p for p in (self.npz, self.log, self.path) if p.exists()]


def save_state(json_path: Path, state: dict[str, Any]) -> None:
    """Write a whole state (arrays first, then the JSON that refers to them), durably."""
    doc, arrays = split_arrays(state)
    npz = json_path.with_suffix(".npz")
    if arrays:
        buf = io.BytesIO()
        np.savez(buf, **arrays)
        atomic_write_bytes(npz, buf.getvalue())
    else:
        npz.unlink(missing_ok=True)
    atomic_write_text(json_path, json.dumps(doc, separators=(",", ":")))
    log_path_of(json_path).unlink(missing_ok=True)


def load_state(json_path: Path) -> dict[str, Any] | None:
    """The saved state, arrays and logs included, or None when there is none."""
    return StateStore(json_path).load()
