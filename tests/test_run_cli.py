"""`a4nn run` end to end on a tiny config: the path the README's first command takes."""

from __future__ import annotations

import contextlib
import io
import json
import os
import subprocess
import sys
from pathlib import Path

import pandas as pd
import pytest

from a4nn.cli import main
from lineage.checkpoints import load_checkpoint, sha256_file
from tests.conftest import write_tiny_config


@pytest.fixture(scope="module")
def finished_run(tmp_path_factory):
    """One tiny search shared by the read-only tests of this module (saves minutes)."""
    folder = tmp_path_factory.mktemp("finished")
    out = folder / "run"
    buf = io.StringIO()
    with contextlib.redirect_stdout(buf):
        assert main(["run", str(write_tiny_config(folder)), "--out", str(out), "--quiet"]) == 0
    return out, buf.getvalue()


@pytest.mark.slow
def test_run_writes_tables_checkpoints_and_summary(finished_run):
    out, printed = finished_run
    models = pd.read_csv(out / "models.csv")
    epochs = pd.read_csv(out / "epochs.csv")
    n_models = len(models)
    assert n_models == 3 + 2  # quickstart-sized NSGA-Net: 3 initial + 2 offspring
    assert set(models["status"]) <= {"converged", "budget"}
    assert (models["epochs_trained"] <= 7).all()
    # one epochs row per trained epoch, and the counts agree
    assert len(epochs) == models["epochs_trained"].sum()
    assert (
        epochs.groupby("model_id")["epoch"].apply(lambda e: list(e) == list(range(len(e))))
    ).all()
    assert (models["mflops"] > 0).all() and (models["params"] > 0).all()
    # predictions start after C_min = 3 epochs
    first = epochs[epochs["epoch"] < 3]
    assert first["prediction"].isna().all()
    # every checkpoint exists and matches its recorded checksum
    for row in epochs.itertuples():
        path = out / "models" / f"{row.model_id:05d}" / row.checkpoint
        assert sha256_file(path) == row.checkpoint_sha256
    state = load_checkpoint(path, row.checkpoint_sha256)
    assert state["epoch"] == row.epoch
    # fitness rule: converged models carry the prediction, others the last accuracy
    for m in models.itertuples():
        last = epochs[epochs["model_id"] == m.model_id].iloc[-1]
        if m.status == "converged":
            assert m.fitness == pytest.approx(last["prediction"])
        else:
            assert m.fitness == pytest.approx(last["val_acc"])
    meta = json.loads((out / "run.json").read_text())
    assert meta["status"] == "finished"
    for text in ("Models trained: 5", "Epochs trained:", "Best validation accuracy", "Pareto set"):
        assert text in printed
    assert str(out) in printed


@pytest.mark.slow
def test_run_is_deterministic(tiny_config, tmp_path):
    cfg = tiny_config()
    a, b = tmp_path / "a", tmp_path / "b"
    assert main(["run", str(cfg), "--out", str(a), "--quiet"]) == 0
    assert main(["run", str(cfg), "--out", str(b), "--quiet"]) == 0
    ea, eb = pd.read_csv(a / "epochs.csv"), pd.read_csv(b / "epochs.csv")
    cols = ["model_id", "epoch", "train_loss", "val_acc", "prediction"]
    pd.testing.assert_frame_equal(ea[cols], eb[cols])


@pytest.mark.slow
def test_resume_of_finished_run_retrains_nothing(finished_run, tiny_config, capsys):
    out, _ = finished_run
    before = (out / "epochs.csv").read_text()
    assert main(["run", str(tiny_config()), "--out", str(out), "--resume", "--quiet"]) == 0
    assert (out / "epochs.csv").read_text() == before
    assert "training nsganet-macro" not in capsys.readouterr().out


@pytest.mark.slow
def test_existing_run_without_resume_is_refused(finished_run, tiny_config, capsys):
    out, _ = finished_run
    assert main(["run", str(tiny_config()), "--out", str(out)]) == 2
    assert "already holds a run; pass --resume" in capsys.readouterr().err


@pytest.mark.slow
def test_resume_with_changed_search_settings_is_refused(finished_run, tiny_config, capsys):
    out, _ = finished_run
    before = (out / "epochs.csv").read_text()
    changed = tiny_config(train={"epochs": 9}, engine={"preset": "default"})
    assert main(["run", str(changed), "--out", str(out), "--resume", "--quiet"]) == 2
    err = capsys.readouterr().err
    assert "--resume: the config differs from the run's" in err
    assert "train.epochs (run: 7, now: 9)" in err
    assert "engine.preset (run: 'paper', now: 'default')" in err
    assert (out / "epochs.csv").read_text() == before  # nothing trained, nothing rewritten


def test_resume_may_change_where_it_runs(tiny_config):
    from a4nn.config import load_config
    from a4nn.search import config_changes

    base = load_config(tiny_config())
    moved = load_config(
        tiny_config(
            name="renamed",
            train={"threads": 2, "device": "cpu"},
            orchestration={"runner": "prefect", "n_workers": 3},
        )
    )
    assert config_changes(base, moved) == []
    assert config_changes(base, load_config(tiny_config(seed=1))) == ["seed (run: 0, now: 1)"]


def test_resume_without_run_is_refused(tiny_config, tmp_path, capsys):
    assert main(["run", str(tiny_config()), "--out", str(tmp_path / "none"), "--resume"]) == 2
    assert "holds no run to resume" in capsys.readouterr().err


@pytest.mark.slow
def test_nan_loss_fails_model_and_search_goes_on(tiny_config, tmp_path, capsys):
    cfg = tiny_config(train={"lr": 1e30, "epochs": 3, "lr_schedule": "constant"})
    out = tmp_path / "nan"
    assert main(["run", str(cfg), "--out", str(out), "--quiet"]) == 0
    models = pd.read_csv(out / "models.csv")
    assert len(models) == 5  # every proposal was still trained and told
    failed = models[models["status"] == "failed"]
    assert len(failed) >= 1
    assert failed["reason"].str.match(r"NaN loss at epoch \d+").all()
    assert (failed["fitness"] == 0).all()


def test_bad_config_exits_2_with_message(tmp_path, capsys):
    bad = tmp_path / "bad.yaml"
    bad.write_text("train:\n  epochs: -1\n")
    assert main(["run", str(bad), "--out", str(tmp_path / "x")]) == 2
    err = capsys.readouterr().err
    assert "bad.yaml" in err and "train.epochs" in err


@pytest.mark.slow
def test_report_summarises_a_run(finished_run, capsys):
    out, _ = finished_run
    assert main(["report", str(out)]) == 0
    assert "Models trained: 5" in capsys.readouterr().out


def test_a_second_run_on_a_directory_in_use_is_refused(tiny_config, tmp_path, capsys):
    from lineage.run_lock import RunLock

    out = tmp_path / "busy"
    lock = RunLock(out).acquire()  # as another `a4nn run` on it would
    try:
        assert main(["run", str(tiny_config()), "--out", str(out), "--quiet"]) == 2
    finally:
        lock.release()
    err = capsys.readouterr().err
    assert f"{out} is in use by another a4nn run (process {os.getpid()} on host" in err
    assert not (out / "run.json").exists()  # nothing started


@pytest.mark.slow
def test_a_stale_lock_of_a_dead_process_is_taken_over(tiny_config, tmp_path):
    out = tmp_path / "stale"
    out.mkdir()
    (out / ".a4nn.lock").write_text("")  # left by a killed run: no process holds it
    (out / ".a4nn.lock.json").write_text('{"host": "gone", "pid": 999999, "since": "x"}')
    assert main(["run", str(tiny_config()), "--out", str(out), "--quiet"]) == 0
    assert not (out / ".a4nn.lock.json").exists()  # released at the end


@pytest.mark.slow
def test_bad_data_fails_fast_on_the_prefect_runner(tiny_config, tmp_path):
    """A truncated image is one line on the console and exit 2 before any model or worker
    starts (not tifffile's own warning before it)."""
    folder = tmp_path / "imgs"
    for split in ("trainset", "testset"):
        (folder / split).mkdir(parents=True)
        (folder / split / "xfel_1e15_1n0u_ptm0.tiff").write_bytes(b"II*\x00trunc")
    cfg = tiny_config(
        data={"source": "folder", "path": str(folder), "normalize": "none"},
        orchestration={"runner": "prefect"},
    )
    out = tmp_path / "bad"
    # in a subprocess, as from a terminal: the console is what Prefect's logging setup
    # and tifffile's own warning (quieted while we read) would print to
    proc = subprocess.run(
        [sys.executable, "-m", "a4nn.cli", "run", str(cfg), "--out", str(out)],
        cwd=Path(__file__).resolve().parents[1],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert proc.returncode == 2, proc.stderr
    lines = [ln for ln in proc.stderr.splitlines() if ln.strip()]
    assert len(lines) == 1 and lines[0].startswith("a4nn: error: "), proc.stderr
    assert "cannot be read as TIFF" in lines[0] and "xfel_1e15_1n0u_ptm0.tiff" in lines[0]
    assert not (out / "run.json").exists()


@pytest.mark.slow
def test_a_full_disk_stops_the_search_with_status_3_and_resume_finishes_it(
    tiny_config, tmp_path, capsys
):
    """A fault of the machine is no model's failure: the run stops (status 3, `stopped`),
    no model is recorded failed, and --resume trains what did not finish."""
    out = tmp_path / "full"
    cfg = tiny_config()
    assert main(["run", str(cfg), "--out", str(out), "--quiet"]) == 0
    whole = pd.read_csv(out / "models.csv")
    # the same run again, with model 2's folder unwritable (as a full disk would be)
    cut = tmp_path / "cut"
    blocked = cut / "models" / "00002"
    blocked.mkdir(parents=True)
    (blocked / "checkpoints").write_text("")  # a file where its checkpoint folder goes
    assert main(["run", str(cfg), "--out", str(cut), "--quiet"]) == 3
    err = capsys.readouterr().err
    assert "stopped by a fault of the machine" in err and "model 2 could not be recorded" in err
    meta = json.loads((cut / "run.json").read_text())
    assert meta["status"] == "stopped"
    assert "result" not in json.loads((blocked / "model.json").read_text())
    (blocked / "checkpoints").unlink()
    assert main(["run", str(cfg), "--out", str(cut), "--resume", "--quiet"]) == 0
    again = pd.read_csv(cut / "models.csv")
    cols = ["model_id", "arch", "fitness", "status", "epochs_trained"]
    pd.testing.assert_frame_equal(
        whole[cols].sort_values("model_id").reset_index(drop=True),
        again[cols].sort_values("model_id").reset_index(drop=True),
    )


@pytest.mark.slow
def test_resume_reconciles_a_model_finished_after_the_last_table_write(
    finished_run, tiny_config, tmp_path
):
    """Killed between a model's finish (its model.json) and the run-level table write:
    --resume puts that model in the tables, without retraining it."""
    import shutil

    out, _ = finished_run
    whole = pd.read_csv(out / "models.csv")
    cut = tmp_path / "cut"
    shutil.copytree(out, cut)
    last = int(whole["model_id"].iloc[-1])
    meta = json.loads((cut / "run.json").read_text())
    meta.update(status="running", completion_order=meta["completion_order"][:-1])
    (cut / "run.json").write_text(json.dumps(meta))
    for name in ("models", "epochs"):  # the tables as they were before its row
        table = pd.read_csv(cut / f"{name}.csv")
        table[table["model_id"] != last].to_csv(cut / f"{name}.csv", index=False)
        (cut / f"{name}.parquet").unlink()
    before = (cut / "models" / f"{last:05d}" / "epochs.csv").read_text()
    assert main(["run", str(tiny_config()), "--out", str(cut), "--resume", "--quiet"]) == 0
    again = pd.read_csv(cut / "models.csv")
    assert sorted(again["model_id"]) == sorted(whole["model_id"])
    assert (cut / "models" / f"{last:05d}" / "epochs.csv").read_text() == before  # not retrained
    assert json.loads((cut / "run.json").read_text())["status"] == "finished"
    assert len(pd.read_parquet(cut / "epochs.parquet")) == len(pd.read_csv(out / "epochs.csv"))
