"""Regularized evolution (Real et al., AAAI 2019) behind the ask/tell protocol.

`search.adapter: evolution`. Aging evolution on the space's choice vector:

- the first `population_size` (P) proposals are random architectures (`space.sample`);
- every later proposal is a child: `sample_size` (S) members of the population are drawn
  uniformly at random (with replacement, as the paper's Algorithm 1), the one with the
  highest fitness is the parent, and the child is the parent with **one choice mutated**
  (a position with more than one option, drawn uniformly, set to another of its
  options, drawn uniformly);
- a told result joins the population (in the order results arrive) and, once it holds
  more than P members, the **oldest** is removed, however good it is.

It is asynchronous (`steady_state`): it proposes a child whenever a worker frees up, from
the population as it is at that moment. While the initial population is still training
it breeds from the members told so far; if none is told yet (or every one failed) and
models are in training, it waits (`ask` returns []); with nothing in training it proposes
random architectures. Failed results (status `failed`, or a non-finite fitness) never
join the population. The fitness is `Result.fitness`: the engine's prediction when a
model was stopped early.

With `unique` (the default) a child whose architecture was already proposed is mutated
again (a new parent is drawn every 10 tries, 100 tries in all), then a random unseen
architecture is proposed: no architecture is trained twice while unseen ones remain.
`unique: false` is the paper's algorithm exactly (a repeated architecture is retrained,
which, with a noisy fitness, is part of its regularization).

One `numpy.random.Generator`, seeded from the run's seed, draws everything; its state is
part of `state_dict()`, so a restored adapter proposes exactly what an uninterrupted one
would. Proposals depend on the order in which results arrive (it is asynchronous): with
one worker (the plain runner) a search is reproducible.

Options (`search.options`):

    max_models: 100         # models proposed in all (>= 1)
    population_size: 20     # P (>= 2)
    sample_size: null       # S (1..P); unset: min(5, P)
    unique: true

`Candidate.generation` is the proposal's index // P (0: the initial population), and a
child's `parents` is its parent.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import numpy as np
from pydantic import BaseModel, ConfigDict, Field, ValidationInfo, field_validator

from a4nn.registry import validate_options
from a4nn.space import SearchSpace, vector_key
from a4nn.types import Arch, Candidate, Result
from adapters.common import (
    FITNESS,
    Ledger,
    LedgerSearch,
    Seen,
    check_ask,
    draw,
    mutate_one,
    usable,
)

STATE_VERSION = 1
MUTATION_TRIES = 100  # unique: mutations tried before a random unseen architecture
PARENT_EVERY = 10  # unique: a new tournament every this many tries


class EvolutionOptions(BaseModel):
    """`search.options` of the `evolution` adapter."""

    model_config = ConfigDict(extra="forbid")

    max_models: int = Field(100, ge=1)
    population_size: int = Field(20, ge=2)
    sample_size: int | None = Field(None, ge=1)  # None: min(5, population_size)
    unique: bool = True

    @field_validator("sample_size")
    @classmethod
    def _sample_fits(cls, v: int | None, info: ValidationInfo) -> int | None:
        p = info.data.get("population_size")
        if v is not None and p is not None and v > p:
            raise ValueError(f"{v} exceeds population_size {p}; S must be at most P")
        return v

    @property
    def s(self) -> int:
        """S: `sample_size`, or min(5, P) when unset."""
        return self.sample_size if self.sample_size is not None else min(5, self.population_size)


class RegularizedEvolution(LedgerSearch):
    """Aging evolution with one-choice mutation (see the module docstring)."""

    name = "evolution"
    mode = "steady_state"
    objectives = FITNESS
    state_version = STATE_VERSION

    def __init__(
        self, space: SearchSpace, options: EvolutionOptions | None = None, seed: int = 0
    ) -> None:
        self.space = space
        self.options = options if options is not None else EvolutionOptions()
        self.seed = int(seed)
        self._choices = [int(c) for c in space.choices()]
        self._rng = np.random.default_rng(self.seed)
        self._ledger = Ledger(self.name, space)
        self._seen = Seen()
        self._population: list[int] = []  # model ids, oldest first

    def population(self) -> list[tuple[Candidate, Result]]:
        """The current population, oldest first."""
        led = self._ledger
        return [(led.cands[i], led.results[i]) for i in self._population]

    def ask(self, n: int | None = None) -> list[Candidate]:
        """Up to `n` (None: 1) new candidates; [] while it must wait or once all is asked."""
        check_ask(n)
        out: list[Candidate] = []
        for _ in range(1 if n is None else n):
            index = self._ledger.asked
            if index >= self.budget:
                break
            generation = index // self.options.population_size
            if index < self.options.population_size or (
                not self._population and not self._ledger.pending()
            ):
                out.append(self._ledger.new(self._random(), generation))
            elif self._population:
                arch, parent = self._child()
                parents = () if parent is None else (parent,)
                out.append(self._ledger.new(arch, generation, parents))
            else:
                break  # no parent told yet: wait for the models in training
        return out

    def tell(self, results: list[Result]) -> None:
        """Each usable result joins the population; beyond P members the oldest leaves."""
        for r in self._ledger.accept(results):
            if usable(r):
                self._population.append(r.model_id)
                if len(self._population) > self.options.population_size:
                    self._population.pop(0)

    # -- state ---------------------------------------------------------------------------
    def state_parts(self) -> tuple[dict[str, Any], dict[str, list[Any]]]:
        """The head with the population (`LedgerSearch._parts`); logs: seen keys,
        candidates, results."""
        return self._parts({"population": list(self._population)}, {"seen": self._seen.keys})

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self._load_head(state)
        self._seen = Seen(state["seen"])
        self._population = [int(i) for i in state["population"]]
        self._ledger.load_state_dict(state)

    # -- internals -----------------------------------------------------------------------
    def _random(self) -> Arch:
        return draw(self.space, self._rng, self._seen, self.options.unique)

    def _tournament(self) -> int:
        """The fittest of S members drawn with replacement (the first drawn on a tie)."""
        picks = self._rng.integers(len(self._population), size=self.options.s)
        ids = [self._population[int(k)] for k in picks]
        fits = [self._ledger.results[i].fitness for i in ids]
        return ids[int(np.argmax(fits))]

    def _child(self) -> tuple[Arch, int | None]:
        """(child architecture, parent id); see `unique` in the module docstring (a
        random unseen architecture after the tries has no parent)."""
        parent = self._tournament()
        tries = MUTATION_TRIES if self.options.unique else 1
        for t in range(tries):
            if t and t % PARENT_EVERY == 0:
                parent = self._tournament()
            vec = mutate_one(self._ledger.vector(parent), self._choices, self._rng)
            key = vector_key(vec)
            if not self.options.unique or key not in self._seen:
                self._seen.add(key)
                return self.space.decode(vec), parent
        return self._random(), None


def make_evolution(
    space: SearchSpace, options: Mapping[str, Any], seed: int
) -> RegularizedEvolution:
    """The registry's factory (entry point `a4nn.adapters: evolution`)."""
    opts = validate_options(EvolutionOptions, options, "search.options")
    return RegularizedEvolution(space, opts, seed)
