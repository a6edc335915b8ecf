"""The issue-3 engine: families, the previous-builds prior, calibrated stopping, robustness."""

from __future__ import annotations

import json
import logging
import math

import numpy as np
import pytest

import engine.ensemble as ensemble_mod
from engine import Engine, EngineConfig, EngineConfigError, replay
from engine.families import DOMHAN, FAMILIES
from engine.fitting import fit_family
from engine.replay import Curves


def synthetic_search(
    n_models: int = 30, epochs: int = 20, seed: int = 0, scale: float = 100.0
) -> Curves:
    """Saturating accuracy curves with validation noise: final = ceiling - gap * t^-alpha."""
    rng = np.random.default_rng(seed)
    c = Curves(source="synthetic")
    for m in range(n_models):
        ceiling = rng.uniform(0.90, 0.995)
        gap, alpha = rng.uniform(0.2, 0.5), rng.uniform(0.8, 1.6)
        t = np.arange(1, epochs + 1, dtype=float)
        y = ceiling - gap * t**-alpha + rng.normal(0, 0.002, epochs)
        c.labels[m] = str(m)
        c.rows += [(m, e, float(scale * v)) for e, v in enumerate(np.clip(y, 0, 1))]
    return c


@pytest.mark.parametrize("fam", DOMHAN, ids=lambda f: f.name)
def test_analytic_jacobians_match_finite_differences(fam):
    rng = np.random.default_rng(1)
    x = np.arange(12, dtype=float)
    lo, hi = fam.bounds()
    for _ in range(3):
        p = fam.p0(x, 0.5 + 0.4 * (1 - 1 / (x + 1)))
        p = fam.clip(p * rng.uniform(0.9, 1.1, fam.k))
        jac = fam.jac(x, p)
        num = np.empty_like(jac)
        for j in range(fam.k):
            h = 1e-6 * max(1.0, abs(p[j]))
            dp = np.zeros(fam.k)
            dp[j] = h
            num[:, j] = (fam.f(x, p + dp) - fam.f(x, p - dp)) / (2 * h)
        np.testing.assert_allclose(jac, num, rtol=1e-4, atol=1e-6, err_msg=fam.name)


@pytest.mark.parametrize("name", ["pow3", "exp3", "weibull"])
def test_family_fit_recovers_the_target_value(name):
    fam = FAMILIES[name]
    x = np.arange(15, dtype=float)
    true_p = {"pow3": [0.95, 0.5, 1.2], "exp3": [0.93, 0.3, 0.2], "weibull": [0.96, 0.3, 0.2, 1.1]}
    p = np.array(true_p[name])
    y = fam.f(x, p)
    fit = fit_family(fam, x, y, 24, loss="linear", max_nfev=200)
    assert fit.ok
    assert fit.prediction == pytest.approx(float(fam.f(np.array([24.0]), p)[0]), abs=2e-3)
    warm = fit_family(fam, x, y, 24, p0=fit.params, loss="linear", max_nfev=5)
    assert warm.prediction == pytest.approx(fit.prediction, abs=1e-4)  # warm start: no drift


def test_robust_loss_resists_a_validation_dip():
    fam = FAMILIES["pow3"]
    x = np.arange(12, dtype=float)
    y = fam.f(x, np.array([0.95, 0.5, 1.2]))
    y[8] -= 0.25  # one bad validation epoch
    robust = fit_family(fam, x, y, 24, loss="soft_l1", f_scale=0.01, max_nfev=200)
    plain = fit_family(fam, x, y, 24, loss="linear", max_nfev=200)
    truth = float(fam.f(np.array([24.0]), np.array([0.95, 0.5, 1.2]))[0])
    assert abs(robust.prediction - truth) < abs(plain.prediction - truth)
    assert abs(robust.prediction - truth) < 0.01


# the synthetic curves keep rising to the end; default's delta (0.25) stops none of them
SYN = {"e_pred": 20, "delta": 0.5}


def test_default_preset_saves_epochs_and_stays_accurate_on_synthetic_search():
    curves = synthetic_search()
    r = replay(curves, Engine.from_preset("default", **SYN).config)
    assert r["epochs_saved_pct"] > 5
    assert r["mae_stopped"] < 1.0
    assert r["kendall_tau_eps"] > 0.9


def test_zero_to_one_accuracy_gives_the_same_decisions_as_percent():
    a = replay(synthetic_search(scale=100.0), Engine.from_preset("default", **SYN).config)
    b = replay(
        synthetic_search(scale=1.0),
        Engine.from_preset("default", **SYN, value_range=[0, 1]).config,
    )
    assert a["epochs_used"] == b["epochs_used"]
    assert b["mae_stopped"] == pytest.approx(a["mae_stopped"] / 100, rel=1e-6)


def test_minimizing_a_loss():
    """Loss curves (unbounded above): the engine predicts a final loss and can stop."""
    rng = np.random.default_rng(3)
    eng = Engine.from_config(
        {
            "preset": "default",
            "direction": "minimize",
            "value_range": [0, None],
            "e_pred": 20,
            "r": 0.05,
            "delta": 0.05,
            "loss_scale": 0.01,
        }
    )
    finals, preds = [], []
    for m in range(25):
        floor = rng.uniform(0.05, 0.4)
        t = np.arange(1, 21, dtype=float)
        loss = floor + 2.0 * t ** -rng.uniform(1.0, 1.5)
        tr = eng.start(m)
        for e, v in enumerate(loss):
            d = tr.observe(e, float(v))
            if d.converged:
                break
        finals.append(loss[-1])
        preds.append(tr.fitness())
        eng.finish(tr)
    assert eng.predictor.transform == "identity"
    stopped = [abs(p - f) for p, f in zip(preds, finals, strict=True) if p != f]
    assert stopped, "the engine should stop some loss curves"
    assert np.mean(stopped) < 0.1


def test_prior_sees_only_the_past_and_only_what_was_trained():
    curves = synthetic_search(n_models=24)
    cfg = Engine.from_preset("default", **SYN).config
    a = replay(curves, cfg, details=True)["per_model"]
    poisoned = synthetic_search(n_models=24)
    poisoned.rows = [(k, e, 100.0 - v if k >= 12 else v) for k, e, v in poisoned.rows]
    b = replay(poisoned, cfg, details=True)["per_model"]
    assert a[:12] == b[:12]
    assert a[12:] != b[12:]

    # in situ a stopped model's tail was never trained: the pool must not hold it
    eng = Engine(cfg)
    used = {}
    for m in curves.models():
        tr = eng.start(m)
        _, values = curves.curve(m)
        for e, v in enumerate(values):
            if tr.observe(e, v).converged:
                break
        used[m] = tr.epochs_observed
        eng.finish(tr)
    builds = eng.predictor.builds
    stopped = [u for u in used.values() if u < 20]
    assert stopped and sorted(len(x) for x, _ in builds.partial) == sorted(stopped)
    assert builds.n == sum(u == 20 for u in used.values())


@pytest.mark.parametrize("preset", ["paper", "default"])
def test_robustness_every_bad_input_is_explained_and_nothing_raises(preset):
    tr = Engine.from_preset(preset, e_pred=20).start(0)
    assert "not finite" in tr.observe(0, float("nan")).note
    assert "not finite" in tr.observe(0, -float("inf")).note
    assert "outside value_range" in tr.observe(0, -3.0).note
    d = tr.observe(0, 50.0)
    assert d.prediction is None and "before predicting" in d.note  # fewer than C_min points
    assert "repeated" in tr.observe(0, 52.0).note
    tr.observe(2, 70.0)
    assert "re-sorted" in tr.observe(1, 60.0).note
    for e in range(3, 10):
        d = tr.observe(e, 90.0 - 30.0 / (e + 1))
    assert d.prediction is not None and math.isfinite(d.prediction)
    assert tr.curve()[0].tolist() == list(range(10))


def test_a_failing_fit_never_reaches_training(monkeypatch, caplog):
    def explode(*args, **kwargs):
        raise RuntimeError("solver crashed")

    monkeypatch.setattr(ensemble_mod, "fit_family", explode)
    tr = Engine.from_preset("default", e_pred=20).start("m-3")
    with caplog.at_level(logging.WARNING, logger="engine.engine"):
        for e in range(8):
            d = tr.observe(e, 60.0 + 3 * e)
    assert not d.converged
    assert "engine error ignored: RuntimeError: solver crashed" in d.note
    assert "observe failed for model 'm-3' at epoch 7" in caplog.text
    assert tr.fitness() == 60.0 + 3 * 7


def test_families_that_cannot_fit_give_no_prediction_not_an_error():
    eng = Engine.from_config({"preset": "default", "prior": "none", "max_nfev": 1, "e_pred": 20})
    tr = eng.start(0)
    for e in range(6):
        d = tr.observe(e, 50.0)  # flat: any family fits; the point is no exception
    assert isinstance(d.converged, bool)


def test_calibrated_probability_uses_past_errors():
    cfg = Engine.from_preset("default").config.with_(calibration_min=3)
    p = ensemble_mod.EnsemblePredictor(cfg)
    assert p.p_within("prior", 0.01, 0.02) == pytest.approx(0.954, abs=1e-3)  # normal fallback
    p.calib["prior"] = [0.5, 1.0, 1.5, 4.0]
    assert p.p_within("prior", 0.01, 0.02) == pytest.approx(3 / 5)  # 0.5, 1, 1.5 <= 2


def test_ensemble_config_is_validated_and_yaml_configurable(tmp_path):
    with pytest.raises(EngineConfigError, match="families='pow9' is invalid; known families"):
        EngineConfig.from_dict({"method": "ensemble", "families": ["pow9"]})
    with pytest.raises(EngineConfigError, match="confidence=1.5 is invalid"):
        EngineConfig.from_dict({"preset": "default", "confidence": 1.5})
    with pytest.raises(EngineConfigError, match="log_error needs a bounded value_range"):
        EngineConfig.from_dict(
            {"preset": "default", "value_range": [0, None], "prior_transform": "log_error"}
        )
    f = tmp_path / "engine.yaml"
    f.write_text(
        "engine:\n  preset: default\n  families: [mmf, janoschek]\n  delta: 0.5\n"
        "  confidence: 0.95\n  prior: previous_builds\n"
    )
    eng = Engine.from_yaml(f)
    assert eng.config.families == ("mmf", "janoschek") and eng.config.confidence == 0.95
    assert eng.config.method == "ensemble" and eng.config.name == "default"


def test_learn_curve_teaches_what_finish_teaches():
    """Curves fed from another worker's records give the same engine as local trackers."""
    curves = synthetic_search(n_models=10)
    local = Engine.from_preset("default", e_pred=20)
    fed = Engine.from_preset("default", e_pred=20)
    for m in curves.models():
        epochs, values = curves.curve(m)
        tr = local.start(m)
        for e, v in zip(epochs, values, strict=True):
            if tr.observe(e, v).converged:
                break
        local.finish(tr)
        x, y = tr.curve()
        log = json.loads(json.dumps(tr.prediction_log()))  # as model.json records it
        fed.learn_curve(x.astype(int).tolist(), y.tolist(), stopped=tr.converged, log=log)
    a, b = local.predictor, fed.predictor
    np.testing.assert_array_equal(a.builds.finals, b.builds.finals)
    np.testing.assert_allclose(a.calib["prior"], b.calib["prior"])
    assert a.calib["families"], "the families logged no calibrated prediction"
    np.testing.assert_allclose(a.calib["families"], b.calib["families"])
    probe_a, probe_b = local.start("p"), fed.start("p")
    for e in range(8):
        da, db = probe_a.observe(e, 80.0 + e), probe_b.observe(e, 80.0 + e)
    assert da.prediction == db.prediction and da.converged == db.converged


def test_prior_does_not_extrapolate_beyond_previous_builds():
    """Three near-identical finished curves must not decide a curve unlike them."""
    eng = Engine.from_preset("default", e_pred=12)
    t = np.arange(1, 13, dtype=float)
    for m, ceiling in enumerate([99.90, 99.92, 99.95]):
        tr = eng.start(m)
        for e, v in enumerate(ceiling - 8.0 * t**-1.5):
            tr.observe(e, float(v))
        eng.finish(tr)
    inside, outside = eng.start("in"), eng.start("out")
    for e, v in enumerate(99.93 - 8.0 * t**-1.5):
        d_in = inside.observe(e, float(v))
        if d_in.converged:
            break
    assert d_in.family == "previous_builds" and d_in.converged
    for e, v in enumerate(97.0 - 20.0 * t**-1.0):
        d_out = outside.observe(e, float(v))
        assert d_out.family != "previous_builds"  # families (or nothing) decide, not the pool
