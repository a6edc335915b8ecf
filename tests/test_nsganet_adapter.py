"""The NSGA-Net ask/tell adapter: budget, NSGA-II survival, failures, resume, steady state.

Training is replaced by a deterministic toy objective of the choice vector (fitness and
MFLOPs trade off), so a whole 100-model search runs in about a second. Most tests search
the paper's NSGA-Net macro space; the adapter is generic over search spaces, so the last
section runs it over a toy space of non-binary choices (tests/support_spaces.py).
"""

from __future__ import annotations

import json
import math
from typing import Any

import numpy as np
import pytest

from a4nn.registry import OptionsError, create_adapter, create_space
from a4nn.space import SearchSpace, space_size, vector_key
from a4nn.types import Candidate, Objective, Result
from adapters.base import FITNESS_AND_MFLOPS, Adapter, AdapterError, pareto_results
from adapters.nsganet.algorithm import NSGANet, make_nsganet
from adapters.nsganet.presets import PRESETS, NSGANetOptions, NSGANetSettings, get_preset
from adapters.nsganet.search_space import MacroOptions, NSGANetMacroSpace
from tests.support_spaces import VectorSpace

MACRO = NSGANetMacroSpace()  # the paper's space: 3 phases x 4 nodes, 21 bits


TOY = VectorSpace("toy-ints", (3, 4, 2, 5))


def weights(n: int) -> np.ndarray:
    return np.random.default_rng(42).uniform(0.5, 3.0, size=(2, n))


_W = {len(MACRO.choices()): weights(len(MACRO.choices()))}


def toy_result(c: Candidate, fail=lambda c: False, space: SearchSpace = MACRO) -> Result:
    """Larger choices: more accurate and more expensive, with position-dependent weights."""
    x = np.asarray(space.encode(c.arch), dtype=float)
    w = _W.setdefault(len(x), weights(len(x)))
    if fail(c):
        return Result(c.model_id, 0.0, float("nan"), 0, 0, status="failed", reason="boom")
    fitness = 60.0 + float(w[0] @ x)
    mflops = 1.0 + float(w[1] @ x) ** 1.5
    return Result(c.model_id, fitness, mflops, params=100, epochs_trained=3, status="converged")


def nsganet(seed: int = 0, space: SearchSpace = MACRO, **options: Any) -> NSGANet:
    """The registry's factory, as a run config's `search.options` reaches it."""
    return make_nsganet(space, options, seed)


def dominates(a: Result, b: Result) -> bool:
    return (a.fitness >= b.fitness and a.mflops <= b.mflops) and (
        a.fitness > b.fitness or a.mflops < b.mflops
    )


def run_generational(adapter, fail=lambda c: False, space: SearchSpace = MACRO):
    """The paper's loop: a whole generation asked, trained, told."""
    asked = []
    while not adapter.done():
        cands = adapter.ask()
        assert cands, "a generational adapter must not stall before its budget is told"
        asked.extend(cands)
        adapter.tell([toy_result(c, fail, space) for c in cands])
    return asked


def run_slots(adapter, slots=3, restore_after=None, fresh=None, fail=lambda c: False, space=MACRO):
    """Async-style loop: keep `slots` candidates in flight with ask(1), tell the oldest.

    With `restore_after=k`, after k tells the adapter's JSON state goes into `fresh()`,
    which continues (the in-flight candidates are told to the restored adapter).
    """
    asked, inflight, tells = [], [], 0
    while not adapter.done():
        while len(inflight) < slots:
            got = adapter.ask(1)
            if not got:
                break
            assert len(got) == 1
            inflight += got
            asked += got
        assert inflight, "adapter stalled"
        c = inflight.pop(0)
        adapter.tell([toy_result(c, fail, space)])
        tells += 1
        if tells == restore_after:
            state = json.loads(json.dumps(adapter.state_dict(), allow_nan=False))
            adapter = fresh()
            adapter.load_state_dict(state)
    return asked, adapter


def proposals(cands):
    return [(c.model_id, c.space, c.arch, c.generation, c.parents, c.proposer) for c in cands]


def keys(cands, space: SearchSpace = MACRO) -> set[str]:
    return {vector_key(space.encode(c.arch)) for c in cands}


# -- budget and counts -------------------------------------------------------------------------
def test_paper_preset_proposes_exactly_100_models_in_10_generations():
    space = create_space("nsganet-macro", {})
    adapter = create_adapter("nsganet", space, {"preset": "paper"}, seed=0)
    assert isinstance(adapter, Adapter)
    assert adapter.mode == "generational" and adapter.objectives == FITNESS_AND_MFLOPS
    asked = run_generational(adapter)
    assert len(asked) == 100 == adapter.budget
    assert [c.model_id for c in asked] == list(range(100))
    assert {(c.space, c.proposer) for c in asked} == {("nsganet-macro", "nsganet")}
    assert all(space.genomes.validate(c.arch) == c.arch for c in asked)  # the arch IS the genome
    sizes = {g: sum(c.generation == g for c in asked) for g in range(10)}
    assert sizes == dict.fromkeys(range(10), 10)
    assert all(c.parents == () for c in asked[:10])
    assert all(1 <= len(c.parents) <= 2 and max(c.parents) < c.model_id for c in asked[10:])
    assert len(keys(asked)) == 100  # nothing proposed twice
    assert adapter.done() and adapter.ask() == [] and adapter.ask(1) == []


def test_generational_barrier_and_partial_asks():
    adapter = nsganet(preset="quickstart", seed=1)  # 6 + 4 + 4 = 14 models
    first = adapter.ask(4)
    rest = adapter.ask()
    assert [c.model_id for c in first + rest] == list(range(6))
    assert adapter.ask() == []  # generation 0 not told yet: nothing can be bred
    adapter.tell([toy_result(c) for c in first])
    assert adapter.ask() == []  # still two results missing
    adapter.tell([toy_result(c) for c in reversed(rest)])
    gen1 = adapter.ask()
    assert [c.model_id for c in gen1] == [6, 7, 8, 9]
    assert {c.generation for c in gen1} == {1}
    assert all(set(c.parents) <= set(range(6)) for c in gen1)


def test_same_seed_same_proposals_other_seed_differs():
    a = run_generational(nsganet(preset="paper", seed=5))
    b = run_generational(nsganet(preset="paper", seed=5))
    c = run_generational(nsganet(preset="paper", seed=6))
    assert proposals(a) == proposals(b)
    assert [x.arch for x in a] != [x.arch for x in c]


def test_search_improves_on_the_initial_population():
    adapter = nsganet(preset="paper", seed=3)
    asked = run_generational(adapter)
    results = {c.model_id: toy_result(c) for c in asked}
    initial_front = pareto_results([results[i] for i in range(10)])
    final_front = adapter.pareto()
    # every initial Pareto point is matched or dominated by the final front
    for r in initial_front:
        assert any(
            f is r or dominates(f, r) or (f.fitness, f.mflops) == (r.fitness, r.mflops)
            for f in final_front
        )
    assert len({r.model_id for r in final_front} - set(range(10))) > 0


# -- NSGA-II survival --------------------------------------------------------------------------
def test_dominated_candidate_never_survives_over_a_dominating_one():
    """Crafted objectives: child 2 dominates everyone, child 3 is dominated by everyone."""
    table = {0: (50.0, 10.0), 1: (60.0, 20.0), 2: (70.0, 5.0), 3: (40.0, 100.0)}
    adapter = NSGANet(MACRO, NSGANetSettings(pop_size=2, n_offspring=2, n_generations=2), seed=0)

    def res(c):
        f, m = table[c.model_id]
        return Result(c.model_id, f, m, 1, 1)

    adapter.tell([res(c) for c in adapter.ask()])
    assert {c.model_id for c, _ in adapter.population()} == {0, 1}
    adapter.tell([res(c) for c in adapter.ask()])
    survivors = [c.model_id for c, _ in adapter.population()]
    assert survivors[0] == 2 and len(survivors) == 2 and 3 not in survivors
    assert adapter.done()
    assert [r.model_id for r in adapter.pareto()] == [2]


def test_every_generation_survives_in_non_dominated_order():
    adapter = nsganet(preset="paper", seed=11, pop_size=6, n_offspring=8, n_generations=6)
    results: dict[int, Result] = {}
    previous: set[int] = set()
    while not adapter.done():
        cands = adapter.ask()
        batch = [toy_result(c) for c in cands]
        results.update((r.model_id, r) for r in batch)
        adapter.tell(batch)
        pool = previous | {c.model_id for c in cands}
        survivors = {c.model_id for c, _ in adapter.population()}
        assert survivors <= pool and len(survivors) == min(6, len(pool))
        for d in pool - survivors:
            for s in survivors:
                assert not dominates(results[d], results[s]), (d, s)
        previous = survivors


def test_pareto_is_the_non_dominated_set_of_all_results():
    adapter = nsganet(preset="quickstart", seed=2)
    asked = run_generational(adapter)
    everything = [toy_result(c) for c in asked]
    front = adapter.pareto()
    ids = {r.model_id for r in front}
    assert front == sorted(front, key=lambda r: r.mflops)
    for r in everything:
        if r.model_id in ids:
            assert not any(dominates(o, r) for o in everything)
        else:
            assert any(dominates(f, r) for f in front)


# -- failures --------------------------------------------------------------------------------
def test_failed_results_never_breed_nor_survive():
    def fail(c):
        return c.model_id % 3 == 1

    adapter = nsganet(preset="paper", seed=4)
    failed: set[int] = set()
    asked = []
    while not adapter.done():
        cands = adapter.ask()
        asked += cands
        for c in cands:
            assert not set(c.parents) & failed, f"model {c.model_id} bred from failed {c.parents}"
        adapter.tell([toy_result(c, fail) for c in cands])
        failed |= {c.model_id for c in cands if fail(c)}
        assert not {c.model_id for c, _ in adapter.population()} & failed
    assert len(asked) == 100 and len(failed) == 33
    assert len(keys(asked)) == 100  # failed architectures not retried
    assert not {r.model_id for r in adapter.pareto()} & failed
    assert adapter.state_dict()["counters"]["failed"] == 33


def test_a_generation_that_all_failed_is_followed_by_random_proposals():
    adapter = nsganet(preset="quickstart", seed=0)
    gen0 = adapter.ask()
    adapter.tell([toy_result(c, lambda c: True) for c in gen0])
    assert adapter.population() == []
    gen1 = adapter.ask()
    assert len(gen1) == 4 and all(c.parents == () for c in gen1)
    adapter.tell([toy_result(c) for c in gen1])
    gen2 = adapter.ask()
    assert all(set(c.parents) <= {c.model_id for c in gen1} and c.parents for c in gen2)


def test_non_finite_objectives_count_as_failed():
    adapter = nsganet(preset="quickstart", seed=0)
    gen0 = adapter.ask()
    bad = {gen0[0].model_id, gen0[1].model_id}
    results = [toy_result(c) for c in gen0]
    results[0].fitness = float("nan")
    results[1].mflops = float("inf")
    adapter.tell(results)
    assert not {c.model_id for c, _ in adapter.population()} & bad
    json.dumps(adapter.state_dict(), allow_nan=False)


# -- protocol misuse -------------------------------------------------------------------------
def test_tell_errors_and_idempotent_retell():
    adapter = nsganet(preset="quickstart", seed=0)
    cands = adapter.ask()
    with pytest.raises(
        AdapterError,
        match=r"result for model 99, which this NSGA-Net adapter has not handed out \(asked so far: ids 0\.\.5\)",
    ):
        adapter.tell([Result(99, 1.0, 1.0, 1, 1)])
    with pytest.raises(AdapterError, match="tell\\(\\) takes a4nn.types.Result objects, got dict"):
        adapter.tell([{"model_id": 0}])
    r = toy_result(cands[0])
    adapter.tell([r])
    adapter.tell([toy_result(cands[0])])  # the same result again (e.g. after a resume): no-op
    with pytest.raises(AdapterError, match="model 0 was already told with fitness="):
        adapter.tell([Result(0, r.fitness + 1, r.mflops, 1, 1)])
    with pytest.raises(AdapterError, match="ask\\(n\\): n must be None or a positive int, got 0"):
        adapter.ask(0)


# -- state round trip ----------------------------------------------------------------------------
@pytest.mark.parametrize("k", [1, 7, 10, 23, 55, 99])
@pytest.mark.parametrize("mode", ["generational", "steady_state"])
def test_state_round_trip_continues_exactly(mode, k):
    def fresh():
        return nsganet(preset="paper", seed=9, mode=mode)

    def fail(c):
        return c.model_id % 7 == 3

    full, a = run_slots(fresh(), slots=3, fail=fail)
    resumed, b = run_slots(fresh(), slots=3, restore_after=k, fresh=fresh, fail=fail)
    assert len(full) == 100
    assert proposals(resumed) == proposals(full)
    assert [c.model_id for c, _ in b.population()] == [c.model_id for c, _ in a.population()]
    assert [r.model_id for r in b.pareto()] == [r.model_id for r in a.pareto()]
    assert b.state_dict() == a.state_dict()


def test_state_is_strict_json_with_rng_population_and_counters():
    adapter = nsganet(preset="quickstart", seed=0)
    adapter.tell([toy_result(c) for c in adapter.ask()])
    pending = adapter.ask(2)
    state = adapter.state_dict()
    text = json.dumps(state, allow_nan=False)
    assert (state["adapter"], state["version"], state["space"]) == ("nsganet", 2, "nsganet-macro")
    assert state["rng"]["bit_generator"] == "PCG64"
    assert len(state["population"]) == 6
    assert (
        math.isinf(float(state["population"][0]["crowding"]))
        or state["population"][0]["crowding"] >= 0
    )
    assert state["counters"] == {"budget": 14, "asked": 8, "told": 6, "failed": 0, "generation": 1}
    assert [c["model_id"] for c in state["queue"]] == [8, 9]
    # seen-keys are the choice vectors (here the genome's 21 bits) joined by commas
    asked = [Candidate.from_dict(c) for c in state["candidates"] + state["queue"]]
    assert set(state["seen"]) == keys(asked) and len(state["seen"]) == 10
    assert all(len(k.split(",")) == 21 for k in state["seen"])
    assert all(c["space"] == "nsganet-macro" and "arch" in c for c in state["candidates"])
    restored = nsganet(preset="quickstart", seed=123)  # the state's RNG wins over the seed
    restored.load_state_dict(json.loads(text))
    restored.tell([toy_result(c) for c in pending])
    assert [c.model_id for c in restored.ask()] == [8, 9]


def test_load_state_rejects_other_settings_spaces_versions_and_adapters():
    state = nsganet(preset="paper", seed=0).state_dict()
    with pytest.raises(
        AdapterError,
        match=r"saved state was made with other settings \(pop_size: saved 10, now 6; n_offspring: saved 10, now 4; n_generations: saved 10, now 3\); build the adapter with the run's original preset",
    ):
        nsganet(preset="quickstart").load_state_dict(state)
    with pytest.raises(AdapterError, match="adapter state is for 'random', not 'nsganet'"):
        nsganet().load_state_dict({**state, "adapter": "random"})
    with pytest.raises(AdapterError, match="NSGA-Net state version 99 is not supported"):
        nsganet().load_state_dict({**state, "version": 99})
    with pytest.raises(AdapterError, match="NSGA-Net state version 1 is not supported"):
        nsganet().load_state_dict({**state, "version": 1})  # a run of the genome-only code
    with pytest.raises(
        AdapterError,
        match="the saved state searched space 'nsganet-macro' with choices .*, this adapter searches 'toy-ints'",
    ):
        nsganet(space=TOY).load_state_dict(state)


def test_load_state_rejects_a_macro_space_of_another_shape():
    adapter = nsganet(preset="quickstart", seed=0)
    adapter.tell([toy_result(c) for c in adapter.ask()])
    state = adapter.state_dict()
    other = NSGANetMacroSpace(MacroOptions(phases=2, channels=8))
    with pytest.raises(AdapterError):
        nsganet(preset="quickstart", space=other).load_state_dict(state)


# -- steady state --------------------------------------------------------------------------------
def test_steady_state_breeds_one_child_per_free_worker():
    adapter = nsganet(seed=2, mode="steady_state", pop_size=4, n_offspring=3, n_generations=4)
    assert adapter.budget == 13 and adapter.steady_state and adapter.mode == "steady_state"
    told: dict[int, Result] = {}
    inflight: list[Candidate] = []
    asked: list[Candidate] = []
    while not adapter.done():
        while len(inflight) < 2:
            parents_now = {c.model_id for c, _ in adapter.population()}
            got = adapter.ask()  # None: one candidate in steady state
            if not got:
                break
            (c,) = got
            assert set(c.parents) <= parents_now
            inflight.append(c)
            asked.append(c)
        c = inflight.pop(0)
        r = toy_result(c)
        told[c.model_id] = r
        before = {m.model_id for m, _ in adapter.population()}
        adapter.tell([r])
        survivors = {m.model_id for m, _ in adapter.population()}
        pool = before | {c.model_id}
        assert survivors <= pool and len(survivors) == min(4, len(told))
        for d in pool - survivors:  # survival after each result, in non-dominated order
            assert not any(dominates(told[d], told[s]) for s in survivors)
    assert [c.generation for c in asked] == [0] * 4 + [1] * 3 + [2] * 3 + [3] * 3
    assert all(c.parents == () for c in asked[:4]) and all(c.parents for c in asked[6:])
    assert len(keys(asked)) == 13
    assert adapter.ask(1) == []


def test_steady_state_ask_many_and_mode_switch():
    adapter = nsganet(preset="quickstart", seed=0)
    assert not adapter.steady_state and adapter.mode == "generational"
    adapter.steady_state = True  # the flows' switch, before the first ask
    assert adapter.mode == "steady_state"
    three = adapter.ask(3)
    assert len(three) == 3
    with pytest.raises(
        AdapterError, match="cannot switch NSGA-Net to generational with 3 candidates outstanding"
    ):
        adapter.set_steady_state(False)
    adapter.tell([toy_result(c) for c in three])
    adapter.set_steady_state(False)
    assert adapter.mode == "generational"
    gen0_rest = adapter.ask()
    assert [c.model_id for c in gen0_rest] == [3, 4, 5]  # the rest of the initial population


# -- presets and options -------------------------------------------------------------------------
def test_presets():
    paper = get_preset("paper")
    assert (paper.pop_size, paper.n_offspring, paper.n_generations, paper.mode) == (
        10,
        10,
        10,
        "generational",
    )
    assert paper.budget == 100 and get_preset(None) == paper
    assert PRESETS["quickstart"].budget == 14
    assert NSGANetOptions().settings() == paper  # no options: the paper's search
    # the paper's space is the space's defaults (no longer part of the adapter's settings)
    space = MacroOptions()
    assert (space.phases, space.nodes_per_phase, space.widths()) == (3, 4, [24, 48, 96])
    with pytest.raises(
        ValueError, match=r"unknown NSGA-Net preset 'huge'; choose one of \['paper', 'quickstart'\]"
    ):
        get_preset("huge")


@pytest.mark.parametrize(
    ("options", "message"),
    [
        ({"pop_size": 1}, "search.options.pop_size: Input should be greater than or equal to 2"),
        ({"pop_size": "many"}, "search.options.pop_size: Input should be a valid integer"),
        (
            {"mode": "async"},
            "search.options.mode: Input should be 'generational' or 'steady_state'",
        ),
        ({"mutation_prob": 0.0}, "search.options.mutation_prob: Input should be greater than 0"),
        ({"crossover_prob": 1.5}, "search.options.crossover_prob: Input should be less than"),
        ({"popsize": 4}, "search.options.popsize: Extra inputs are not permitted"),
        ({"preset": "huge"}, "search.options.preset: Input should be 'paper' or 'quickstart'"),
        # the space's settings are not the adapter's options any more
        ({"channels": [8, 16, 32]}, "search.options.channels: Extra inputs are not permitted"),
    ],
)
def test_bad_options_name_the_field(options, message):
    with pytest.raises(OptionsError) as err:
        create_adapter("nsganet", MACRO, {"preset": "paper", **options})
    assert message in str(err.value)
    assert isinstance(err.value, ValueError)


def test_two_bad_options_are_both_named():
    with pytest.raises(OptionsError) as err:
        make_nsganet(MACRO, {"pop_size": 0, "n_offspring": 0}, 0)
    assert "search.options.pop_size" in str(err.value)
    assert "search.options.n_offspring" in str(err.value)


@pytest.mark.parametrize(
    ("overrides", "message"),
    [
        ({"pop_size": 1}, "NSGA-Net setting pop_size=1: must be an int >= 2"),
        (
            {"mode": "async"},
            "NSGA-Net setting mode='async': must be 'generational' or 'steady_state'",
        ),
        ({"mutation_prob": 0.0}, "mutation_prob=0.0: must be None (1/n) or in (0, 1]"),
        ({"popsize": 4}, "unknown NSGA-Net setting(s) ['popsize']; known settings: ["),
        ({"channels": 8}, "unknown NSGA-Net setting(s) ['channels']"),
    ],
)
def test_bad_settings_overrides(overrides, message):
    """NSGANetSettings built in code (not from a run config) check themselves too."""
    with pytest.raises(ValueError) as err:
        get_preset("paper").with_overrides(**overrides)
    assert message in str(err.value)


def test_settings_are_checked_by_the_adapter():
    with pytest.raises(ValueError, match="NSGA-Net setting n_offspring=0: must be an int >= 1"):
        NSGANet(MACRO, NSGANetSettings(n_offspring=0))


def test_options_and_space_options_reach_the_adapter():
    space = create_space("nsganet-macro", {"phases": 2, "nodes_per_phase": 5, "channels": 8})
    adapter = create_adapter(
        "nsganet", space, {"preset": "quickstart", "pop_size": 4, "mode": "steady_state"}, seed=3
    )
    assert adapter.space is space and adapter.mode == "steady_state"
    assert (adapter.settings.pop_size, adapter.settings.n_offspring) == (4, 4)
    cands = adapter.ask(4)
    assert len(cands) == 4
    assert all(len(c.arch) == 2 and all(len(p) == 11 for p in c.arch) for c in cands)
    assert space.options.channels == 8


def test_the_seed_reaches_the_adapter():
    def first(seed):
        return create_adapter("nsganet", MACRO, {"preset": "quickstart"}, seed=seed).ask()

    assert proposals(first(7)) == proposals(first(7))
    assert [c.arch for c in first(7)] != [c.arch for c in first(8)]


# -- any search space: a toy space of integer choices -------------------------------------------
def test_toy_space_is_a_search_space():
    assert isinstance(TOY, SearchSpace)
    assert space_size(TOY.choices()) == 3 * 4 * 2 * 5


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_integer_space_proposals_are_valid_unseen_and_bred(seed):
    adapter = nsganet(seed=seed, space=TOY, preset="quickstart", n_generations=6)  # 26 of 120
    asked = run_generational(adapter, space=TOY)
    assert len(asked) == 26 == adapter.budget
    assert {(c.space, c.proposer) for c in asked} == {("toy-ints", "nsganet")}
    for c in asked:
        v = c.arch["v"]
        assert all(isinstance(x, int) and 0 <= x < n for x, n in zip(v, TOY.choices(), strict=True))
        assert TOY.decode(TOY.encode(c.arch)) == c.arch
    assert len(keys(asked, TOY)) == 26  # nothing proposed twice
    bred = [c for c in asked if c.parents]
    assert len(bred) >= 10 and all(set(c.parents) < {d.model_id for d in asked} for c in bred)
    # children use the whole range of each choice, not just bits
    values = np.array([c.arch["v"] for c in bred])
    assert values.max() > 1
    assert adapter.pareto() and all(r.model_id < 26 for r in adapter.pareto())


def test_integer_space_search_improves_on_the_initial_population():
    adapter = nsganet(seed=3, space=TOY, preset="quickstart", n_generations=8)
    asked = run_generational(adapter, space=TOY)
    results = {c.model_id: toy_result(c, space=TOY) for c in asked}
    initial_front = pareto_results([results[i] for i in range(6)])
    final_front = adapter.pareto()
    for r in initial_front:
        assert any(
            dominates(f, r) or (f.fitness, f.mflops) == (r.fitness, r.mflops) for f in final_front
        )


def test_integer_space_with_a_fixed_position_and_a_small_space():
    """A position of 1 choice stays 0; a space hardly bigger than the budget is exhausted
    without repeats (children the GA cannot find are random unseen vectors)."""
    space = VectorSpace("toy-ints", (3, 1, 2, 2))  # 12 vectors
    adapter = nsganet(seed=0, space=space, preset="quickstart", n_generations=2)  # 10 models
    asked = run_generational(adapter, space=space)
    assert len(keys(asked, space)) == 10
    assert all(c.arch["v"][1] == 0 for c in asked)


@pytest.mark.parametrize("k", [2, 6, 11, 19])
@pytest.mark.parametrize("mode", ["generational", "steady_state"])
def test_integer_space_state_round_trip_continues_exactly(mode, k):
    def fresh():
        return nsganet(seed=4, space=TOY, preset="quickstart", n_generations=6, mode=mode)

    def fail(c):
        return c.model_id % 5 == 2

    full, a = run_slots(fresh(), slots=3, fail=fail, space=TOY)
    resumed, b = run_slots(fresh(), slots=3, restore_after=k, fresh=fresh, fail=fail, space=TOY)
    assert len(full) == 26
    assert proposals(resumed) == proposals(full)
    assert [c.model_id for c, _ in b.population()] == [c.model_id for c, _ in a.population()]
    assert b.state_dict() == a.state_dict()
    state = b.state_dict()
    assert state["space"] == "toy-ints"
    assert set(state["seen"]) == keys(resumed, TOY)


def test_declared_objectives_drive_selection():
    """objectives=(fitness max, params min): a result's mflops no longer matter."""
    objs = (Objective("fitness", "max"), Objective("params", "min"))
    adapter = NSGANet(
        TOY, NSGANetSettings(pop_size=2, n_offspring=2, n_generations=2), objectives=objs
    )
    table = {0: (50.0, 10), 1: (60.0, 20), 2: (70.0, 5), 3: (40.0, 100)}

    def res(c):
        f, p = table[c.model_id]
        return Result(c.model_id, f, float("nan"), params=p, epochs_trained=1)

    adapter.tell([res(c) for c in adapter.ask()])
    adapter.tell([res(c) for c in adapter.ask()])
    assert adapter.objectives == objs
    assert [r.model_id for r in adapter.pareto()] == [2]  # nan mflops: still usable
    assert adapter.state_dict()["counters"]["failed"] == 0
