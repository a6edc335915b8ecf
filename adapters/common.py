"""What the choice-vector adapters (random search, regularized evolution, PPO) share.

- `Ledger`: the candidates an adapter handed out and the results told back, with the
  checks every `tell` needs (a result of a model never asked is an error; telling the
  same result twice is a no-op; a different result for a told model is an error), and
  their strict-JSON state.
- `sample_unseen` / `mutate_one`: a random architecture not proposed before, and the
  mutation of one choice of a choice vector.
- `reward`: the fitness a search maximizes (0 for a failed model or a non-finite one).
- `check_state`: the header checks of `load_state_dict` (adapter, version, space, settings).
- `draw`: a random architecture (unseen with `unique`), recorded as seen.
- `state_head` / `load_head`: the header, seed and generator state every adapter saves
  first, and their restoring (after `check_state`).
- `Seen`: the choice-vector keys proposed so far, with the order they came in (a log).
- `LedgerSearch`: what an adapter that keeps a `Ledger` does the same way (`budget`,
  `done`, `results`, `state_dict`, and the head and logs of its `state_parts`).

State that grows with the search (candidates, results, seen keys) is kept as append-only
logs of JSON items, made once when an item is added: `state_parts()` hands them over
without copying, so saving after each model costs what the small head costs
(docs/plugins.md, "State and resume").

These adapters search any registered space through its choice vector
(`space.choices()`, `space.encode`, `space.decode`) and know nothing else about it.
"""

from __future__ import annotations

import math
from collections.abc import Collection, Iterable, Iterator, Sequence
from typing import Any

import numpy as np

from a4nn.space import SearchSpace, space_size, vector_key
from a4nn.types import Arch, Candidate, Objective, Result
from adapters.base import AdapterError, jsonable, result_from_state

FITNESS = (Objective("fitness", "max"),)
"""The objective of the single-objective adapters: the fitness (the engine's prediction
when a model was stopped early), maximized."""


def reward(result: Result) -> float:
    """The fitness a single-objective search maximizes: 0 for failed or non-finite results."""
    if result.failed or not math.isfinite(result.fitness):
        return 0.0
    return float(result.fitness)


def usable(result: Result) -> bool:
    """A result that may be selected as a parent: not failed, finite fitness."""
    return not result.failed and math.isfinite(result.fitness)


class Seen:
    """Choice-vector keys proposed so far: a set to look them up, and the keys in the
    order they were first added (`keys`, an append-only log of the adapter's state)."""

    def __init__(self, keys: Iterable[str] = ()) -> None:
        self._set: set[str] = set()
        self.keys: list[str] = []
        for key in keys:
            self.add(key)

    def add(self, key: str) -> None:
        if key not in self._set:
            self._set.add(key)
            self.keys.append(key)

    def __contains__(self, key: object) -> bool:
        return key in self._set

    def __len__(self) -> int:
        return len(self._set)

    def __iter__(self) -> Iterator[str]:
        return iter(self.keys)


class Ledger:
    """Candidates handed out and results told, for one adapter (see the module docstring).

    `logs` are their JSON forms in the order they came (candidates by model id, results
    in the order told), made once each: the append-only part of the adapter's state."""

    def __init__(self, adapter: str, space: SearchSpace) -> None:
        self.adapter, self.space = adapter, space
        self.cands: dict[int, Candidate] = {}
        self.results: dict[int, Result] = {}
        self.next_id = 0
        self.logs: dict[str, list[dict[str, Any]]] = {"candidates": [], "results": []}

    @property
    def asked(self) -> int:
        return len(self.cands)

    @property
    def told(self) -> int:
        return len(self.results)

    def new(self, arch: Arch, generation: int = 0, parents: Sequence[int] = ()) -> Candidate:
        """A new candidate under the next model id (deterministic given the state)."""
        c = Candidate(
            model_id=self.next_id,
            space=self.space.name,
            arch=arch,
            generation=int(generation),
            parents=tuple(int(p) for p in parents),
            proposer=self.adapter,
        )
        self.cands[c.model_id] = c
        self.logs["candidates"].append(c.to_dict())
        self.next_id += 1
        return c

    def pending(self) -> list[int]:
        return [i for i in self.cands if i not in self.results]

    def accept(self, results: Iterable[Result]) -> list[Result]:
        """The results not told before, each checked; records them."""
        fresh: list[Result] = []
        for r in results:
            if not isinstance(r, Result):
                raise AdapterError(
                    f"tell() takes a4nn.types.Result objects, got {type(r).__name__}"
                )
            if r.model_id not in self.cands:
                asked = f"ids {min(self.cands)}..{max(self.cands)}" if self.cands else "none"
                raise AdapterError(
                    f"result for model {r.model_id}, which this {self.adapter} adapter has not "
                    f"handed out (asked so far: {asked}); tell only results of candidates "
                    "returned by ask()"
                )
            old = self.results.get(r.model_id)
            if old is not None:
                same = (old.status, old.fitness) == (r.status, r.fitness)
                if same or (math.isnan(old.fitness) and math.isnan(r.fitness)):
                    continue
                raise AdapterError(
                    f"model {r.model_id} was already told with fitness={old.fitness}, "
                    f"status={old.status}; now fitness={r.fitness}, status={r.status}: "
                    "a model has one result"
                )
            self.results[r.model_id] = r
            self.logs["results"].append(jsonable(r.to_dict()))
            fresh.append(r)
        return fresh

    def vector(self, model_id: int) -> list[int]:
        return self.space.encode(self.cands[model_id].arch)

    def state_dict(self) -> dict[str, Any]:
        return {"next_model_id": self.next_id, **{k: list(v) for k, v in self.logs.items()}}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self.next_id = int(state["next_model_id"])
        self.cands = {int(c["model_id"]): Candidate.from_dict(c) for c in state["candidates"]}
        self.results = {int(r["model_id"]): result_from_state(r) for r in state["results"]}
        self.logs = {"candidates": list(state["candidates"]), "results": list(state["results"])}


class LedgerSearch:
    """The part of an adapter that keeps a `Ledger` (`_ledger`) shared by such adapters.

    A subclass sets `name`, `state_version`, `space`, `options` (a pydantic model with
    `max_models`), `seed` and `_rng` (its one generator), and builds its `state_parts`
    with `_parts` and restores it with `_load_head` (then `_ledger.load_state_dict`)."""

    name: str
    state_version: int
    space: SearchSpace
    options: Any
    seed: int
    _rng: np.random.Generator
    _ledger: Ledger

    @property
    def budget(self) -> int:
        """Models proposed in all (`options.max_models`)."""
        return int(self.options.max_models)

    def done(self) -> bool:
        return self._ledger.told >= self.budget

    def results(self) -> list[Result]:
        """Every result told, by model id."""
        return [self._ledger.results[i] for i in sorted(self._ledger.results)]

    def state_dict(self) -> dict[str, Any]:
        head, logs = self.state_parts()
        return {**head, **{k: list(v) for k, v in logs.items()}}

    def state_parts(self) -> tuple[dict[str, Any], dict[str, list[Any]]]:
        """(head, append-only logs): the state, split for a save that does not grow
        with the search (docs/plugins.md)."""
        raise NotImplementedError

    def _parts(
        self, head: dict[str, Any], logs: dict[str, list[Any]]
    ) -> tuple[dict[str, Any], dict[str, list[Any]]]:
        """`state_parts` from the adapter's own items: the head is `state_head`, then
        `head`, then the next model id; the logs are `logs`, then the ledger's."""
        full = {
            **state_head(
                self.name,
                self.state_version,
                self.space,
                self.options.model_dump(),
                self.seed,
                self._rng,
            ),
            **head,
            "next_model_id": self._ledger.next_id,
        }
        return full, {**logs, **self._ledger.logs}

    def _load_head(self, state: Any) -> None:
        """`load_head` into `seed` and `_rng` (the state's checks first)."""
        self.seed, self._rng = load_head(
            state, self.name, self.state_version, self.space, self.options.model_dump()
        )


def check_ask(n: Any) -> None:
    if n is not None and (isinstance(n, bool) or not isinstance(n, int) or n < 1):
        raise AdapterError(f"ask(n): n must be None or a positive int, got {n!r}")


def sample_unseen(
    space: SearchSpace, rng: np.random.Generator, seen: Collection[str], tries: int = 100
) -> tuple[Arch, str]:
    """`space.sample(rng)` redrawn until its choice vector is not in `seen` (at most
    `tries` draws; once every architecture is seen, a seen one). Returns (arch, key)."""
    exhausted = len(seen) >= space_size(space.choices())
    arch = space.sample(rng)
    key = vector_key(space.encode(arch))
    for _ in range(tries - 1):
        if exhausted or key not in seen:
            break
        arch = space.sample(rng)
        key = vector_key(space.encode(arch))
    return arch, key


def draw(space: SearchSpace, rng: np.random.Generator, seen: Seen, unique: bool) -> Arch:
    """A random architecture (`sample_unseen` with `unique`, else `space.sample`); its
    choice-vector key is added to `seen`."""
    if unique:
        arch, key = sample_unseen(space, rng, seen)
    else:
        arch = space.sample(rng)
        key = vector_key(space.encode(arch))
    seen.add(key)
    return arch


def mutate_one(
    vector: Sequence[int], choices: Sequence[int], rng: np.random.Generator
) -> list[int]:
    """`vector` with one position, drawn uniformly among those with more than one option,
    set to another of its options drawn uniformly (Real et al.'s one-choice mutation).
    A space whose every position has one option has nothing to mutate: `vector` as is."""
    out = [int(v) for v in vector]
    free = [i for i, n in enumerate(choices) if n > 1]
    if not free:
        return out
    i = free[int(rng.integers(len(free)))]
    shift = 1 + int(rng.integers(choices[i] - 1))  # 1..n-1: never the current option
    out[i] = (out[i] + shift) % int(choices[i])
    return out


def check_state(
    state: Any, name: str, version: int, space: SearchSpace, settings: dict[str, Any]
) -> None:
    """Refuse a state of another adapter, version, space or settings, saying what differs."""
    if not isinstance(state, dict) or state.get("adapter") != name:
        got = state.get("adapter") if isinstance(state, dict) else type(state).__name__
        raise AdapterError(f"adapter state is for {got!r}, not {name!r}")
    if state.get("version") != version:
        raise AdapterError(
            f"{name} state version {state.get('version')!r} is not supported (this code reads "
            f"version {version}); resume with the A4NN version that made the run"
        )
    mine = [int(c) for c in space.choices()]
    if state.get("space") != space.name or list(state.get("choices", [])) != mine:
        raise AdapterError(
            f"cannot resume {name}: the saved state searched space {state.get('space')!r} with "
            f"choices {state.get('choices')}, this adapter searches {space.name!r} with "
            f"choices {mine}; resume with the run's own search.space and search.space_options"
        )
    saved = jsonable(state.get("settings", {}))
    now = jsonable(settings)
    diff = [
        f"{k}: saved {saved.get(k)!r}, now {now.get(k)!r}"
        for k in sorted(set(saved) | set(now))
        if saved.get(k) != now.get(k)
    ]
    if diff:
        raise AdapterError(
            f"cannot resume {name}: the saved state was made with other search.options ("
            + "; ".join(diff)
            + "); resume with the run's own options"
        )


def header(name: str, version: int, space: SearchSpace, settings: dict[str, Any]) -> dict[str, Any]:
    """The part of a state `check_state` reads."""
    return {
        "adapter": name,
        "version": version,
        "space": space.name,
        "choices": [int(c) for c in space.choices()],
        "settings": jsonable(settings),
    }


def state_head(
    name: str,
    version: int,
    space: SearchSpace,
    settings: dict[str, Any],
    seed: int,
    rng: np.random.Generator,
) -> dict[str, Any]:
    """The start of a state: `header`, the seed and the generator's state."""
    return {
        **header(name, version, space, settings),
        "seed": seed,
        "rng": rng.bit_generator.state,
    }


def load_head(
    state: Any, name: str, version: int, space: SearchSpace, settings: dict[str, Any]
) -> tuple[int, np.random.Generator]:
    """`check_state`, then the (seed, generator) a `state_head` saved."""
    check_state(state, name, version, space, settings)
    seed = int(state["seed"])
    rng = np.random.default_rng()
    rng.bit_generator.state = state["rng"]
    return seed, rng
