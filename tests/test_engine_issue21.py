"""Issue 21/22: a tolerance scaled to the search, an architecture-aware prior, a seeded
prior on probation, the sweep, and a pool whose per-call cost does not grow."""

from __future__ import annotations

import json
import math

import numpy as np
import pytest

from engine import Engine, EngineConfigError, read_curves, replay
from engine.ensemble import Normalizer, PoolView, PreviousBuilds, RunningStats, regress
from engine.replay import Curves, format_sweep, main_knob, sweep
from engine.stopping import (
    AbsoluteTolerance,
    Evidence,
    PoolSpreadTolerance,
    ProbabilityRule,
    RankTolerance,
    SeedOnProbation,
    SpreadRule,
)


def search(n=30, epochs=20, seed=0, offset=0.0, arch_effect=0.0) -> Curves:
    """Saturating curves; with `arch_effect`, the first choice of a 6-bit architecture adds
    up to that much, growing with the square of the epoch (so it shows late)."""
    rng = np.random.default_rng(seed)
    c = Curves(source="synthetic")
    for m in range(n):
        bits = rng.integers(0, 2, 6)
        ceiling = rng.uniform(0.90, 0.96)
        # gap and rate vary little: the early level tells the final value (as in real searches)
        gap, alpha = rng.uniform(0.28, 0.32), rng.uniform(1.1, 1.3)
        t = np.arange(1, epochs + 1, dtype=float)
        y = ceiling - gap * t**-alpha + rng.normal(0, 0.0005, epochs)
        y += arch_effect * bits[0] * (t / epochs) ** 2
        c.labels[m] = str(m)
        c.features[m] = bits.astype(float).tolist()
        c.rows += [(m, e, float(100 * v + offset)) for e, v in enumerate(np.clip(y, 0, 1))]
    return c


def view(values, maximize=True) -> PoolView:
    cfg = Engine.from_preset("default").config
    if not maximize:
        cfg = cfg.with_(direction="minimize")
    norm = Normalizer(cfg)
    z = np.sort(norm.z(np.asarray(values, float)))
    return PoolView(z, norm)


# -- tolerances -----------------------------------------------------------------------------
def test_pool_view_reads_quantiles_and_ranks_in_fitness_units():
    vals = [90.0, 95.0, 97.0, 98.0, 99.0, 99.5]
    for maximize in (True, False):
        v = view(vals, maximize)
        for p in (0.0, 0.1, 0.25, 0.5, 0.75, 1.0):
            assert v.quantile(p) == pytest.approx(np.quantile(vals, p))
        assert v.iqr() == pytest.approx(np.subtract(*np.quantile(vals, [0.75, 0.25])))
    assert view(vals).cdf(97.0) == pytest.approx(3 / 6)


def test_pool_spread_tolerance_scales_with_the_pool_and_keeps_its_floor():
    tol = PoolSpreadTolerance(floor=0.25, scale=0.2)
    narrow = Evidence(10, 11, [99.0], pool_view=view([98.9, 99.0, 99.1, 99.2]))
    wide = Evidence(10, 11, [95.0], pool_view=view([90.0, 93.0, 96.0, 99.0]))
    assert tol.delta(narrow) == 0.25
    assert tol.delta(wide) == pytest.approx(0.2 * 4.5)
    assert tol.delta(Evidence(10, 11, [95.0])) == 0.25  # no pool yet: the floor


def test_rank_tolerance_is_the_distance_to_the_neighbouring_quantiles():
    pool = view(np.linspace(90, 99, 10))
    tol = RankTolerance(floor=0.1, scale=0.1)
    d = tol.delta(Evidence(10, 11, [94.0], pool_view=pool))
    assert 0.1 < d <= 1.0 + 1e-9
    dense = view([99.90, 99.91, 99.92, 99.93, 99.94])
    assert tol.delta(Evidence(10, 11, [99.92], pool_view=dense)) == 0.1  # floor


def test_probability_rule_asks_the_calibration_at_the_scaled_tolerance():
    asked = []

    def p_at(d):
        asked.append(d)
        return 0.9 if d >= 0.8 else 0.5

    rule = ProbabilityRule(SpreadRule(2, 0.5), PoolSpreadTolerance(0.25, 0.2), 0.8)
    ev = Evidence(10, 11, [95.0, 95.1], p_within_at=p_at, pool_view=view([90.0, 93.0, 96.0, 99.0]))
    v = rule.decide(ev)
    assert v.stop and asked == [pytest.approx(0.9)]
    assert "IQR" in v.reason
    narrow = ProbabilityRule(SpreadRule(2, 0.5), AbsoluteTolerance(0.25), 0.8)
    assert not narrow.decide(ev).stop


def test_tolerance_settings_are_validated():
    with pytest.raises(EngineConfigError, match="tolerance='relative' is invalid"):
        Engine.from_preset("default", tolerance="relative")
    with pytest.raises(EngineConfigError, match="tolerance_scale=1.5 is invalid"):
        Engine.from_preset("default", tolerance="rank", tolerance_scale=1.5)
    with pytest.raises(EngineConfigError, match="prior_arch_k=-1 is invalid"):
        Engine.from_preset("default", prior_arch_k=-1)


# -- the pool: running statistics -----------------------------------------------------------
def test_running_regression_equals_least_squares_on_the_pool():
    rng = np.random.default_rng(1)
    pb = PreviousBuilds("log_error")
    for _ in range(40):
        z = np.clip(np.cumsum(rng.uniform(0, 0.05, 12)) + rng.uniform(0.3, 0.5), 0, 0.999)
        pb.add(np.arange(12.0), z, 11, complete=True)
    f = lambda v: -np.log(np.maximum(1.001 - v, 1e-12))  # noqa: E731
    e = 5
    x, t = f(pb.levels[:, e]), f(pb.finals)
    b, a = np.polyfit(x, t, 1)
    lv = float(np.median(pb.levels[:, e]))
    u, su, a2, b2, _ = regress(pb.stats, pb.lo, pb.hi, e, lv, "log_error", 0.0)
    assert a2 == pytest.approx(a, rel=1e-6) and b2 == pytest.approx(b, rel=1e-6)
    assert u == pytest.approx(a + b * f(np.array([lv]))[0], rel=1e-6)
    # two pools merged give the statistics of one pool holding both
    half = RunningStats(12)
    rest = RunningStats(12)
    for i in range(40):
        (half if i < 15 else rest).add(f(pb.levels[i]), float(f(pb.finals[i : i + 1])[0]))
    m = half.merged(rest)
    np.testing.assert_allclose(m.cxt, pb.stats.cxt, rtol=1e-9, atol=1e-12)
    assert m.ctt == pytest.approx(pb.stats.ctt) and m.n == 40


def test_calibration_keeps_a_window_of_recent_errors():
    eng = Engine.from_preset("default", e_pred=20, calibration_window=50)
    curves = search(n=12)
    for m in curves.models():
        e, v = curves.curve(m)
        eng.learn_curve(e, v)
    assert len(eng.predictor.calib["prior"]) == 50


# -- architecture-aware prior ---------------------------------------------------------------
def test_architecture_features_reach_the_pool_by_finish_and_by_learn_curve():
    curves = search(n=12, arch_effect=0.02)
    assert Engine.from_preset("default").config.prior_arch_k == 10  # on in the preset
    a = Engine.from_preset("default", e_pred=20, prior_arch_k=5)
    b = Engine.from_preset("default", e_pred=20, prior_arch_k=5)
    for m in curves.models():
        e, v = curves.curve(m)
        tr = a.start(m, features=curves.features[m])
        for ei, vi in zip(e, v, strict=True):
            if tr.observe(ei, vi).converged:
                break
        a.finish(tr)
        x, y = tr.curve()
        b.learn_curve(
            x.astype(int).tolist(),
            y.tolist(),
            stopped=tr.converged,
            log=json.loads(json.dumps(tr.prediction_log())),
            features=curves.features[m],
        )
    np.testing.assert_allclose(a.predictor.calib["prior"], b.predictor.calib["prior"])
    assert a.predictor.builds._feats[0] is not None


def test_architecture_aware_prior_learns_what_the_architecture_adds():
    """The first choice adds 2 points to the final value, shown late: models alike in their
    curve's level so far but not in that choice are told apart by their neighbours."""
    curves = search(n=60, arch_effect=0.02, seed=3)
    cfg = Engine.from_preset("default", e_pred=20, delta=1.0, prior_arch_k=0).config
    plain = replay(curves, cfg)
    arch = replay(curves, cfg.with_(prior_arch_k=10))
    assert arch["mae_stopped"] < plain["mae_stopped"]
    assert arch["epochs_saved_pct"] >= plain["epochs_saved_pct"]


def test_features_are_read_from_commons_genomes_and_run_tables(tmp_path):
    commons = tmp_path / "c.csv"
    commons.write_text(
        'epoch,val_accs,genome,arch\n0,50,"[[1, 0], [0, 1]]",7\n1,60,"[[1, 0], [0, 1]]",7\n'
    )
    assert read_curves(commons).features == {0: [1.0, 0.0, 0.0, 1.0]}
    (tmp_path / "x_epochs.csv").write_text("model_id,epoch,val_acc\n0,0,50\n0,1,60\n")
    (tmp_path / "x_models.csv").write_text('model_id,genome\n0,"[[1, 1], [0]]"\n')
    assert read_curves(tmp_path / "x_epochs.csv").features == {"0": [1.0, 1.0, 0.0]}
    eng = Engine.from_preset("default")
    assert "features" not in eng.start(1, features="not numbers").state


# -- seeded prior ---------------------------------------------------------------------------
def test_a_seed_from_the_same_task_stops_early_models_after_its_check():
    seed, new = search(n=40, seed=5), search(n=12, seed=6)
    cfg = Engine.from_preset("default", e_pred=20).config
    plain = replay(new, cfg, details=True)
    seeded = replay(new, cfg, details=True, seed=seed)
    assert seeded["seed"]["state"] == "trusted"
    first = lambda r: sum(m["epochs_used"] for m in r["per_model"][:4])  # noqa: E731
    assert first(seeded) < first(plain)
    assert seeded["kendall_tau_eps"] >= 0.9


def test_a_seed_from_another_task_is_rejected_and_does_not_mislead():
    # the same curves shifted by 5 points, with their finals 3 points worse than their
    # early levels promise: a prior from another task
    other = search(n=40, seed=5, offset=-5.0)
    other.rows = [(k, e, v - (3.0 if e >= 15 else 0.0)) for k, e, v in other.rows]
    new = search(n=20, seed=6, offset=-5.0)
    cfg = Engine.from_preset("default", e_pred=20).config
    seeded = replay(new, cfg, details=True, seed=other)
    assert seeded["seed"]["state"] == "rejected"
    assert seeded["seed"]["own_models_checked"] == 1
    assert seeded["mae_stopped"] != seeded["mae_stopped"] or seeded["mae_stopped"] < 1.0


def test_seed_on_probation_vetoes_until_checked():
    g = SeedOnProbation(1)
    assert g.veto(Evidence(5, 6, [1.0], seed="probation", seed_checked=0))
    assert g.veto(Evidence(5, 6, [1.0], seed="trusted", seed_checked=1)) is None
    assert g.veto(Evidence(5, 6, [1.0])) is None


def test_seed_from_a_file_and_from_the_config(tmp_path):
    curves = search(n=10, seed=2)
    path = tmp_path / "seed.csv"
    lines = ["model_id,epoch,val_acc"] + [f"{k},{e},{v}" for k, e, v in curves.rows]
    path.write_text("\n".join(lines) + "\n")
    eng = Engine.from_preset("default", e_pred=20)
    assert eng.seed_from(path) == 10
    assert Engine.from_preset("default", e_pred=20, prior_seed=str(path)).predictor.seed.n == 10
    assert Engine.from_preset("paper").seed_from(path) == 0  # learns nothing across models


# -- the sweep ------------------------------------------------------------------------------
def test_sweep_replays_each_value_and_marks_the_frontier():
    curves = search(n=15)
    cfg = Engine.from_preset("default", e_pred=20).config
    res = sweep(curves, cfg, values=[0.1, 0.5])
    assert res["knob"] == main_knob(cfg)
    own = getattr(cfg, res["knob"])
    assert [r["value"] for r in res["rows"]] == sorted({0.1, 0.5, own})
    assert sum(r["is_config"] for r in res["rows"]) == 1
    assert any(r["on_front"] for r in res["rows"])
    text = format_sweep(res)
    assert res["knob"] in text and "frontier" in text
    with pytest.raises(ValueError, match="unknown setting"):
        sweep(curves, cfg, knob="nonsense")


def test_cli_engine_replay_sweep_and_seed(tmp_path, capsys):
    from a4nn.cli import main

    curves = search(n=8, epochs=12)
    run = tmp_path / "run"
    run.mkdir()
    lines = ["model_id,epoch,val_acc"] + [f"{k},{e},{v:.3f}" for k, e, v in curves.rows]
    (run / "epochs.csv").write_text("\n".join(lines) + "\n")
    cfg = tmp_path / "e.yaml"
    cfg.write_text("engine: {preset: default, e_pred: 12}\n")
    assert main(["engine", "replay", str(run), "--config", str(cfg), "--sweep"]) == 0
    out = capsys.readouterr().out
    assert "frontier" in out and "tolerance_scale" in out or "delta" in out
    args = ["engine", "replay", str(run), "--config", str(cfg), "--sweep", "delta"]
    assert main([*args, "--values", "0.1,1", "--json"]) == 0
    rows = json.loads(capsys.readouterr().out)["rows"]
    assert [r["value"] for r in rows][:1] == [0.1]
    assert main(["engine", "replay", str(run), "--config", str(cfg), "--seed", str(run)]) == 0
    assert "seeded prior" in capsys.readouterr().out
    assert main(["engine", "replay", str(run), "--preset", "default", "--sweep", "bogus"]) == 2
    assert math.isfinite(len(capsys.readouterr().out))


def test_engine_feed_teaches_the_recorded_choice_vector():
    from types import SimpleNamespace

    from a4nn.engine_feed import feed_finished_model

    md = SimpleNamespace(
        result=lambda: SimpleNamespace(failed=False, status="budget"),
        read_epochs=lambda: [{"epoch": e, "val_acc": 80 + e} for e in range(5)],
        read_meta=lambda: {"choices": [1, 0, 2], "engine_log": []},
    )
    taught = {}

    class Spy:
        def learn_curve(self, epochs, values, **kw):
            taught.update(kw, epochs=epochs)

    feed_finished_model(Spy(), SimpleNamespace(model=lambda mid: md), 7)
    assert taught["features"] == [1, 0, 2] and taught["model_id"] == 7
    assert taught["stopped"] is False and taught["epochs"] == [0, 1, 2, 3, 4]


@pytest.mark.slow  # trains through a4nn run
def test_a_run_gives_the_engine_each_candidates_choice_vector(tiny_config, tmp_path, monkeypatch):
    """a4nn/train.py starts each model's tracker with `space.encode(arch)` (model.json's
    `choices`), so the architecture-aware prior sees the architectures in a real run."""
    from a4nn.cli import main

    seen = []
    real_start = Engine.start

    def spy(self, model_id, features=None):
        seen.append((model_id, features))
        return real_start(self, model_id, features=features)

    monkeypatch.setattr(Engine, "start", spy)
    cfg = tiny_config(engine={"preset": "default"})
    assert main(["run", str(cfg), "--out", str(tmp_path / "run"), "--quiet"]) == 0
    assert seen and all(f is not None and len(f) > 0 for _, f in seen)
    meta = json.loads((tmp_path / "run" / "models" / "00000" / "model.json").read_text())
    assert list(seen[0][1]) == list(meta["choices"])
