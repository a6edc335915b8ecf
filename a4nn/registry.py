"""Where search spaces and NAS adapters are found by name.

Three ways in, all equal:

- a package's entry points, in the groups `a4nn.spaces` and `a4nn.adapters`
  (`name = "module:factory"`; A4NN's own NSGA-Net is registered this way in
  pyproject.toml, so this module names no adapter or space);
- `plugins:` in the run config: modules imported before the config is validated, in
  every process that reads the config (the CLI, the flow, each Dask worker,
  `a4nn.reload.load_model`), which call `register_space` / `register_adapter`;
- a direct call of `register_space` / `register_adapter`.

Factories:

- a space factory takes the `search.space_options` mapping and returns a `SearchSpace`;
- an adapter factory takes `(space, options, seed)` and returns an `Adapter`.

Each validates its options with pydantic (`validate_options`), so a bad option is an
`OptionsError` naming its field.
"""

from __future__ import annotations

import importlib
from collections.abc import Callable, Iterable, Mapping
from importlib.metadata import entry_points
from typing import Any, TypeVar

from pydantic import BaseModel, ValidationError

SpaceFactory = Callable[[Mapping[str, Any]], Any]
AdapterFactory = Callable[[Any, Mapping[str, Any], int], Any]

SPACE_GROUP = "a4nn.spaces"
ADAPTER_GROUP = "a4nn.adapters"

_registered: dict[str, dict[str, Callable[..., Any]]] = {SPACE_GROUP: {}, ADAPTER_GROUP: {}}
_KIND = {SPACE_GROUP: "search space", ADAPTER_GROUP: "NAS adapter"}


class OptionsError(ValueError):
    """Options of a space or adapter that do not validate; the message names each field."""


class PluginError(ValueError):
    """A plugin module that cannot be imported, or a name nothing registers."""


Options = TypeVar("Options", bound=BaseModel)


def validate_options(model: type[Options], options: Mapping[str, Any], where: str) -> Options:
    """`options` validated by `model`; errors name `where.<field>` (e.g. search.options.pop_size)."""
    try:
        return model.model_validate(dict(options or {}))
    except ValidationError as err:
        problems = []
        for e in err.errors():
            loc = ".".join(str(p) for p in e["loc"])
            msg = e["msg"].removeprefix("Value error, ")
            problems.append(f"{where}.{loc}: {msg}" if loc else f"{where}: {msg}")
        raise OptionsError("; ".join(problems)) from None


def register_space(name: str, factory: SpaceFactory, *, replace: bool = False) -> None:
    """Make the search space `name` available (factory: options mapping -> SearchSpace)."""
    _register(SPACE_GROUP, name, factory, replace)


def register_adapter(name: str, factory: AdapterFactory, *, replace: bool = False) -> None:
    """Make the NAS adapter `name` available (factory: (space, options, seed) -> Adapter)."""
    _register(ADAPTER_GROUP, name, factory, replace)


def _register(group: str, name: str, factory: Callable[..., Any], replace: bool) -> None:
    if not callable(factory):
        raise TypeError(f"{_KIND[group]} {name!r}: the factory must be callable")
    taken = name in _registered[group] and _registered[group][name] is not factory
    if not replace and (taken or name in _entry_points(group)):
        raise PluginError(
            f"{_KIND[group]} {name!r} is already registered; pass replace=True to override"
        )
    _registered[group][name] = factory


def _entry_points(group: str) -> dict[str, Any]:
    return {ep.name: ep for ep in entry_points(group=group)}


def _available(group: str) -> list[str]:
    return sorted(set(_registered[group]) | set(_entry_points(group)))


def available_spaces() -> list[str]:
    """Names `create_space` accepts."""
    return _available(SPACE_GROUP)


def available_adapters() -> list[str]:
    """Names `create_adapter` accepts."""
    return _available(ADAPTER_GROUP)


def _factory(group: str, name: str) -> Callable[..., Any]:
    if name in _registered[group]:
        return _registered[group][name]
    ep = _entry_points(group).get(name)
    if ep is None:
        raise PluginError(
            f"unknown {_KIND[group]} {name!r}; available: {', '.join(_available(group))} "
            "(a plugin's must be listed under `plugins:` in the run config or installed "
            f"with a `{group}` entry point)"
        )
    try:
        factory = ep.load()
    except Exception as err:  # a broken plugin package: say which
        raise PluginError(
            f"{_KIND[group]} {name!r} ({ep.value}) cannot be loaded: {type(err).__name__}: {err}"
        ) from err
    _registered[group][name] = factory
    return factory


def create_space(name: str, options: Mapping[str, Any] | None = None) -> Any:
    """The search space `name` built with its options."""
    return _factory(SPACE_GROUP, name)(dict(options or {}))


def create_adapter(
    name: str, space: Any, options: Mapping[str, Any] | None = None, seed: int = 0
) -> Any:
    """The NAS adapter `name` over `space`, built with its options and seed."""
    return _factory(ADAPTER_GROUP, name)(space, dict(options or {}), int(seed))


def load_plugins(modules: Iterable[str]) -> None:
    """Import each plugin module (they register their spaces and adapters on import)."""
    for module in modules:
        try:
            importlib.import_module(module)
        except Exception as err:
            raise PluginError(
                f"plugins: module {module!r} cannot be imported ({type(err).__name__}: {err}); "
                "it must be importable in every process of the run (installed, or on PYTHONPATH)"
            ) from err
