"""The paper's prediction engine: fitting, the convergence rule, the tracker, replay, errors."""

from __future__ import annotations

import csv
import math
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from engine import (
    CurveFormatError,
    Engine,
    EngineConfig,
    EngineConfigError,
    format_report,
    read_curves,
    replay,
    replay_file,
)
from engine.families import PAPER
from engine.fitting import fit_paper

ROOT = Path(__file__).resolve().parents[1]
COMMONS = ROOT / "benchmarks" / "data" / "a4nn-icpp23" / "1gpu_1e15_training_data.csv"


def paper_curve(a: float, b: float, c: float, n: int) -> tuple[np.ndarray, np.ndarray]:
    x = np.arange(n, dtype=float)
    return x, a - b ** (c - x)


def commons_slice(tmp_path: Path, n_models: int) -> Path:
    """The first `n_models` models of the published 1e15 curves, as a commons CSV."""
    out = tmp_path / "slice.csv"
    with COMMONS.open(newline="") as fh, out.open("w", newline="") as oh:
        reader, writer = csv.reader(fh), csv.writer(oh)
        header = next(reader)
        writer.writerow(header)
        m = 0
        for row in reader:
            if row[0] == "0":
                m += 1
            if m > n_models:
                break
            writer.writerow(row)
    return out


def test_engine_imports_without_torch():
    code = "import sys, engine, engine.replay; assert 'torch' not in sys.modules, 'torch imported'"
    subprocess.run([sys.executable, "-c", code], check=True, cwd=ROOT)


def test_importing_the_engine_defers_scipy_until_a_fit_or_a_ranking():
    # a training loop that imports Engine should not wait for scipy at start-up: the
    # first fit loads scipy.optimize, the first Kendall tau scipy.stats; `replay` is the
    # function (its module has the same name), whichever is imported first
    code = (
        "import sys\n"
        "import engine.replay\n"
        "from engine import Engine, replay\n"
        "assert callable(replay), replay\n"
        "assert not any(m.startswith('scipy') for m in sys.modules), 'scipy at import'\n"
        "tr = Engine.from_preset('paper').start('m')\n"
        "for e, acc in enumerate([40, 55, 63, 68, 71, 73, 74]):\n"
        "    tr.observe(e, acc)\n"
        "assert 'scipy.optimize' in sys.modules and 'scipy.stats' not in sys.modules\n"
        "import numpy as np\n"
        "from engine.metrics import kendall_tau\n"
        "assert kendall_tau(np.array([1.0, 2.0, 3.0]), np.array([1.0, 2.0, 3.0])) == 1.0\n"
    )
    subprocess.run([sys.executable, "-c", code], check=True, cwd=ROOT)


def test_paper_fit_recovers_known_parameters():
    x, y = paper_curve(95.0, 1.4, 8.0, 12)
    fit = fit_paper(x, y, 25)
    assert fit.ok
    np.testing.assert_allclose(fit.params, [95.0, 1.4, 8.0], rtol=1e-3)
    assert fit.prediction == pytest.approx(95.0 - 1.4 ** (8.0 - 25.0), abs=1e-3)


def test_paper_fit_respects_bounds():
    # a straight line wants an asymptote far above 200: a stays at its bound
    x = np.arange(8, dtype=float)
    fit = fit_paper(x, 50.0 + 10.0 * x, 25)
    lo, hi = PAPER.bounds()
    assert fit.ok
    assert np.all(fit.params >= lo) and np.all(fit.params <= hi)
    assert fit.params[0] == pytest.approx(200.0, abs=1e-6)


def test_tracker_waits_for_c_min_then_predicts():
    eng = Engine.from_preset("paper")
    tr = eng.start("m")
    x, y = paper_curve(95.0, 1.5, 6.0, 10)
    decisions = [tr.observe(int(e), float(v)) for e, v in zip(x, y, strict=True)]
    assert [d.prediction for d in decisions[:3]] == [None, None, None]
    assert "before predicting" in decisions[0].note
    assert decisions[3].prediction is not None and decisions[3].family == "paper"
    assert set(decisions[3].params) == {"a", "b", "c"}
    # exact curve: predictions agree at once, converged after N = 3 predictions
    assert decisions[5].converged and not decisions[4].converged
    assert tr.converged and tr.fitness() == pytest.approx(95.0 - 1.5 ** (6 - 25), abs=1e-3)
    assert tr.predictions[-1] == tr.fitness()


def test_fitness_is_last_valid_value_when_not_converged():
    eng = Engine.from_preset("paper")
    tr = eng.start(1)
    for e, v in enumerate([50.0, 90.0, 60.0, 95.0, 70.0, float("nan")]):
        tr.observe(e, v)
    assert not tr.converged
    assert tr.fitness() == 70.0


def test_off_preset_never_predicts_or_stops():
    tr = Engine.from_preset("off").start(0)
    x, y = paper_curve(95.0, 1.5, 6.0, 25)
    ds = [tr.observe(int(e), float(v)) for e, v in zip(x, y, strict=True)]
    assert all(d.prediction is None and not d.converged for d in ds)
    assert tr.fitness() == pytest.approx(y[-1])


def test_e_pred_is_settable_per_run():
    eng = Engine.from_preset("paper", e_pred=10)
    assert eng.config.e_pred == 10 and eng.config.name == "paper"
    tr = eng.start(0)
    x, y = paper_curve(95.0, 1.5, 6.0, 6)
    for e, v in zip(x, y, strict=True):
        d = tr.observe(int(e), float(v))
    assert d.prediction == pytest.approx(95.0 - 1.5 ** (6 - 10), abs=1e-3)


def test_bad_observations_never_raise_and_are_explained():
    tr = Engine.from_preset("paper").start(0)
    assert "not finite" in tr.observe(0, float("nan")).note
    assert "not finite" in tr.observe(0, float("inf")).note
    assert "outside value_range" in tr.observe(0, 150.0).note
    assert "not a whole number" in tr.observe(-1, 50.0).note
    assert "not a whole number" in tr.observe("x", 50.0).note  # type: ignore[arg-type]
    assert "not a number" in tr.observe(0, "abc").note  # type: ignore[arg-type]
    assert tr.epochs_observed == 0 and math.isnan(tr.fitness())
    tr.observe(0, 60.0)
    assert "repeated" in tr.observe(0, 61.0).note
    tr.observe(2, 80.0)
    assert "re-sorted" in tr.observe(1, 70.0).note
    x, y = tr.curve()
    assert x.tolist() == [0, 1, 2] and y.tolist() == [61.0, 70.0, 80.0]


def test_failed_fit_is_a_failed_prediction_not_an_exception():
    # all-equal values at the lower end make b^(c-x) degenerate; whatever happens, no raise
    tr = Engine.from_preset("paper").start(0)
    for e in range(8):
        d = tr.observe(e, 0.0)
    assert isinstance(d.converged, bool)
    assert all(isinstance(p, float) for p in tr.predictions)


def test_config_errors_name_the_field(tmp_path):
    with pytest.raises(EngineConfigError, match=r"unknown engine setting\(s\) \['rr'\]"):
        EngineConfig.from_dict({"rr": 1})
    with pytest.raises(EngineConfigError, match="method='magic' is invalid"):
        EngineConfig.from_dict({"method": "magic"})
    with pytest.raises(EngineConfigError, match="c_min=0 is invalid"):
        EngineConfig.from_dict({"preset": "paper", "c_min": 0})
    with pytest.raises(EngineConfigError, match="unknown engine preset 'fast'"):
        Engine.from_preset("fast")
    bad = tmp_path / "engine.yaml"
    bad.write_text("engine:\n  r: -1\n")
    with pytest.raises(EngineConfigError, match=rf"{bad}: r=-1 is invalid"):
        Engine.from_yaml(bad)
    bad.write_text("engine: [1, 2\n")
    with pytest.raises(EngineConfigError, match="not valid YAML"):
        Engine.from_yaml(bad)
    with pytest.raises(EngineConfigError, match="not found"):
        Engine.from_yaml(tmp_path / "missing.yaml")


def test_yaml_config(tmp_path):
    f = tmp_path / "engine.yaml"
    f.write_text("engine:\n  preset: paper\n  e_pred: 12\n  r: 0.25\n")
    eng = Engine.from_yaml(f)
    assert (eng.config.e_pred, eng.config.r, eng.config.method) == (12, 0.25, "paper")


def test_replay_reproduces_the_in_situ_stops(tmp_path):
    """The published curves carry the paper engine's own `converged` flags: match them."""
    path = commons_slice(tmp_path, 5)
    r = replay_file(path, "paper", details=True)
    first_converged: dict[int, int] = {}
    with path.open(newline="") as fh:
        m = -1
        for row in csv.DictReader(fh):
            m += int(row["epoch"] == "0")
            if row["converged"] == "True":
                first_converged.setdefault(m, int(row["epoch"]))
    assert [pm["stop_epoch"] for pm in r["per_model"]] == [first_converged.get(i) for i in range(5)]
    assert r["models"] == 5 and r["epochs_budget"] == 125
    used = sum(s + 1 if s is not None else 25 for s in first_converged.values()) + 25 * (
        5 - len(first_converged)
    )
    assert r["epochs_used"] == used
    assert r["epochs_saved_pct"] == pytest.approx(100 * (125 - used) / 125)
    for key in ("kendall_tau", "kendall_tau_eps", "top10_overlap", "mae_stopped", "ms_per_call"):
        assert key in r
    assert "saved" in format_report(r)


def test_replay_metrics_on_a_tiny_hand_made_run(tmp_path):
    run = tmp_path / "run"
    run.mkdir()
    rows = [
        "model_id,epoch,train_acc,val_acc,train_loss,val_loss,epoch_seconds,prediction,converged"
    ]
    x, y = paper_curve(95.0, 1.5, 6.0, 10)  # converges at epoch 5 with the paper settings
    for e, v in zip(x, y, strict=True):
        rows.append(f"a,{int(e)},0,{v},0,0,1,,False")
    for e in range(10):  # a noisy one that never converges
        rows.append(f"b,{e},0,{[50, 90, 60, 95, 70, 40, 80, 30, 85, 20][e]},0,0,1,,False")
    (run / "epochs.csv").write_text("\n".join(rows) + "\n")
    r = replay_file(run, "paper", details=True)
    assert r["models"] == 2 and r["epochs_budget"] == 20
    assert r["epochs_used"] == 6 + 10 and r["models_stopped"] == 1
    assert r["mae_stopped"] == pytest.approx(abs(95.0 - 1.5 ** (6 - 25) - y[-1]), abs=1e-3)
    assert r["kendall_tau"] == pytest.approx(1.0)  # 95 > 20 both ways


def test_replay_only_sees_the_past(tmp_path):
    """Changing later models' curves never changes the decisions on earlier ones."""
    path = commons_slice(tmp_path, 4)
    curves = read_curves(path)
    changed = read_curves(path)
    changed.rows = [(k, e, 100.0 - v if k >= 2 else v) for k, e, v in changed.rows]
    a = replay(curves, "paper", details=True)["per_model"]
    b = replay(changed, "paper", details=True)["per_model"]
    assert a[:2] == b[:2]
    assert a[2:] != b[2:]


def test_curve_file_errors_name_file_line_and_column(tmp_path):
    f = tmp_path / "c.csv"
    f.write_text("epoch,val_accs\n0,50\n1,abc\n")
    with pytest.raises(CurveFormatError, match=rf"{f}: line 3: column 'val_accs': 'abc'"):
        read_curves(f)
    f.write_text("epoch,val_accs\n0,50\n1.5,60\n")
    with pytest.raises(CurveFormatError, match="line 3: column 'epoch': '1.5' is not a whole"):
        read_curves(f)
    f.write_text("epoch,val_accs\n0,50,7\n")
    with pytest.raises(CurveFormatError, match="line 2: expected 2 columns .* found 3"):
        read_curves(f)
    f.write_text("epoch,accuracy\n0,50\n")
    with pytest.raises(CurveFormatError, match="line 1: expected columns epoch,val_accs"):
        read_curves(f)
    f.write_text("")
    with pytest.raises(CurveFormatError, match="empty file"):
        read_curves(f)
    f.write_text("epoch,val_accs\n")
    with pytest.raises(CurveFormatError, match="no data rows"):
        read_curves(f)
    with pytest.raises(CurveFormatError, match="no such file"):
        read_curves(tmp_path / "nope")
    f.write_text("model_id,epoch,val_acc\n,0,50\n")
    with pytest.raises(CurveFormatError, match="line 2: column 'model_id' is empty"):
        read_curves(f)


def test_ranking_metrics_by_hand():
    from engine.metrics import kendall_tau, kendall_tau_eps, regret, top_k_overlap

    true = np.array([99.9, 99.95, 97.0, 98.0])
    fit = np.array([99.0, 99.5, 97.5, 97.4])
    # pairs with |true diff| >= 0.5: all but (0, 1); only (2, 3) is discordant -> (4 - 1) / 5
    assert kendall_tau_eps(fit, true) == pytest.approx(0.6)
    assert kendall_tau(fit, true) == pytest.approx(4 / 6)  # 5 concordant, 1 discordant
    assert top_k_overlap(fit, true, 2) == 1.0 and top_k_overlap(fit, true, 3) == pytest.approx(
        2 / 3
    )
    assert regret(fit, true) == 0.0 and regret(-fit, true) == pytest.approx(99.95 - 98.0)
    assert math.isnan(kendall_tau_eps(np.array([1.0, 2.0]), np.array([99.9, 99.95])))


def test_replay_accepts_an_engine_and_writes_json(tmp_path):
    from engine import to_json

    path = commons_slice(tmp_path, 2)
    r = replay_file(path, Engine.from_preset("paper"))
    assert r["preset"] == "paper" and r["models"] == 2
    assert '"kendall_tau"' in to_json(r) and "NaN" not in to_json(r)
