"""Validate the Prefect settings a task run carries to a Dask worker once per worker.

prefect-dask sends each task run the flow's settings (`serialize_context`), and the
worker rebuilds Prefect's `Settings` from them before the task starts
(`prefect.context.hydrated_context`). That rebuild runs every pydantic-settings source
again (environment variables, `.env`, `prefect.toml`, `pyproject.toml`, profiles): about
60 ms of CPU per task run on the 2-core development VM, most of a task run's cost
(benchmarks/scheduling/README.md). A search's task runs all carry the same settings, so
this module keeps the context validated from one serialized form and hands later task
runs a copy of it: `install()` puts a caching wrapper in place of the
`hydrated_context` that Prefect's task engine calls, in this process only.

Same settings as before: the serialized form is the key (compared in full, secrets
included, never written anywhere), so a flow run with other settings gets its own
validation. The one difference: the flow sends only the settings it has set (Prefect
serializes them with `exclude_unset`); the others come from the worker's own sources
(its environment, `.env`, `prefect.toml`, `pyproject.toml`, profiles), which are now read
once per distinct flow settings and worker process, not again for every task run. A
change to those sources while a worker runs reaches its task runs once the flow's own
settings differ or the worker restarts.

The other end of the same round trip: the flow process serializes its settings context
for every task it submits (`SettingsContext.serialize`, a full settings dump: 18 ms of
CPU on a quiet core here, 35-40 ms while a worker trains beside it), although a flow's
submits all happen in one unchanging context. `install_flow_side()` wraps that method so
that each context object is serialized once and each submit gets a deep copy of it;
the gap between two submits went from 35-40 ms to 10-14 ms (the flow-run context and
pickling remain). Prefect never changes a context once made (`temporary_settings` makes
a new one); the cached form is dropped all the same if the context's settings or profile
object is replaced.
"""

from __future__ import annotations

import contextlib
import copy
import json
import threading
from collections import OrderedDict
from collections.abc import Iterator
from typing import Any

_MAX_ENTRIES = 8  # a worker serves one search at a time; a few flows at most
_lock = threading.Lock()
_cache: OrderedDict[str, Any] = OrderedDict()
_stats = {"validated": 0, "reused": 0}
_original: Any = None
_serialized: OrderedDict[tuple[int, bool], tuple[Any, Any, Any, dict[str, Any]]] = OrderedDict()
_original_serialize: Any = None


def _key_part(value: Any) -> Any:
    """JSON stand-in for a value JSON lacks (timedelta, set): equal only if equal."""
    if isinstance(value, (set, frozenset)):
        return sorted(repr(v) for v in value)  # a set's order varies between processes
    return repr(value)


def _settings_context(serialized: dict[str, Any]) -> Any:
    """A fresh `SettingsContext` for `serialized`, validated once per distinct form."""
    from prefect.context import SettingsContext

    key = json.dumps(serialized, sort_keys=True, default=_key_part)
    with _lock:
        ctx = _cache.get(key)
        if ctx is not None:
            _cache.move_to_end(key)
            _stats["reused"] += 1
            return ctx.model_copy()  # a context can be entered once at a time: one per run
    ctx = SettingsContext(**serialized)
    with _lock:
        _remember(_cache, key, ctx)
        _stats["validated"] += 1
    return ctx.model_copy()


def _remember(cache: OrderedDict[Any, Any], key: Any, value: Any) -> None:
    """Store `value` under `key`, dropping the oldest entries past `_MAX_ENTRIES` (hold
    `_lock`)."""
    cache[key] = value
    while len(cache) > _MAX_ENTRIES:
        cache.popitem(last=False)


@contextlib.contextmanager
def cached_hydrated_context(
    serialized_context: dict[str, Any] | None = None, client: Any = None
) -> Iterator[None]:
    """Prefect's `hydrated_context`, with the settings context validated once."""
    settings = (serialized_context or {}).get("settings_context")
    if not settings:
        with _original(serialized_context, client):
            yield
        return
    from prefect.logging.configuration import ensure_logging_setup

    ensure_logging_setup()  # Prefect sets logging up before entering the settings
    rest = {**serialized_context, "settings_context": {}}
    with _settings_context(settings), _original(rest, client):
        yield


def install() -> bool:
    """Use the caching wrapper for task runs in this process; True once it is in place."""
    global _original
    import prefect.task_engine as engine

    with _lock:
        if _original is None:
            current = getattr(engine, "hydrated_context", None)
            if current is None:  # another Prefect: leave it as it is
                return False
            _original = current
            engine.hydrated_context = cached_hydrated_context
    return engine.hydrated_context is cached_hydrated_context


def stats() -> dict[str, int]:
    """How often this process validated settings, and how often it reused them."""
    with _lock:
        return dict(_stats)


def cached_serialize(self: Any, include_secrets: bool = True) -> dict[str, Any]:
    """Prefect's `SettingsContext.serialize`, computed once per context object."""
    key = (id(self), include_secrets)
    with _lock:
        hit = _serialized.get(key)
    # the entry holds the context itself, so its id cannot be reused while cached
    if (
        hit is None
        or hit[0] is not self
        or hit[1] is not self.settings
        or hit[2] is not self.profile
    ):
        form = _original_serialize(self, include_secrets=include_secrets)
        hit = (self, self.settings, self.profile, form)
        with _lock:
            _remember(_serialized, key, hit)
    return copy.deepcopy(hit[3])  # callers may change theirs


def install_flow_side() -> bool:
    """Serialize each settings context once in this (the flow's) process; True once so."""
    global _original_serialize
    from prefect.context import SettingsContext

    with _lock:
        if _original_serialize is None:
            current = SettingsContext.__dict__.get("serialize")
            if current is None:  # another Prefect: leave it as it is
                return False
            _original_serialize = current
            SettingsContext.serialize = cached_serialize
    return SettingsContext.__dict__.get("serialize") is cached_serialize
