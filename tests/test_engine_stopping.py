"""The stop decision (`engine.stopping`): each rule and guard decides the case it owns, the
engine reports which one decided, and engine errors are logged with the model id."""

from __future__ import annotations

import ast
import logging
import math
import sys
from dataclasses import replace
from pathlib import Path

import numpy as np

from engine import Engine
from engine.stopping import (
    AbsoluteTolerance,
    Evidence,
    MinEpochs,
    MinPoints,
    NothingToSave,
    OnlyPriorStops,
    PoolWarmingUp,
    ProbabilityRule,
    SpreadRule,
    ValidPredictions,
    policy_for,
)

ENGINE_DIR = Path(__file__).resolve().parents[1] / "engine"
# the engine runs in any training loop: the standard library, numpy and scipy (and PyYAML,
# only to read a settings file), never a package of the project
ALLOWED = set(sys.stdlib_module_names) | {"numpy", "scipy", "yaml"}


def ev(preds: list[float], **kw) -> Evidence:
    """Evidence after epoch 10 with 11 points and the prediction list `preds`."""
    return Evidence(epoch=kw.pop("epoch", 10), points=kw.pop("points", 11), predictions=preds, **kw)


def exact_curve(n: int = 25) -> list[float]:
    """A curve of the paper's family itself: its predictions agree from the first three on."""
    return [95.0 - 1.5 ** (6.0 - e) for e in range(n)]


# -- rules ------------------------------------------------------------------------------------
def test_spread_rule_stops_when_the_last_n_predictions_hug_their_median():
    rule = SpreadRule(n=3, r=0.5)
    assert rule.decide(ev([90.0, 94.0, 94.2, 94.4])).stop  # only the last 3 count
    held = rule.decide(ev([94.0, 94.6, 94.0]))  # 94.6 lies 0.6 from the median 94.0
    assert not held.stop and "spread 0.6" in held.reason
    few = rule.decide(ev([94.0, 94.2]))
    assert not few.stop and few.reason == "2 of 3 predictions"
    # the range is not the rule's business (the valid_predictions guard owns it)
    assert rule.decide(ev([100.2, 100.1, 100.3])).stop
    assert SpreadRule(n=2, r=0.5).decide(ev([94.0, 95.0])).stop  # even n: median 94.5


def test_probability_rule_needs_agreement_and_confidence():
    rule = ProbabilityRule(SpreadRule(n=2, r=0.5), AbsoluteTolerance(0.25), confidence=0.8)
    agree = [94.0, 94.1]
    assert rule.decide(ev(agree, p_within=0.85)).stop
    low = rule.decide(ev(agree, p_within=0.5))
    assert not low.stop and "0.500 < 0.8" in low.reason
    assert not rule.decide(ev([94.0, 95.2], p_within=0.99)).stop  # 0.6 from their median
    # no probability from the predictor: a normal error with its std
    assert rule.decide(ev(agree, std=0.1)).stop  # P(|e| <= 2.5 std) = 0.988
    assert not rule.decide(ev(agree, std=0.5)).stop  # P(|e| <= 0.5 std) = 0.38
    nothing = rule.decide(ev(agree))
    assert not nothing.stop and "no uncertainty" in nothing.reason


# -- guards -----------------------------------------------------------------------------------
def test_min_points_guard_holds_prediction_until_c_min_plus_one_points():
    g = MinPoints(c_min=3)
    assert g.veto(ev([], points=3)) == "3 of 4 points before predicting"
    assert g.veto(ev([], points=4)) is None


def test_min_epochs_guard_vetoes_before_the_fraction_of_the_target():
    g = MinEpochs(fraction=0.5, target_x=25)
    assert "fewer than min_epoch_fraction 0.5 of 25" in g.veto(ev([], epoch=11))
    assert g.veto(ev([], epoch=12)) is None  # 13 epochs >= 12.5
    assert MinEpochs(fraction=0.0, target_x=25).veto(ev([], epoch=0)) is None


def test_pool_warming_up_guard_vetoes_until_the_pool_is_seeded():
    g = PoolWarmingUp(min_curves=3)
    assert "warming up: 2 of 3 models" in g.veto(ev([], pool=2))
    assert "0 of 3" in g.veto(ev([], pool=None))
    assert g.veto(ev([], pool=3)) is None


def test_valid_predictions_guard_vetoes_failed_and_out_of_range_predictions():
    g = ValidPredictions(n=3, lo=0.0, hi=100.0)
    assert "failed prediction" in g.veto(ev([94.0, math.inf, 94.1]))
    assert "outside value_range" in g.veto(ev([99.9, 100.2, 100.1]))
    assert g.veto(ev([math.inf, 94.0, 94.1, 94.2])) is None  # out of the last 3
    assert ValidPredictions(n=3, lo=None, hi=None).veto(ev([100.2, 100.1, 100.3])) is None


def test_only_prior_stops_guard_vetoes_any_other_source():
    g = OnlyPriorStops()
    assert "came from families" in g.veto(ev([], source="families"))
    assert "came from no predictor" in g.veto(ev([], source=None))
    assert g.veto(ev([], source="prior")) is None


def test_nothing_to_save_guard_vetoes_from_the_budgets_last_epoch_on():
    g = NothingToSave(last_epoch=24)
    assert g.veto(ev([], epoch=23)) is None
    assert "epoch 24 is the budget's last: a stop saves nothing" in g.veto(ev([], epoch=24))
    assert g.veto(ev([], epoch=25)) is not None


# -- the policy each preset gets --------------------------------------------------------------
def test_each_preset_gets_its_rule_and_guards():
    paper = policy_for(Engine.from_preset("paper").config)
    assert paper.describe() == ["min_points", "min_epochs", "valid_predictions", "spread"]
    default = policy_for(Engine.from_preset("default").config)
    assert default.describe() == [
        "min_points",
        "min_epochs",
        "pool_warming_up",
        "valid_predictions",
        "only_prior_stops",
        "seed_on_probation",
        "nothing_to_save",
        "probability",
    ]
    # the prior's guards hold whichever rule stops (they used to hide in the probability)
    spread_prior = policy_for(Engine.from_preset("default", stop_rule="spread").config)
    assert "pool_warming_up" in spread_prior.describe()
    assert "only_prior_stops" in spread_prior.describe()


def test_the_first_vetoing_guard_decides_and_the_rule_is_not_asked():
    policy = policy_for(Engine.from_preset("default").config)
    agree = [94.0, 94.0]
    v = policy.decide(ev(agree, p_within=1.0, source="families", pool=1))
    assert v.veto and v.by == "pool_warming_up" and not v.stop
    v = policy.decide(ev(agree, p_within=1.0, source="families", pool=5))
    assert v.veto and v.by == "only_prior_stops"
    v = policy.decide(ev(agree, p_within=1.0, source="prior", pool=5))
    assert v.stop and v.by == "probability" and not v.veto


# -- what the engine reports ------------------------------------------------------------------
def test_decisions_name_the_rule_that_stopped_and_the_guard_that_held():
    tr = Engine.from_preset("paper").start("m")
    ds = [tr.observe(e, v) for e, v in enumerate(exact_curve(8))]
    assert ds[0].verdict.by == "min_points" and "vetoed by min_points" in ds[0].note
    assert ds[4].verdict.by == "spread" and not ds[4].converged  # 2 of 3 predictions
    assert ds[5].converged and ds[5].verdict.by == "spread"
    assert ds[5].note.startswith("stopped by spread: the last 3 predictions lie within 0.5")
    assert tr.observe(6, 90.0).verdict is None  # after the stop: no decision taken


def test_min_epoch_fraction_holds_an_engine_that_would_stop():
    tr = Engine.from_preset("paper", min_epoch_fraction=0.5).start("m")
    ds = []
    for e, v in enumerate(exact_curve()):
        ds.append(tr.observe(e, v))
        if ds[-1].converged:
            break
    assert tr.converged_epoch == 12  # the spread rule alone stops at epoch 5
    assert all(d.verdict.by == "min_epochs" for d in ds[5:12])


def test_warming_up_is_a_named_veto_not_a_hidden_probability():
    eng = Engine.from_preset("default", e_pred=12)
    t = np.arange(1, 13, dtype=float)
    for m in range(3):
        tr = eng.start(m)
        for e, v in enumerate(99.9 - 8.0 * t**-1.5):
            d = tr.observe(e, float(v))
            assert not d.converged
        assert d.verdict.by == "pool_warming_up" and f"{m} of 3 models" in d.note
        eng.finish(tr)


LAST = 10  # epochs in the budget of the next test


def _pool_curve(final: float) -> list[float]:
    return [final - 6.0 * 0.5**e for e in range(LAST)]


def _late_model_decisions(without_guard: bool) -> tuple[Engine, object, list]:
    """A default engine (delta 1) whose pool holds 8 finished curves, and a model above all
    of them for six epochs, inside their levels after: the prior predicts it only from epoch
    8 on, so the probability rule could first stop it at epoch 9, the budget's last."""
    eng = Engine.from_preset("default", e_pred=LAST, delta=1.0)
    if without_guard:
        keep = tuple(g for g in eng.policy.guards if g.name != "nothing_to_save")
        eng.policy = replace(eng.policy, guards=keep)
    for i, final in enumerate(np.linspace(97.0, 99.5, 8)):
        eng.learn_curve(list(range(LAST)), _pool_curve(float(final)), stopped=False, model_id=i)
    tr = eng.start("late")
    ds = [tr.observe(e, v) for e, v in enumerate([99.9] * 6 + _pool_curve(98.5)[6:])]
    return eng, tr, ds


def test_a_model_at_the_budgets_last_epoch_keeps_its_measured_value_and_joins_the_pool():
    measured = _pool_curve(98.5)[-1]
    # without the guard the rule stops it there: nothing saved, a prediction handed on, and
    # the model (stopped) is kept out of the pool
    eng, tr, ds = _late_model_decisions(without_guard=True)
    assert ds[-1].converged and ds[-1].verdict.by == "probability"
    assert tr.fitness() != measured
    eng.finish(tr)
    assert eng.predictor.builds.n == 8
    # with it (the default preset): not stopped, the measured value, and the pool learns
    eng, tr, ds = _late_model_decisions(without_guard=False)
    assert not ds[-1].converged and ds[-1].verdict.by == "nothing_to_save"
    assert ds[-1].note.endswith("a stop saves nothing, the measured value is handed on")
    assert tr.fitness() == measured
    eng.finish(tr)
    assert eng.predictor.builds.n == 9


# -- errors are logged with the model id, never raised ----------------------------------------
def test_a_failing_finish_is_logged_with_the_model_id_and_does_not_raise(caplog):
    eng = Engine.from_preset("default", e_pred=10)
    tr = eng.start("model-7")
    for e in range(10):
        tr.observe(e, 60.0 + 3 * e)
    tr.state["log"].append(("broken",))  # a prediction log damaged on its way (model.json)
    with caplog.at_level(logging.ERROR, logger="engine.engine"):
        eng.finish(tr)
    assert "finish failed for model 'model-7'" in caplog.text
    assert "ValueError" in caplog.text  # the traceback is kept


def test_a_failing_learn_curve_is_logged_with_the_model_id_and_does_not_raise(caplog):
    eng = Engine.from_preset("default", e_pred=10)
    with caplog.at_level(logging.ERROR, logger="engine.engine"):
        eng.learn_curve([0, 1, 2], [50.0, 60.0], model_id=42)  # one value short
    assert "learn_curve failed for model 42" in caplog.text
    assert eng.finished == 0


# -- the engine's imports ---------------------------------------------------------------------
def engine_imports() -> dict[str, set[str]]:
    """Module -> the engine modules and top-level packages it imports (even lazily)."""
    out: dict[str, set[str]] = {}
    for path in ENGINE_DIR.glob("*.py"):
        deps: set[str] = set()
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.ImportFrom):
                if node.level == 1:
                    mods = [node.module] if node.module else [a.name for a in node.names]
                    deps |= {f"engine.{m.split('.')[0]}" for m in mods}
                elif node.level == 0 and node.module:
                    deps.add(_engine_or_top(node.module))
            elif isinstance(node, ast.Import):
                deps |= {_engine_or_top(a.name) for a in node.names}
        out[f"engine.{path.stem}"] = deps - {"engine", "engine.__init__"}
    return out


def _engine_or_top(name: str) -> str:
    parts = name.split(".")
    return ".".join(parts[:2]) if parts[0] == "engine" and len(parts) > 1 else parts[0]


def test_engine_modules_import_no_project_package_and_no_cycle():
    graph = engine_imports()
    for mod, deps in graph.items():
        foreign = deps - ALLOWED - set(graph)
        assert not foreign, f"{mod} imports {sorted(foreign)}"
    inner = {m: {d for d in deps if d in graph} for m, deps in graph.items()}
    done: set[str] = set()

    def visit(m: str, path: tuple[str, ...]) -> None:
        assert m not in path, f"import cycle: {' -> '.join(path + (m,))}"
        if m in done:
            return
        for d in inner[m]:
            visit(d, path + (m,))
        done.add(m)

    for m in inner:
        visit(m, ())
