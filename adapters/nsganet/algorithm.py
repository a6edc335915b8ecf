"""NSGA-Net (Lu et al., GECCO 2019) behind the ask/tell protocol, over any search space.

The genetic algorithm is NSGA-Net's macro search, assembled from pymoo's operators rather
than rewritten, on the space's integer choice vector (for the macro space, the genome's
bits): uniform random initial architectures (`space.sample`), binary tournament selection
(`TournamentSelection` with NSGA-II's `binary_tournament`, by Pareto dominance then
crowding as NSGA-Net's `comp_by_dom_and_crowding`, or by rank then crowding), two-point
crossover (`TwoPointCrossover`, probability 0.9, two children per mating, as NSGA-Net's
`PointCrossover(n_points=2)`), bit-flip mutation (`BitflipMutation`, 1/n per bit) on an
all-binary vector, else pymoo's integer mutation (polynomial mutation rounded to the
nearest choice, `PM` with `RoundingRepair`), and NSGA-II survival (`RankAndCrowding`: pymoo's `NonDominatedSorting` and crowding
distance). Objectives: maximize fitness, minimize MFLOPs (pymoo minimizes
(-fitness, mflops)); `objectives=` takes others. Every random draw comes from one `numpy.random.Generator`, whose
state is part of `state_dict()`, so a restored adapter proposes exactly what an
uninterrupted one would.

Modes:
- `generational` (the paper): `ask()` returns the initial population, then one generation
  of `n_offspring` children at a time; survival runs once the whole generation is told.
- `steady_state` (asynchronous workers): `ask(1)` returns one child bred from the current
  population; each `tell` runs survival over the population plus that child.

Both spend the same budget, pop_size + n_offspring * (n_generations - 1) models.
Failed results (or non-finite objectives) are kept in the record but never enter the
population, so they never breed; their architectures are not proposed again.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from types import SimpleNamespace
from typing import Any

import numpy as np
from pymoo.algorithms.moo.nsga2 import binary_tournament
from pymoo.core.population import Population
from pymoo.core.problem import Problem
from pymoo.operators.crossover.pntx import TwoPointCrossover
from pymoo.operators.mutation.bitflip import BitflipMutation
from pymoo.operators.mutation.pm import PM
from pymoo.operators.repair.rounding import RoundingRepair
from pymoo.operators.selection.tournament import TournamentSelection
from pymoo.operators.survival.rank_and_crowding import RankAndCrowding

from a4nn.registry import validate_options
from a4nn.space import SearchSpace, space_size, vector_key
from a4nn.types import Arch, Candidate, Objective, Result
from adapters.base import (
    FITNESS_AND_MFLOPS,
    AdapterError,
    json_float,
    jsonable,
    objectives,
    pareto_results,
    result_from_state,
    usable,
)
from adapters.common import Seen
from adapters.nsganet.presets import NSGANetOptions, NSGANetSettings

STATE_VERSION = 2  # 2: candidates name their space; seen-keys are choice vectors
# settings that must match between a saved state and the adapter restoring it
_SEARCH_KEYS = (
    "pop_size",
    "n_offspring",
    "n_generations",
    "crossover_prob",
    "mutation_prob",
    "tournament",
    "max_breed_tries",
)


@dataclass
class _Member:
    model_id: int
    rank: int
    crowding: float


class NSGANet:
    """NSGA-Net's search as an ask/tell adapter (see the module docstring)."""

    name = "nsganet"

    def __init__(
        self,
        space: SearchSpace,
        settings: NSGANetSettings | None = None,
        *,
        seed: int = 0,
        objectives: tuple[Objective, ...] = FITNESS_AND_MFLOPS,
    ) -> None:
        self.settings = settings if settings is not None else NSGANetSettings()
        self.settings.check()
        s = self.settings
        self.space = space
        self.objectives = tuple(objectives)
        self.seed = int(seed)
        self._rng = np.random.default_rng(self.seed)
        choices = np.asarray(space.choices(), dtype=int)
        self._size = space_size(choices)
        binary = bool(np.all(choices == 2))
        self._dtype = bool if binary else int  # pymoo's bit-flip needs bool vectors
        self._problem = Problem(
            n_var=len(choices),
            n_obj=len(self.objectives),
            xl=0,
            xu=choices - 1,
            vtype=bool if binary else int,
        )
        self._selection = TournamentSelection(func_comp=binary_tournament)
        self._crossover = TwoPointCrossover(prob=s.crossover_prob)
        if binary:
            self._mutation = BitflipMutation(prob_var=s.mutation_prob)
        else:
            self._mutation = PM(prob_var=s.mutation_prob, eta=3.0, repair=RoundingRepair())
        self._survival = RankAndCrowding()
        self._mode: str = s.mode
        self._next_id = 0
        self._cands: dict[int, Candidate] = {}  # every candidate handed out by ask()
        self._results: dict[int, Result] = {}
        self._seen = Seen()  # choice-vector keys of every candidate ever created
        self._failed = 0  # results told that may not breed
        # the JSON of every candidate asked and result told, in that order: the state's
        # append-only logs (`state_parts`), each made once
        self._logs: dict[str, list[dict[str, Any]]] = {"candidates": [], "results": []}
        self._vector_cache: dict[int, list[int]] = {}  # model id -> choice vector (not state)
        self._population: list[_Member] = []
        self._queue: list[Candidate] = []  # generational: bred, not yet asked
        self._batch: list[int] = []  # generational: ids of the generation in flight

    # -- public protocol ------------------------------------------------------------------
    @property
    def budget(self) -> int:
        """Models this search proposes in all."""
        return self.settings.budget

    @property
    def mode(self) -> str:
        return self._mode

    @property
    def steady_state(self) -> bool:
        return self._mode == "steady_state"

    @steady_state.setter
    def steady_state(self, on: bool) -> None:
        self.set_steady_state(on)

    def set_steady_state(self, on: bool = True) -> None:
        """Switch mode; allowed while no proposal is outstanding (e.g. before the first ask)."""
        mode = "steady_state" if on else "generational"
        if mode == self._mode:
            return
        if self._queue or self._pending():
            raise AdapterError(
                f"cannot switch NSGA-Net to {mode} with {len(self._queue) + len(self._pending())} "
                "candidates outstanding; switch before asking or after they are told"
            )
        self._mode = mode

    def ask(self, n: int | None = None) -> list[Candidate]:
        """Up to `n` new candidates; [] while waiting for results or once the budget is asked.

        `n=None` gives the next natural batch: the rest of the current generation
        (generational) or one child (steady state).
        """
        if n is not None and (isinstance(n, bool) or not isinstance(n, int) or n < 1):
            raise AdapterError(f"ask(n): n must be None or a positive int, got {n!r}")
        if self._mode == "steady_state":
            return self._ask_steady(1 if n is None else n)
        if not self._queue:
            if self._batch or len(self._cands) >= self.budget:
                return []  # the generation in flight must be told first, or all is asked
            self._queue = self._make_batch()
            self._batch = [c.model_id for c in self._queue]
        k = len(self._queue) if n is None else min(n, len(self._queue))
        out, self._queue = self._queue[:k], self._queue[k:]
        for c in out:
            self._hand_out(c)
        return out

    def tell(self, results: list[Result]) -> None:
        """Record results of asked candidates (any order); re-telling a result is a no-op."""
        fresh: list[Result] = []
        for r in results:
            if not isinstance(r, Result):
                raise AdapterError(
                    f"tell() takes a4nn.types.Result objects, got {type(r).__name__}"
                )
            if r.model_id not in self._cands:
                raise AdapterError(
                    f"result for model {r.model_id}, which this NSGA-Net adapter has not "
                    f"handed out (asked so far: {self._id_range()}); tell only results of "
                    "candidates returned by ask()"
                )
            old = self._results.get(r.model_id)
            if old is not None:
                same = (old.status, old.fitness, old.mflops) == (r.status, r.fitness, r.mflops)
                if same or (math.isnan(old.fitness) and math.isnan(r.fitness)):
                    continue
                raise AdapterError(
                    f"model {r.model_id} was already told with fitness={old.fitness}, "
                    f"mflops={old.mflops}, status={old.status}; now fitness={r.fitness}, "
                    f"mflops={r.mflops}, status={r.status}: a model has one result"
                )
            fresh.append(r)
        for r in fresh:
            self._results[r.model_id] = r
            self._logs["results"].append(jsonable(r.to_dict()))
            self._failed += not usable(r, self.objectives)
            if self._mode == "steady_state" and usable(r, self.objectives):
                self._survive([m.model_id for m in self._population] + [r.model_id])
        batch_done = all(i in self._results for i in self._batch)
        if self._mode == "generational" and self._batch and not self._queue and batch_done:
            members = [m.model_id for m in self._population]
            self._survive(members + sorted(self._batch))
            self._batch = []

    def done(self) -> bool:
        return len(self._results) >= self.budget

    def pareto(self) -> list[Result]:
        """Non-dominated successful results among all told so far, cheapest first."""
        return pareto_results([self._results[i] for i in sorted(self._results)], self.objectives)

    def population(self) -> list[tuple[Candidate, Result]]:
        """The current parents (survivors), best rank first."""
        return [(self._cands[m.model_id], self._results[m.model_id]) for m in self._population]

    # -- state ---------------------------------------------------------------------------
    def state_dict(self) -> dict[str, Any]:
        """Everything needed to continue exactly: strict JSON (no NaN/inf literals)."""
        head, logs = self.state_parts()
        return {**head, **{k: list(v) for k, v in logs.items()}}

    def state_parts(self) -> tuple[dict[str, Any], dict[str, list[Any]]]:
        """`state_dict()` split into a head whose size does not grow with the search and
        append-only logs (`seen`, `candidates`, `results`), for a save per model that
        costs the same at 10,000 models as at 100 (docs/plugins.md)."""
        head = {
            "adapter": self.name,
            "version": STATE_VERSION,
            "space": self.space.name,
            "choices": [int(c) for c in self.space.choices()],
            "settings": self.settings.to_dict(),
            "seed": self.seed,
            "mode": self._mode,
            "rng": self._rng.bit_generator.state,
            "next_model_id": self._next_id,
            "population": [
                {"model_id": m.model_id, "rank": m.rank, "crowding": json_float(m.crowding)}
                for m in self._population
            ],
            "queue": [c.to_dict() for c in self._queue],
            "batch": list(self._batch),
            "counters": {
                "budget": self.budget,
                "asked": len(self._cands),
                "told": len(self._results),
                "failed": self._failed,
                "generation": self._generation_of(len(self._cands)),
            },
        }
        return head, {"seen": self._seen.keys, **self._logs}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        """Restore `state_dict()` output; settings must match (the mode comes from the state)."""
        if not isinstance(state, dict) or state.get("adapter") != self.name:
            got = state.get("adapter") if isinstance(state, dict) else type(state).__name__
            raise AdapterError(f"adapter state is for {got!r}, not {self.name!r}")
        if state.get("version") != STATE_VERSION:
            raise AdapterError(
                f"NSGA-Net state version {state.get('version')!r} is not supported "
                f"(this code reads version {STATE_VERSION}); the run was made by another "
                "version of A4NN: resume it with that version, or start a new run"
            )
        mine = [int(c) for c in self.space.choices()]
        if state.get("space") != self.space.name or state.get("choices") != mine:
            raise AdapterError(
                f"cannot resume NSGA-Net: the saved state searched space "
                f"{state.get('space')!r} with choices {state.get('choices')}, this adapter "
                f"searches {self.space.name!r} with choices {mine}; resume with the run's "
                "own search.space and search.space_options"
            )
        saved = state["settings"]
        mine = self.settings.to_dict()
        diff = [
            f"{k}: saved {saved.get(k)!r}, now {mine[k]!r}"
            for k in _SEARCH_KEYS
            if saved.get(k) != mine[k]
        ]
        if diff:
            raise AdapterError(
                "cannot resume NSGA-Net: the saved state was made with other settings ("
                + "; ".join(diff)
                + "); build the adapter with the run's original preset and overrides"
            )
        self._mode = state["mode"]
        self._rng = np.random.default_rng()
        self._rng.bit_generator.state = state["rng"]
        self.seed = int(state["seed"])
        self._next_id = int(state["next_model_id"])
        self._seen = Seen(state["seen"])
        self._cands = {c["model_id"]: Candidate.from_dict(c) for c in state["candidates"]}
        self._results = {r["model_id"]: result_from_state(r) for r in state["results"]}
        self._logs = {"candidates": list(state["candidates"]), "results": list(state["results"])}
        self._vector_cache = {}
        self._failed = sum(1 for r in self._results.values() if not usable(r, self.objectives))
        self._population = [
            _Member(int(m["model_id"]), int(m["rank"]), float(m["crowding"]))
            for m in state["population"]
        ]
        self._queue = [Candidate.from_dict(c) for c in state["queue"]]
        self._batch = [int(i) for i in state["batch"]]

    # -- internals -----------------------------------------------------------------------
    def _pending(self) -> list[int]:
        return [i for i in self._cands if i not in self._results]

    def _id_range(self) -> str:
        return f"ids {min(self._cands)}..{max(self._cands)}" if self._cands else "none"

    def _generation_of(self, index: int) -> int:
        """Generation of the `index`-th proposal (0-based): 0 initial, then by n_offspring."""
        s = self.settings
        return 0 if index < s.pop_size else 1 + (index - s.pop_size) // s.n_offspring

    def _key(self, arch: Arch) -> str:
        return vector_key(self.space.encode(arch))

    def _new_candidate(self, arch: Arch, parents: tuple[int, ...], index: int) -> Candidate:
        c = Candidate(
            model_id=self._next_id,
            space=self.space.name,
            arch=arch,
            generation=self._generation_of(index),
            parents=parents,
            proposer=self.name,
        )
        self._next_id += 1
        self._seen.add(self._key(arch))
        return c

    def _make_batch(self) -> list[Candidate]:
        """The next generation: the rest of the initial population, or up to n_offspring."""
        s = self.settings
        start = len(self._cands)
        if start < s.pop_size:
            size = s.pop_size - start
        else:
            size = s.n_offspring - (start - s.pop_size) % s.n_offspring
        size = min(size, self.budget - start)
        return self._propose(size, start)

    def _ask_steady(self, n: int) -> list[Candidate]:
        out = self._propose(min(n, self.budget - len(self._cands)), len(self._cands))
        for c in out:
            self._hand_out(c)
        return out

    def _hand_out(self, c: Candidate) -> None:
        self._cands[c.model_id] = c
        self._logs["candidates"].append(c.to_dict())

    def _propose(self, n: int, start: int) -> list[Candidate]:
        """`n` candidates, the first being proposal number `start`: random until the
        initial population is handed out (or while fewer than 2 parents exist), then bred."""
        out: list[Candidate] = []
        n_random = max(0, min(n, self.settings.pop_size - start))
        if len(self._population) < 2:
            n_random = n
        for _ in range(n_random):
            out.append(self._new_candidate(self._random_unseen(), (), start + len(out)))
        if n > n_random:
            for genome, parents in self._breed(n - n_random):
                out.append(self._new_candidate(genome, parents, start + len(out)))
        return out

    def _random_unseen(self) -> Arch:
        arch = self.space.sample(self._rng)
        tries = 1
        while self._key(arch) in self._seen and len(self._seen) < self._size:
            if tries >= 10_000:
                break
            arch = self.space.sample(self._rng)
            tries += 1
        return arch

    def _vectors(self, ids: list[int]) -> np.ndarray:
        rows = [self._vector(i) for i in ids]
        return np.array(rows, dtype=self._dtype).reshape(len(ids), -1)

    def _vector(self, model_id: int) -> list[int]:
        """A candidate's choice vector, encoded once (survival and breeding ask for the
        population's vectors at every tell and ask; encoding them was most of their time)."""
        vec = self._vector_cache.get(model_id)
        if vec is None:
            vec = self._vector_cache[model_id] = self.space.encode(self._cands[model_id].arch)
        return vec

    def _member_population(self) -> tuple[Population, list[int]]:
        ids = [m.model_id for m in self._population]
        pop = Population.new("X", self._vectors(ids))
        pop.set("F", objectives([self._results[i] for i in ids], self.objectives))
        pop.set("rank", [m.rank for m in self._population])
        pop.set("crowding", [m.crowding for m in self._population])
        return pop, ids

    def _breed(self, n: int) -> list[tuple[Arch, tuple[int, ...]]]:
        """`n` unseen children by tournament, two-point crossover and mutation; after
        `max_breed_tries` rounds the rest are random unseen architectures."""
        pop, ids = self._member_population()
        algo = SimpleNamespace(
            tournament_type=f"comp_by_{self.settings.tournament}", random_state=self._rng
        )
        out: list[tuple[Arch, tuple[int, ...]]] = []
        for _ in range(self.settings.max_breed_tries):
            need = n - len(out)
            if need <= 0:
                break
            n_matings = math.ceil(need / self._crossover.n_offsprings)
            pairs = self._selection.do(
                self._problem,
                pop,
                n_matings,
                n_parents=self._crossover.n_parents,
                to_pop=False,
                random_state=self._rng,
                algorithm=algo,
            )
            off = self._crossover.do(self._problem, pop, parents=pairs, random_state=self._rng)
            off = self._mutation.do(self._problem, off, random_state=self._rng)
            for i, x in enumerate(off.get("X")):
                genome = self.space.decode(np.asarray(x, dtype=int))
                key = self._key(genome)
                if key in self._seen:
                    continue
                self._seen.add(key)
                mates = [ids[j] for j in pairs[i % n_matings]]
                out.append((genome, tuple(dict.fromkeys(mates))))
                if len(out) == n:
                    break
        while len(out) < n:
            arch = self._random_unseen()
            self._seen.add(self._key(arch))
            out.append((arch, ()))
        return out

    def _survive(self, ids: list[int]) -> None:
        """NSGA-II survival (pymoo RankAndCrowding) of the usable `ids` down to pop_size."""
        ids = [i for i in ids if usable(self._results[i], self.objectives)]
        if not ids:
            self._population = []
            return
        pop = Population.new("X", self._vectors(ids))
        pop.set("F", objectives([self._results[i] for i in ids], self.objectives))
        keep = self._survival.do(
            self._problem,
            pop,
            n_survive=min(self.settings.pop_size, len(ids)),
            random_state=self._rng,
            return_indices=True,
        )
        self._population = [
            _Member(ids[k], int(pop[k].get("rank")), float(pop[k].get("crowding"))) for k in keep
        ]


def make_nsganet(space: SearchSpace, options: dict[str, Any], seed: int) -> NSGANet:
    """The registry's factory (entry point `a4nn.adapters: nsganet`)."""
    opts = validate_options(NSGANetOptions, options, "search.options")
    return NSGANet(space, opts.settings(), seed=seed)
