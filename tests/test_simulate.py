"""The simulated-clock executor and `a4nn simulate` (issue 22): tiny and fast."""

from __future__ import annotations

import json
from pathlib import Path

import pandas as pd
import pytest
import yaml

from a4nn.cli import main
from a4nn.config import config_from_dict
from a4nn.simulate import (
    Curve,
    CurveSet,
    SimulatedExecutor,
    curve_index,
    list_schedule,
    load_curves,
    read_curve_set,
    simulate,
    synthesize,
    with_times,
)
from a4nn.types import Candidate
from lineage.run_dir import RunDir
from lineage.schema import read_table
from tests.conftest import tiny_config_dict, write_blob_npz


def plateau(e: int, top: float) -> float:
    """A curve that climbs and flattens: the paper's engine stops it early."""
    return top - 40.0 * 0.5**e


def write_commons(path: Path, n_models: int = 6, epochs: int = 7) -> Path:
    """An A4NN commons CSV: val_accs, epoch_times and flops per model."""
    lines = ["epoch,train_accs,val_accs,epoch_times,flops,arch"]
    for m in range(n_models):
        for e in range(epochs):
            secs = 100.0 + 10 * m if e == 0 else 10.0 + m
            lines.append(
                f"{e},{plateau(e, 95) + 1:.4f},{plateau(e, 80 + m):.4f},{secs},{50 + m},{m}"
            )
    path.write_text("\n".join(lines) + "\n")
    return path


@pytest.fixture
def tiny(tmp_path: Path):
    npz = write_blob_npz(tmp_path)
    raw = tiny_config_dict(npz)
    cfg = config_from_dict(raw)
    path = tmp_path / "tiny.yaml"
    path.write_text(yaml.safe_dump(raw))
    return cfg, path, write_commons(tmp_path / "curves.csv")


# -- the virtual clock ------------------------------------------------------------------------
def test_the_clock_orders_completions_with_n_slots(tmp_path, tiny):
    cfg, _, _ = tiny
    cfg = cfg.model_copy(update={"engine": cfg.engine.model_copy(update={"preset": "off"})})
    # model i lasts lengths[i] epochs of 10 s (the engine is off: every epoch runs)
    lengths = [3, 1, 2, 1, 1]
    curves = CurveSet(
        "test",
        [
            Curve(str(i), tuple(range(n)), (50.0,) * n, (10.0,) * n, mflops=1.0, params=1)
            for i, n in enumerate(lengths)
        ],
    )
    run = RunDir.create(tmp_path / "run", "", {})
    ex = SimulatedExecutor(cfg, run, curves, 2, charge_driver=False, assign=lambda c: c.model_id)
    space = cfg.create_space()
    import numpy as np

    rng = np.random.default_rng(0)
    for i in range(5):
        ex.submit(Candidate(i, space.name, space.sample(rng)), [])
    # slots: 0 (30 s) and 1 (10 s); 2 starts at 10 (ends 30); 3 at 30 (40); 4 at 30 (40)
    done = [ex.next_result() for _ in range(5)]
    assert [c.model_id for c, _ in done] == [1, 0, 2, 3, 4]
    spans = {j.cand.model_id: (j.start, j.end) for j in ex.finished}
    assert spans == {0: (0, 30), 1: (0, 10), 2: (10, 30), 3: (30, 40), 4: (30, 40)}
    assert ex.clock == 40 and ex.makespan == 40 and ex.busy_seconds == 80
    assert list_schedule([30, 10, 20, 10, 10], 2) == 40
    # a barrier after the first two models (a generation): 30, then 20 + 10 on two slots
    assert list_schedule([30, 10, 20, 10, 10], 2, [0, 0, 1, 1, 1]) == 30 + 20
    with pytest.raises(RuntimeError, match="no model submitted"):
        ex.next_result()


def test_the_driver_time_delays_the_next_start(tmp_path, tiny):
    cfg, _, _ = tiny
    curves = CurveSet("t", [Curve("0", (0,), (50.0,), (1.0,), mflops=1.0, params=1)])
    run = RunDir.create(tmp_path / "run", "", {})
    ex = SimulatedExecutor(cfg, run, curves, 1, assign=lambda c: 0)
    space = cfg.create_space()
    import time

    import numpy as np

    arch = space.sample(np.random.default_rng(0))
    ex.submit(Candidate(0, space.name, arch), [])
    ex.next_result()
    time.sleep(0.05)  # the driver records, tells and asks
    ex.submit(Candidate(1, space.name, arch), [])
    ex.next_result()
    second = ex.finished[1]
    assert second.start >= 1.0 + 0.05 and ex.driver_charged >= 0.05


# -- curves -----------------------------------------------------------------------------------
def test_curves_read_timed_and_synthesized(tmp_path):
    commons = read_curve_set(write_commons(tmp_path / "c.csv", n_models=3, epochs=4))
    assert [c.label for c in commons.curves] == ["0", "1", "2"]
    assert commons.curves[1].seconds == (110.0, 11.0, 11.0, 11.0)
    assert commons.curves[2].mflops == 52.0
    run = tmp_path / "run"
    run.mkdir()
    rows = ["model_id,epoch,val_acc"] + [f"{m},{e},{60 + e}" for m in (7, 9) for e in range(5)]
    (run / "epochs.csv").write_text("\n".join(rows) + "\n")
    (run / "models.csv").write_text("model_id,mflops,params\n7,3.5,100\n9,4.5,200\n")
    ours = read_curve_set(run)
    assert [(c.label, c.mflops, c.params) for c in ours.curves] == [
        ("7", 3.5, 100),
        ("9", 4.5, 200),
    ]
    with pytest.raises(ValueError, match="no epoch times"):
        with_times(ours, None, None)
    timed = with_times(ours, commons, None)  # a curve longer than the times: steady epochs
    assert timed.curves[0].seconds == (100.0, 10.0, 10.0, 10.0, 10.0)
    syn = synthesize(timed, 50, seed=1)
    assert len(syn) == 50 and all(0 <= v <= 100 for c in syn.curves for v in c.values)
    assert synthesize(timed, 50, seed=1).curves[7] == syn.curves[7]
    with pytest.raises(FileNotFoundError, match="curves file not found"):
        load_curves(tmp_path / "nope.csv")


def test_the_same_architecture_gets_the_same_curve(tiny):
    cfg, _, _ = tiny
    space = cfg.create_space()
    import numpy as np

    archs = [space.sample(np.random.default_rng(s)) for s in range(30)]
    picks = [curve_index(space, a, 7) for a in archs]
    assert picks == [curve_index(space, a, 7) for a in archs]
    assert len(set(picks)) > 3 and all(0 <= p < 7 for p in picks)


# -- a whole simulated search --------------------------------------------------------------------
def test_a_simulated_run_is_a_valid_run(tmp_path, tiny):
    cfg, _, curves_csv = tiny
    curves = load_curves(curves_csv)
    out = tmp_path / "sim"
    sim = simulate(cfg, curves, 2, out)
    models = read_table(out / "models.parquet", "models")
    epochs = read_table(out / "epochs.parquet", "epochs")
    assert len(models) == sim.models == 5
    assert sorted(models["model_id"]) == list(range(5))
    assert pd.read_csv(out / "models.csv")["model_id"].tolist() == models["model_id"].tolist()
    assert len(pd.read_csv(out / "epochs.csv")) == len(epochs) == sim.epochs_replayed
    for job in sim_jobs(out):
        meta, rows = job
        curve = curves.curves[meta["simulated"]["curve_index"]]
        assert rows["val_acc"].tolist() == pytest.approx(list(curve.values[: len(rows)]))
        assert meta["result"]["epochs_trained"] == len(rows)
        assert meta["mflops"] == curve.mflops
        assert not any((out / "models" / f"{meta['candidate']['model_id']:05d}").glob("check*"))
    run = json.loads((out / "run.json").read_text())
    assert run["status"] == "finished"
    assert run["simulation"]["models"] == 5
    assert 0 < sim.utilization <= sim.bound_utilization + 1e-9 <= 1 + 1e-9


def sim_jobs(out: Path):
    for d in sorted((out / "models").iterdir()):
        yield json.loads((d / "model.json").read_text()), pd.read_csv(d / "epochs.csv")


def test_engine_stops_show_up_as_saved_epochs(tmp_path, tiny):
    cfg, _, curves_csv = tiny
    sim = simulate(cfg, load_curves(curves_csv), 3, tmp_path / "sim")
    models = pd.read_csv(tmp_path / "sim" / "models.csv")
    stopped = models[models["status"] == "converged"]
    assert sim.stopped == len(stopped) > 0
    assert (stopped["epochs_trained"] < cfg.train.epochs).all()
    assert sim.epochs_replayed == models["epochs_trained"].sum() < sim.epochs_budget
    assert sim.epochs_saved_pct > 0 and sim.seconds_saved_pct > 0
    epochs = pd.read_csv(tmp_path / "sim" / "epochs.csv")
    last = epochs.groupby("model_id").tail(1).set_index("model_id")
    assert last.loc[stopped["model_id"], "converged"].all()


def test_steady_state_keeps_the_slots_busy(tmp_path, tiny):
    cfg, _, curves_csv = tiny
    search = cfg.search.model_copy(
        update={"options": {**cfg.search.options, "mode": "steady_state"}}
    )
    cfg = cfg.model_copy(update={"search": search})
    sim = simulate(cfg, load_curves(curves_csv), 2, tmp_path / "sim")
    assert sim.mode == "steady_state" and sim.models == 5
    assert sim.makespan >= sim.bound_makespan * (1 - 1e-9)


# -- the command line ----------------------------------------------------------------------------
def test_cli_prints_the_summary(tmp_path, tiny, capsys):
    _, cfg_path, curves_csv = tiny
    report = tmp_path / "sim.json"
    args = ["simulate", str(cfg_path), "--curves", str(curves_csv), "--gpus", "2"]
    assert main([*args, "--out", str(tmp_path / "sim"), "--json", str(report), "--quiet"]) == 0
    out = capsys.readouterr().out
    for key in ("makespan", "utilization", "epochs saved", "driver", "ms per model"):
        assert key in out
    assert json.loads(report.read_text())["gpus"] == 2


@pytest.mark.parametrize(
    ("extra", "message"),
    [
        (["--curves", "missing.csv", "--gpus", "2"], "curves file not found"),
        (["--curves", "CURVES", "--gpus", "0"], "--gpus must be >= 1, got 0"),
        (["--curves", "CURVES", "--gpus", "2", "--epoch-seconds", "-1"], "--epoch-seconds"),
    ],
)
def test_cli_bad_inputs_are_one_message(tmp_path, tiny, capsys, extra, message):
    _, cfg_path, curves_csv = tiny
    extra = [str(curves_csv) if a == "CURVES" else a for a in extra]
    code = main(["simulate", str(cfg_path), *extra, "--out", str(tmp_path / "sim")])
    err = capsys.readouterr().err
    assert code == 2
    assert message in err and "Traceback" not in err and len(err.strip().splitlines()) == 1


def test_save_state_final_saves_the_adapter_state_once(tmp_path, tiny):
    cfg, _, curves_csv = tiny
    out = tmp_path / "sim"
    sim = simulate(cfg, load_curves(curves_csv), 2, out, save_state="final")
    assert sim.totals["state_save"] == 0.0 and sim.totals["state_dict"] < 0.01
    state = json.loads((out / "adapter_state.json").read_text())
    assert state["counters"]["told"] == sim.models == 5
