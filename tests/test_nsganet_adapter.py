"""The NSGA-Net ask/tell adapter: budget, NSGA-II survival, failures, resume, steady state.

Training is replaced by a deterministic toy objective of the genome (fitness and MFLOPs
trade off), so a whole 100-model search runs in about a second.
"""

from __future__ import annotations

import json
import math

import numpy as np
import pytest

from a4nn.types import Candidate, Result
from adapters.base import Adapter, AdapterError, pareto_results
from adapters.nsganet.algorithm import NSGANet, make_nsganet
from adapters.nsganet.presets import PRESETS, NSGANetSettings, get_preset
from adapters.nsganet.space import MacroSpace
from adapters.registry import available, get_factory, make_adapter, register

SPACE = MacroSpace()
_W = np.random.default_rng(42).uniform(0.5, 3.0, size=(2, SPACE.n_bits))


def toy_result(c: Candidate, fail=lambda c: False) -> Result:
    """More bits: more accurate and more expensive, with bit-dependent weights."""
    bits = SPACE.flatten(c.genome).astype(float)
    if fail(c):
        return Result(c.model_id, 0.0, float("nan"), 0, 0, status="failed", reason="boom")
    fitness = 60.0 + float(_W[0] @ bits)
    mflops = 1.0 + float(_W[1] @ bits) ** 1.5
    return Result(c.model_id, fitness, mflops, params=100, epochs_trained=3, status="converged")


def dominates(a: Result, b: Result) -> bool:
    return (a.fitness >= b.fitness and a.mflops <= b.mflops) and (
        a.fitness > b.fitness or a.mflops < b.mflops
    )


def run_generational(adapter, fail=lambda c: False):
    """The paper's loop: a whole generation asked, trained, told."""
    asked = []
    while not adapter.done():
        cands = adapter.ask()
        assert cands, "a generational adapter must not stall before its budget is told"
        asked.extend(cands)
        adapter.tell([toy_result(c, fail) for c in cands])
    return asked


def run_slots(adapter, slots=3, restore_after=None, fresh=None, fail=lambda c: False):
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
        adapter.tell([toy_result(c, fail)])
        tells += 1
        if tells == restore_after:
            state = json.loads(json.dumps(adapter.state_dict(), allow_nan=False))
            adapter = fresh()
            adapter.load_state_dict(state)
    return asked, adapter


def proposals(cands):
    return [(c.model_id, c.genome, c.generation, c.parents, c.proposer) for c in cands]


# -- budget and counts -------------------------------------------------------------------------
def test_paper_preset_proposes_exactly_100_models_in_10_generations():
    adapter = make_adapter("nsganet", preset="paper", seed=0)
    assert isinstance(adapter, Adapter)
    asked = run_generational(adapter)
    assert len(asked) == 100 == adapter.budget
    assert [c.model_id for c in asked] == list(range(100))
    sizes = {g: sum(c.generation == g for c in asked) for g in range(10)}
    assert sizes == dict.fromkeys(range(10), 10)
    assert all(c.parents == () for c in asked[:10])
    assert all(1 <= len(c.parents) <= 2 and max(c.parents) < c.model_id for c in asked[10:])
    assert len({SPACE.key(c.genome) for c in asked}) == 100  # nothing proposed twice
    assert adapter.done() and adapter.ask() == [] and adapter.ask(1) == []


def test_generational_barrier_and_partial_asks():
    adapter = make_nsganet(preset="quickstart", seed=1)  # 6 + 4 + 4 = 14 models
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
    a = run_generational(make_nsganet(preset="paper", seed=5))
    b = run_generational(make_nsganet(preset="paper", seed=5))
    c = run_generational(make_nsganet(preset="paper", seed=6))
    assert proposals(a) == proposals(b)
    assert [x.genome for x in a] != [x.genome for x in c]


def test_search_improves_on_the_initial_population():
    adapter = make_nsganet(preset="paper", seed=3)
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
    adapter = NSGANet(NSGANetSettings(pop_size=2, n_offspring=2, n_generations=2), seed=0)

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
    adapter = make_nsganet(preset="paper", seed=11, pop_size=6, n_offspring=8, n_generations=6)
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
    adapter = make_nsganet(preset="quickstart", seed=2)
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

    adapter = make_nsganet(preset="paper", seed=4)
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
    assert len({SPACE.key(c.genome) for c in asked}) == 100  # failed genomes not retried
    assert not {r.model_id for r in adapter.pareto()} & failed
    assert adapter.state_dict()["counters"]["failed"] == 33


def test_a_generation_that_all_failed_is_followed_by_random_proposals():
    adapter = make_nsganet(preset="quickstart", seed=0)
    gen0 = adapter.ask()
    adapter.tell([toy_result(c, lambda c: True) for c in gen0])
    assert adapter.population() == []
    gen1 = adapter.ask()
    assert len(gen1) == 4 and all(c.parents == () for c in gen1)
    adapter.tell([toy_result(c) for c in gen1])
    gen2 = adapter.ask()
    assert all(set(c.parents) <= {c.model_id for c in gen1} and c.parents for c in gen2)


def test_non_finite_objectives_count_as_failed():
    adapter = make_nsganet(preset="quickstart", seed=0)
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
    adapter = make_nsganet(preset="quickstart", seed=0)
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
        return make_nsganet(preset="paper", seed=9, mode=mode)

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
    adapter = make_nsganet(preset="quickstart", seed=0)
    adapter.tell([toy_result(c) for c in adapter.ask()])
    pending = adapter.ask(2)
    state = adapter.state_dict()
    text = json.dumps(state, allow_nan=False)
    assert state["rng"]["bit_generator"] == "PCG64"
    assert len(state["population"]) == 6
    assert (
        math.isinf(float(state["population"][0]["crowding"]))
        or state["population"][0]["crowding"] >= 0
    )
    assert state["counters"] == {"budget": 14, "asked": 8, "told": 6, "failed": 0, "generation": 1}
    assert [c["model_id"] for c in state["queue"]] == [8, 9]
    restored = make_nsganet(preset="quickstart", seed=123)  # the state's RNG wins over the seed
    restored.load_state_dict(json.loads(text))
    restored.tell([toy_result(c) for c in pending])
    assert [c.model_id for c in restored.ask()] == [8, 9]


def test_load_state_rejects_other_settings_and_adapters():
    state = make_nsganet(preset="paper", seed=0).state_dict()
    with pytest.raises(
        AdapterError,
        match=r"saved state was made with other settings \(pop_size: saved 10, now 6; n_offspring: saved 10, now 4; n_generations: saved 10, now 3\); build the adapter with the run's original preset",
    ):
        make_nsganet(preset="quickstart").load_state_dict(state)
    with pytest.raises(AdapterError, match="adapter state is for 'random', not 'nsganet'"):
        make_nsganet().load_state_dict({**state, "adapter": "random"})
    with pytest.raises(AdapterError, match="NSGA-Net state version 99 is not supported"):
        make_nsganet().load_state_dict({**state, "version": 99})


# -- steady state --------------------------------------------------------------------------------
def test_steady_state_breeds_one_child_per_free_worker():
    adapter = make_nsganet(seed=2, mode="steady_state", pop_size=4, n_offspring=3, n_generations=4)
    assert adapter.budget == 13 and adapter.steady_state
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
    assert len({SPACE.key(c.genome) for c in asked}) == 13
    assert adapter.ask(1) == []


def test_steady_state_ask_many_and_mode_switch():
    adapter = make_nsganet(preset="quickstart", seed=0)
    assert not adapter.steady_state
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
    gen0_rest = adapter.ask()
    assert [c.model_id for c in gen0_rest] == [3, 4, 5]  # the rest of the initial population


# -- presets and registry -------------------------------------------------------------------------
def test_presets():
    paper = get_preset("paper")
    assert (paper.pop_size, paper.n_offspring, paper.n_generations, paper.epochs) == (
        10,
        10,
        10,
        25,
    )
    assert (paper.phases, paper.nodes_per_phase, paper.channels) == (3, 4, (24, 48, 96))
    assert paper.budget == 100 and get_preset(None) == paper
    assert PRESETS["quickstart"].budget == 14
    with pytest.raises(
        ValueError, match=r"unknown NSGA-Net preset 'huge'; choose one of \['paper', 'quickstart'\]"
    ):
        get_preset("huge")


@pytest.mark.parametrize(
    ("overrides", "message"),
    [
        ({"pop_size": 1}, "NSGA-Net setting pop_size=1: must be an int >= 2"),
        (
            {"mode": "async"},
            "NSGA-Net setting mode='async': must be 'generational' or 'steady_state'",
        ),
        (
            {"channels": [8, 16]},
            "NSGA-Net setting channels=(8, 16): must be a positive int or 3 positive ints",
        ),
        ({"mutation_prob": 0.0}, "mutation_prob=0.0: must be None (1/n_bits) or in (0, 1]"),
        ({"popsize": 4}, "unknown NSGA-Net setting(s) ['popsize']; known settings: ["),
    ],
)
def test_bad_overrides(overrides, message):
    with pytest.raises(ValueError) as err:
        make_adapter("nsganet", preset="paper", **overrides)
    assert message in str(err.value)


def test_overrides_and_space_settings_reach_the_adapter():
    adapter = make_adapter(
        "nsganet", preset="quickstart", seed=3, phases=2, nodes_per_phase=5, pop_size=4
    )
    cands = adapter.ask()
    assert len(cands) == 4
    assert all(len(c.genome) == 2 and all(len(p) == 11 for p in c.genome) for c in cands)
    assert adapter.settings.channels == 8  # the preset's (8, 16, 32) as a base width


def test_registry_lookup_and_plug_in():
    assert "nsganet" in available()
    assert get_factory("nsganet") is make_nsganet
    with pytest.raises(ValueError, match=r"unknown NAS adapter 'ppo'; available: \["):
        make_adapter("ppo")
    with pytest.raises(ValueError, match="adapter 'nsganet' is already registered"):
        register("nsganet", make_nsganet)

    def make_mine(*, preset=None, seed=0, **overrides):
        return make_nsganet(preset="quickstart", seed=seed, **overrides)

    register("test-mine", make_mine)
    try:
        mine = make_adapter("test-mine", seed=1, pop_size=3)
        assert isinstance(mine, Adapter) and len(mine.ask()) == 3
    finally:
        register("test-mine", "adapters.nsganet.algorithm:make_nsganet", replace=True)
