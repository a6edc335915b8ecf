"""The `Adapter` protocol: how the scheduler drives any NAS method.

    while not adapter.done():
        cands = adapter.ask()          # generational: a whole generation
        ...train them...               # steady_state: ask(1) whenever a slot frees up
        adapter.tell(results)          # any order, any grouping
        save(adapter.state_dict())     # JSON (numpy arrays allowed); load_state_dict resumes

An adapter declares its `mode` ("generational": the scheduler waits for the whole batch
before telling it; "steady_state": it asks for one candidate whenever a worker frees up)
and its `objectives` (named `Result` metrics with directions, e.g. fitness max, mflops
min). `ask` returns [] while the adapter waits for results; an adapter that returns []
while nothing is in flight and is not `done()` is a bug the scheduler reports by name.

State: `state_dict()` is JSON-serializable, except that numpy arrays (a controller's
weights, say) may appear at any depth; the run directory stores those in an `.npz`
beside the JSON and loads them without pickle (`lineage.adapter_state`).

Optional: `state_parts() -> (head, logs)`, the same state split into a head that does not
grow with the search and append-only lists of JSON items (every candidate, result, seen
architecture), with `state_dict() == {**head, **logs}`. The session then saves the head
whole and only the logs' new items, so a save costs the same at 10,000 models as at 100
(docs/plugins.md, "A state that grows with the search").
"""

from __future__ import annotations

from typing import Any, Literal, Protocol, runtime_checkable

from a4nn.types import Candidate, Objective, Result

Mode = Literal["generational", "steady_state"]


@runtime_checkable
class Adapter(Protocol):
    """A NAS method behind ask/tell (see the module docstring)."""

    name: str
    mode: Mode
    objectives: tuple[Objective, ...]

    def ask(self, n: int | None = None) -> list[Candidate]:
        """Up to `n` new candidates (None: the next natural batch, e.g. a generation)."""
        ...

    def tell(self, results: list[Result]) -> None:
        """Results of previously asked candidates, in any order."""
        ...

    def done(self) -> bool:
        """True once the whole budget has been asked AND told."""
        ...

    def state_dict(self) -> dict[str, Any]:
        """State (RNG, population, counters, arrays) for an exact resume."""
        ...

    def load_state_dict(self, state: dict[str, Any]) -> None:
        """Restore a `state_dict()`; the adapter then proposes what it would have."""
        ...
