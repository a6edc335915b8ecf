"""Random search behind the ask/tell protocol (`search.adapter: random`).

Each proposal is `space.sample(rng)` (uniform over the choice vector unless the space
documents otherwise); with `unique` (the default) an architecture already proposed is
drawn again, up to 100 times, so no model is trained twice while unseen ones are left.
Proposals do not depend on results, so the search is asynchronous (`steady_state`: a
candidate whenever a worker frees up) and still the same whatever the number of workers.
One `numpy.random.Generator`, seeded from the run's seed, draws everything; its state is
part of `state_dict()`, so a restored adapter proposes exactly what an uninterrupted one
would.

Options (`search.options`):

    max_models: 100    # models proposed in all (>= 1)
    unique: true       # never propose an architecture twice while unseen ones remain
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import numpy as np
from pydantic import BaseModel, ConfigDict, Field

from a4nn.registry import validate_options
from a4nn.space import SearchSpace
from a4nn.types import Candidate, Result
from adapters.common import FITNESS, Ledger, LedgerSearch, Seen, check_ask, draw

STATE_VERSION = 1


class RandomOptions(BaseModel):
    """`search.options` of the `random` adapter."""

    model_config = ConfigDict(extra="forbid")

    max_models: int = Field(100, ge=1)
    unique: bool = True


class RandomSearch(LedgerSearch):
    """Uniform random search (see the module docstring)."""

    name = "random"
    mode = "steady_state"
    objectives = FITNESS
    state_version = STATE_VERSION

    def __init__(self, space: SearchSpace, options: RandomOptions | None = None, seed: int = 0):
        self.space = space
        self.options = options if options is not None else RandomOptions()
        self.seed = int(seed)
        self._rng = np.random.default_rng(self.seed)
        self._ledger = Ledger(self.name, space)
        self._seen = Seen()

    def ask(self, n: int | None = None) -> list[Candidate]:
        """Up to `n` (None: 1) new random candidates; [] once the budget is asked."""
        check_ask(n)
        out = []
        for _ in range(min(1 if n is None else n, self.budget - self._ledger.asked)):
            arch = draw(self.space, self._rng, self._seen, self.options.unique)
            out.append(self._ledger.new(arch))
        return out

    def tell(self, results: list[Result]) -> None:
        self._ledger.accept(results)

    def state_parts(self) -> tuple[dict[str, Any], dict[str, list[Any]]]:
        """The head (`LedgerSearch._parts`); logs: seen keys, candidates, results."""
        return self._parts({}, {"seen": self._seen.keys})

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self._load_head(state)
        self._seen = Seen(state["seen"])
        self._ledger.load_state_dict(state)


def make_random(space: SearchSpace, options: Mapping[str, Any], seed: int) -> RandomSearch:
    """The registry's factory (entry point `a4nn.adapters: random`)."""
    return RandomSearch(space, validate_options(RandomOptions, options, "search.options"), seed)
