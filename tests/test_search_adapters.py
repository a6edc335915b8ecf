"""The random, regularized-evolution and PPO adapters at the ask/tell level.

Training is replaced by a cheap fitness of the choice vector. The adapters search any
space through its choice vector: most tests use a space of integer choices (NT3-like,
tests/support_spaces.py), some the NSGA-Net macro space's 21 bits. The resume tests save
the state half-way through `lineage.adapter_state.save_state` (JSON plus an .npz of the arrays,
loaded without pickle), load it into a fresh adapter and check that it proposes exactly
what the uninterrupted adapter proposed, across PPO updates.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pytest
import torch

from a4nn.adapter import Adapter
from a4nn.registry import OptionsError, create_adapter, create_space
from a4nn.space import vector_key
from a4nn.types import Candidate, Result
from adapters.base import AdapterError
from adapters.common import mutate_one
from adapters.evolution.algorithm import make_evolution
from adapters.ppo.algorithm import make_ppo
from adapters.random_search.algorithm import make_random
from lineage.adapter_state import load_state, save_state
from tests import adapter_plugins  # noqa: F401  (registers random, evolution, ppo)
from tests.support_spaces import VectorSpace

SPACE = VectorSpace("test-ints", (5, 4, 5, 5, 4, 5))
MAKERS = {"random": make_random, "evolution": make_evolution, "ppo": make_ppo}


def fitness(space: Any, c: Candidate) -> float:
    """Higher choices score higher, with position weights: optimum at the top choices."""
    v = np.asarray(space.encode(c.arch), dtype=float) / (np.asarray(space.choices()) - 1)
    w = np.linspace(1.0, 2.0, len(v))
    return 40.0 + 60.0 * float(w @ v) / float(w.sum())


def result(space: Any, c: Candidate, failed: bool = False) -> Result:
    if failed:
        return Result(c.model_id, 0.0, float("nan"), 0, 0, status="failed", reason="boom")
    return Result(c.model_id, fitness(space, c), 1.0, 10, 2, status="converged")


def drive(adapter, space=SPACE, slots=3, save_after=None, path=None, fresh=None, fail=()):
    """The scheduler's loop in the adapter's mode (steady state: `slots` in flight, the
    oldest told first). With `save_after=k`, after the k-th tell the state goes through
    save_state/load_state at `path` into `fresh()`, which carries on."""
    asked: list[Candidate] = []
    inflight: list[Candidate] = []
    tells = 0
    while not adapter.done():
        if adapter.mode == "generational":
            batch = adapter.ask()
            assert batch, "stalled"
            asked += batch
        else:
            while len(inflight) < slots:
                got = adapter.ask(1)
                if not got:
                    break
                assert len(got) == 1
                inflight += got
                asked += got
            assert inflight, "stalled"
            batch = [inflight.pop(0)]
        adapter.tell([result(space, c, c.model_id in fail) for c in batch])
        tells += 1
        if tells == save_after:
            save_state(path, adapter.state_dict())
            adapter = fresh()
            adapter.load_state_dict(load_state(path))
    return asked, adapter


def proposals(cands: list[Candidate]) -> list[tuple]:
    return [(c.model_id, c.space, c.arch, c.generation, c.parents, c.proposer) for c in cands]


# -- the protocol, options, budget --------------------------------------------------------------
@pytest.mark.parametrize(
    "name, options, mode",
    [
        ("random", {}, "steady_state"),
        ("evolution", {}, "steady_state"),
        ("ppo", {}, "generational"),
        ("ppo", {"update": "async", "agents": 2}, "steady_state"),
    ],
)
def test_registered_adapters_follow_the_protocol_and_spend_the_budget(name, options, mode):
    adapter = create_adapter(name, SPACE, {"max_models": 13, **options}, seed=3)
    assert isinstance(adapter, Adapter) and adapter.mode == mode and adapter.name == name
    asked, adapter = drive(adapter)
    assert [c.model_id for c in asked] == list(range(13))
    assert {c.proposer for c in asked} == {name} and {c.space for c in asked} == {SPACE.name}
    assert adapter.done() and adapter.ask() == [] and adapter.ask(2) == []
    assert len({vector_key(SPACE.encode(c.arch)) for c in asked}) == 13  # none trained twice


@pytest.mark.parametrize("name", ["random", "evolution", "ppo"])
def test_any_registered_space_through_its_choice_vector(name):
    macro = create_space("nsganet-macro", {})  # 21 bits
    asked, _ = drive(
        create_adapter(
            name,
            macro,
            {"max_models": 12, "batch_size": 4} if name == "ppo" else {"max_models": 12},
            seed=0,
        ),
        macro,
    )
    assert len(asked) == 12
    for c in asked:
        assert macro.decode(macro.encode(c.arch)) == c.arch


@pytest.mark.parametrize(
    "name, options, field",
    [
        ("random", {"max_models": 0}, "search.options.max_models"),
        ("random", {"max_modles": 3}, "search.options.max_modles"),
        ("evolution", {"population_size": 1}, "search.options.population_size"),
        (
            "evolution",
            {"population_size": 4, "sample_size": 5},
            "search.options.sample_size: 5 exceeds",
        ),
        ("ppo", {"update": "hogwild"}, "search.options.update"),
        ("ppo", {"clip": 1.5}, "search.options.clip"),
        ("ppo", {"agents": 0, "batch_size": 0}, "search.options.agents"),
    ],
)
def test_bad_options_name_the_field(name, options, field):
    with pytest.raises(OptionsError, match=field.replace(".", r"\.")):
        MAKERS[name](SPACE, options, 0)


def test_same_seed_same_proposals_other_seed_differs():
    for make in MAKERS.values():
        a = proposals(drive(make(SPACE, {"max_models": 12}, 5))[0])
        assert a == proposals(drive(make(SPACE, {"max_models": 12}, 5))[0])
        assert a != proposals(drive(make(SPACE, {"max_models": 12}, 6))[0])


@pytest.mark.parametrize("name", ["random", "evolution", "ppo"])
def test_tell_checks_its_results(name):
    adapter = MAKERS[name](
        SPACE, {"max_models": 4, "batch_size": 2} if name == "ppo" else {"max_models": 4}, 0
    )
    c = adapter.ask()[0]
    with pytest.raises(AdapterError, match="has not handed out"):
        adapter.tell([Result(99, 50.0, 1.0, 1, 1)])
    adapter.tell([result(SPACE, c)])
    adapter.tell([result(SPACE, c)])  # the same result again: a no-op
    with pytest.raises(AdapterError, match="already told"):
        adapter.tell([Result(c.model_id, 1.0, 1.0, 1, 1)])
    with pytest.raises(AdapterError, match="positive int"):
        adapter.ask(0)


# -- exact resume through the run directory's state files ------------------------------------
RESUME_CASES = [
    ("random", {"max_models": 10}, 4),
    ("evolution", {"max_models": 16, "population_size": 4, "sample_size": 2}, 7),
    # generational PPO, M=3: saved after the 2nd update, 3 more updates after the restore
    ("ppo", {"max_models": 15, "batch_size": 3}, 2),
    # A3C-like: 2 agents, steady state, saved with models in flight, updates on both sides
    ("ppo", {"max_models": 16, "batch_size": 2, "agents": 2, "update": "async"}, 7),
]


@pytest.mark.parametrize("name, options, k", RESUME_CASES)
def test_state_through_save_state_resumes_exactly(name, options, k, tmp_path: Path):
    def fresh():
        return MAKERS[name](SPACE, options, 11)

    whole, end_whole = drive(fresh())
    cut, end_cut = drive(fresh(), save_after=k, path=tmp_path / "adapter_state.json", fresh=fresh)
    assert proposals(cut) == proposals(whole)
    assert end_cut.state_dict()["rng"] == end_whole.state_dict()["rng"]
    if name == "ppo":
        assert end_whole.updates >= 3 and end_cut.updates == end_whole.updates
        for net in ("policy", "value"):
            a, b = getattr(end_whole, net).state_dict(), getattr(end_cut, net).state_dict()
            assert all(torch.equal(a[key], b[key]) for key in a)
        assert (tmp_path / "adapter_state.npz").exists()  # the weights went to the .npz


def test_ppo_state_holds_weights_and_adam_moments_as_numpy_arrays(tmp_path: Path):
    adapter = make_ppo(SPACE, {"max_models": 6, "batch_size": 3}, 0)
    drive(adapter)
    state = adapter.state_dict()
    assert isinstance(state["policy"]["lstm.weight_ih_l0"], np.ndarray)
    assert state["policy"]["lstm.weight_ih_l0"].shape == (4 * 32, max(SPACE.choices()) + 6)
    moments = state["optimizer"]["0"]
    assert {"step", "exp_avg", "exp_avg_sq"} <= set(moments) and float(moments["step"]) == 8.0
    save_state(tmp_path / "s.json", state)
    back = load_state(tmp_path / "s.json")
    assert isinstance(back["optimizer"]["0"]["exp_avg"], np.ndarray)
    other = make_ppo(SPACE, {"max_models": 6, "batch_size": 3}, 1)
    other.load_state_dict(back)
    assert other._opt.state_dict()["state"][0]["step"].item() == 8.0


def test_state_of_another_adapter_space_or_options_is_refused():
    state = make_evolution(SPACE, {"max_models": 5}, 0).state_dict()
    with pytest.raises(AdapterError, match="not 'random'"):
        make_random(SPACE, {}, 0).load_state_dict(state)
    with pytest.raises(AdapterError, match="population_size: saved 20, now 8"):
        make_evolution(SPACE, {"max_models": 5, "population_size": 8}, 0).load_state_dict(state)
    with pytest.raises(AdapterError, match="search.space"):
        make_evolution(VectorSpace("test-ints", (3, 3)), {"max_models": 5}, 0).load_state_dict(
            state
        )


# -- random search ---------------------------------------------------------------------------
def test_random_search_exhausts_a_small_space_before_repeating():
    small = VectorSpace("test-ints", (2, 2))
    asked, _ = drive(make_random(small, {"max_models": 6}, 0), small)
    keys = [vector_key(small.encode(c.arch)) for c in asked]
    assert len(set(keys[:4])) == 4 and len(keys) == 6


# -- regularized evolution -------------------------------------------------------------------
def test_evolution_mutates_one_choice_of_the_fittest_sampled_and_ages_the_population():
    adapter = make_evolution(SPACE, {"max_models": 30, "population_size": 5, "sample_size": 5}, 2)
    asked, adapter = drive(adapter, slots=1)
    by_id = {c.model_id: c for c in asked}
    assert all(c.parents == () and c.generation == 0 for c in asked[:5])
    for c in asked[5:]:
        (parent,) = c.parents
        diff = np.flatnonzero(
            np.array(SPACE.encode(c.arch)) != np.array(SPACE.encode(by_id[parent].arch))
        )
        assert len(diff) == 1 and c.generation == c.model_id // 5
    # one worker: the population is the last P models told, oldest first
    assert [c.model_id for c, _ in adapter.population()] == list(range(25, 30))
    fits = [fitness(SPACE, c) for c in asked]
    assert max(fits[-10:]) > max(fits[:5])


def test_mutate_one_changes_exactly_one_free_position():
    rng = np.random.default_rng(0)
    for _ in range(200):
        out = mutate_one([0, 0, 1], [1, 3, 2], rng)
        assert out[0] == 0 and sum(a != b for a, b in zip(out, [0, 0, 1], strict=True)) == 1
    assert mutate_one([0, 0], [1, 1], rng) == [0, 0]


def test_evolution_waits_for_a_parent_and_failed_models_never_join():
    adapter = make_evolution(SPACE, {"max_models": 10, "population_size": 2, "sample_size": 1}, 0)
    first = adapter.ask(3)
    assert len(first) == 2  # the initial population; no parent told yet: it waits
    adapter.tell([result(SPACE, first[0], failed=True)])
    assert adapter.ask(1) == []  # model 1 still in training, model 0 failed
    adapter.tell([result(SPACE, first[1])])
    assert [c.model_id for c, _ in adapter.population()] == [1]
    (child,) = adapter.ask(1)
    assert child.parents == (1,)
    adapter.tell([result(SPACE, child, failed=True)])
    assert [c.model_id for c, _ in adapter.population()] == [1]
    # every member failed and nothing in training: random proposals, not a stall
    stuck = make_evolution(SPACE, {"max_models": 4, "population_size": 2}, 0)
    _, stuck = drive(stuck, slots=1, fail={0, 1, 2})
    assert stuck.done()


# -- PPO ---------------------------------------------------------------------------------------
def test_ppo_learns_on_a_simple_landscape():
    """The policy's own samples score higher after the search (its proposals need not:
    once it prefers architectures it has evaluated, those are cache hits, not models)."""
    space = VectorSpace("test-ints", (3,) * 6)
    adapter = make_ppo(space, {"max_models": 120, "batch_size": 10}, 0)

    def policy_mean() -> float:
        return float(
            np.mean(
                [fitness(space, Candidate(0, "", {"v": adapter._sample()[0]})) for _ in range(200)]
            )
        )

    before = policy_mean()
    _, adapter = drive(adapter, space)
    assert adapter.updates >= 12  # cache hits fill batches without models
    assert policy_mean() > before + 2.0


def test_ppo_sync_agents_make_one_generation_async_agents_take_turns():
    sync = make_ppo(SPACE, {"max_models": 20, "batch_size": 3, "agents": 2}, 0)
    assert len(sync.ask()) == 6 and sync.ask() == []  # N * M, then the barrier
    asy = make_ppo(SPACE, {"max_models": 20, "batch_size": 2, "agents": 2, "update": "async"}, 0)
    got = asy.ask(5)
    assert len(got) == 4  # each agent's M; then both wait for rewards
    assert [len(a.batch) for a in asy._agents] == [2, 2]
    assert [e.source for e in asy._agents[0].batch] == [0, 2]  # round robin
    asy.tell([result(SPACE, got[0]), result(SPACE, got[2])])
    assert asy.updates == 1 and asy._agents[0].batch == []  # agent 0 alone updated
    assert [c.model_id for c in asy.ask(3)] == [4, 5]  # only agent 0 may propose


def test_ppo_cache_hits_cost_no_model_and_a_collapsed_policy_cannot_stall():
    small = VectorSpace("test-ints", (2, 2))  # 4 architectures, a budget of 7
    adapter = make_ppo(small, {"max_models": 7, "batch_size": 3, "max_cache_hits": 5}, 0)
    asked, adapter = drive(adapter, small)
    keys = [vector_key(small.encode(c.arch)) for c in asked]
    assert len(asked) == 7 and len(set(keys[:4])) == 4  # the agent's cache: no repeat first
    assert adapter.done() and adapter.updates == 3  # M counts models: [0 1 2] [3 4 5] [6]


def test_ppo_failed_models_reward_zero_and_torch_rng_is_left_alone():
    before = torch.random.get_rng_state()
    adapter = make_ppo(SPACE, {"max_models": 8, "batch_size": 4}, 0)
    drive(adapter, fail={0, 1, 5})
    assert adapter.updates == 2 and torch.equal(torch.random.get_rng_state(), before)


# -- state parts: a small head and append-only logs, saved after every tell -----------------------
def _nsganet(space, options, seed):
    return create_adapter("nsganet", space, options, seed)


PARTS_CASES = [
    *RESUME_CASES,
    ("nsganet", {"pop_size": 4, "n_offspring": 4, "n_generations": 4, "mode": "steady_state"}, 7),
    ("nsganet", {"pop_size": 4, "n_offspring": 2, "n_generations": 4}, 2),
]


def _same(a: Any, b: Any) -> bool:
    """Equal states (numpy arrays by value)."""
    if isinstance(a, dict):
        return isinstance(b, dict) and set(a) == set(b) and all(_same(a[k], b[k]) for k in a)
    if isinstance(a, list | tuple):
        return len(a) == len(b) and all(_same(x, y) for x, y in zip(a, b, strict=True))
    if isinstance(a, np.ndarray):
        return np.array_equal(a, b)
    return a == b


@pytest.mark.parametrize("name, options, k", PARTS_CASES)
def test_state_parts_saved_after_every_tell_resume_exactly(name, options, k, tmp_path: Path):
    """As the session saves: after every tell, the head whole and only the logs' new items
    (`StateStore`). Killed after the k-th tell, with a save cut between its log and its
    head, a fresh adapter loads it and proposes what the uninterrupted one did."""
    from lineage.adapter_state import StateStore

    makers = {**MAKERS, "nsganet": _nsganet}
    space = create_space("nsganet-macro", {}) if name == "nsganet" else SPACE

    def fresh():
        return makers[name](space, options, 11)

    whole, end_whole = drive(fresh(), space=space)
    path = tmp_path / "adapter_state.json"
    store = StateStore(path)
    adapter = fresh()
    asked: list[Candidate] = []
    inflight: list[Candidate] = []
    tells = 0
    while not adapter.done():
        if adapter.mode == "generational":
            batch = adapter.ask()
            asked += batch
        else:
            while len(inflight) < 3:
                got = adapter.ask(1)
                if not got:
                    break
                inflight += got
                asked += got
            batch = [inflight.pop(0)]
        adapter.tell([result(space, c) for c in batch])
        tells += 1
        head, logs = adapter.state_parts()
        assert _same({**head, **{key: list(v) for key, v in logs.items()}}, adapter.state_dict())
        store.save(head, logs)
        if tells == k:
            with open(store.log, "ab") as fh:  # the next save's log line; its head never came
                fh.write(b'{"results":[{"model_id":999}]}\n{"cut')
            store = StateStore(path)
            adapter = fresh()
            adapter.load_state_dict(store.load())
    assert proposals(asked) == proposals(whole)
    assert _same(StateStore(path).load(), end_whole.state_dict())
    assert len(store.log.read_bytes().splitlines()) <= tells + 1  # one line per save at most
