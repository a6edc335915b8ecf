"""An adapter's resumable state on disk: JSON, with its numpy arrays in an `.npz` beside it.

A NAS method's state is mostly JSON (counters, RNG state, population), but some hold
arrays (a PPO controller's weights). Each array found at any depth of the state (a numpy
array, or anything with `.detach().cpu().numpy()` such as a torch tensor) is replaced in
the JSON by `{"$array": "a0"}` and stored under that key in `adapter_state.npz`, which is
read back with `allow_pickle=False`: loading a state never runs code. Arrays come back as
numpy arrays (an adapter turns them back into tensors itself).
"""

from __future__ import annotations

import io
import json
from pathlib import Path
from typing import Any

import numpy as np

from lineage.atomic import atomic_write_bytes, atomic_write_text, read_json

ARRAY_KEY = "$array"


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


def save_state(json_path: Path, state: dict[str, Any]) -> None:
    """Write the arrays first, then the JSON that refers to them (each atomically)."""
    doc, arrays = split_arrays(state)
    npz = json_path.with_suffix(".npz")
    if arrays:
        buf = io.BytesIO()
        np.savez(buf, **arrays)
        atomic_write_bytes(npz, buf.getvalue())
    else:
        npz.unlink(missing_ok=True)
    # compact: json's C encoder (an indented dump is Python's, 10x slower on a large state)
    atomic_write_text(json_path, json.dumps(doc, separators=(",", ":")))


def load_state(json_path: Path) -> dict[str, Any] | None:
    """The saved state, arrays included, or None when there is none."""
    if not json_path.exists():
        return None
    doc = read_json(json_path)
    npz = json_path.with_suffix(".npz")
    if not npz.exists():
        return doc
    with np.load(npz, allow_pickle=False) as data:
        arrays = {k: data[k] for k in data.files}
    return join_arrays(doc, arrays)
