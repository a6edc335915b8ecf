"""Test plugin: registers the `random`, `evolution` and `ppo` adapters of this checkout.

The registry reads entry points from the *installed* package's metadata, which may
predate these adapters; a run config lists this module under `plugins:` so that every
process of a run (the CLI, the flow, each Dask worker) registers them from the code
under test. Each is wrapped so that a test can interrupt a run once: with
A4NN_TEST_INTERRUPT_AFTER=<model id> in the environment, the `tell` that hands back that
model's result raises KeyboardInterrupt (as Ctrl-C would), after the adapter took it
and before the run directory saved the adapter's new state.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Mapping
from typing import Any

from a4nn.registry import register_adapter
from a4nn.types import Result
from adapters.evolution.algorithm import make_evolution
from adapters.ppo.algorithm import make_ppo
from adapters.random_search.algorithm import make_random

INTERRUPT_AFTER = "A4NN_TEST_INTERRUPT_AFTER"


class Interrupting:
    """An adapter, unchanged, whose `tell` may raise KeyboardInterrupt once (see above)."""

    def __init__(self, inner: Any) -> None:
        self.inner = inner

    def __getattr__(self, attr: str) -> Any:
        return getattr(self.inner, attr)

    def tell(self, results: list[Result]) -> None:
        self.inner.tell(results)
        stop = os.environ.get(INTERRUPT_AFTER)
        if stop is not None and any(r.model_id == int(stop) for r in results):
            del os.environ[INTERRUPT_AFTER]
            raise KeyboardInterrupt


def _wrapped(factory: Callable[..., Any]) -> Callable[..., Any]:
    def make(space: Any, options: Mapping[str, Any], seed: int) -> Interrupting:
        return Interrupting(factory(space, options, seed))

    return make


FACTORIES = {"random": make_random, "evolution": make_evolution, "ppo": make_ppo}
for _name, _factory in FACTORIES.items():
    register_adapter(_name, _wrapped(_factory), replace=True)
