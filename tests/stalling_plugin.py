"""Test plugin: registers `nsganet-stalling`, a broken adapter.

It is NSGA-Net, except that it proposes nothing and is never done. A run config lists
this module under `plugins:` (tests/test_faults_flow.py, benchmarks/faults/inject.py), so
that every process of the run registers it.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from a4nn.registry import create_adapter, register_adapter
from a4nn.space import SearchSpace


class Stalling:
    """NSGA-Net, except that it proposes nothing and is never done (a broken adapter)."""

    def __init__(self, inner: Any) -> None:
        self.inner = inner

    def __getattr__(self, name: str) -> Any:
        return getattr(self.inner, name)

    def ask(self, *a: Any, **k: Any) -> list[Any]:
        return []

    def done(self) -> bool:
        return False


def make_stalling(space: SearchSpace, options: Mapping[str, Any], seed: int) -> Stalling:
    return Stalling(create_adapter("nsganet", space, options, seed))


register_adapter("nsganet-stalling", make_stalling, replace=True)
