"""Adapter registry: a NAS method's name -> a factory building its ask/tell adapter.

Built-in adapters are listed as "module:function" strings and imported on first use, so
that looking one up does not import every method's dependencies. Others register a
callable with `register`. Every factory takes `preset`, `seed` and keyword overrides.
"""

from __future__ import annotations

import importlib
from collections.abc import Callable
from typing import Any

from adapters.base import Adapter

AdapterFactory = Callable[..., Adapter]

_BUILTIN: dict[str, str] = {
    "nsganet": "adapters.nsganet.algorithm:make_nsganet",
}
_REGISTERED: dict[str, AdapterFactory] = {}


def register(name: str, factory: AdapterFactory | str, *, replace: bool = False) -> None:
    """Add an adapter factory (a callable, or a lazy "module:function" string)."""
    if not replace and (name in _REGISTERED or name in _BUILTIN):
        raise ValueError(f"adapter {name!r} is already registered; pass replace=True to override")
    if isinstance(factory, str):
        _BUILTIN[name] = factory
        _REGISTERED.pop(name, None)
    else:
        _REGISTERED[name] = factory
        _BUILTIN.pop(name, None)


def available() -> list[str]:
    """Names `make_adapter` accepts."""
    return sorted(set(_BUILTIN) | set(_REGISTERED))


def get_factory(name: str) -> AdapterFactory:
    if name in _REGISTERED:
        return _REGISTERED[name]
    if name not in _BUILTIN:
        raise ValueError(f"unknown NAS adapter {name!r}; available: {available()}")
    module, _, attr = _BUILTIN[name].partition(":")
    factory = getattr(importlib.import_module(module), attr)
    _REGISTERED[name] = factory
    return factory


def make_adapter(
    name: str = "nsganet", *, preset: str | None = None, seed: int = 0, **overrides: Any
) -> Adapter:
    """Build the adapter `name` from its preset (None: the method's default) and overrides."""
    return get_factory(name)(preset=preset, seed=seed, **overrides)
