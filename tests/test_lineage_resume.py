"""Lineage under faults: reload any epoch, resume after kill -9, corrupt checkpoints."""

from __future__ import annotations

import contextlib
import io
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import torch

from a4nn.cli import main
from a4nn.config import load_config
from a4nn.dataset import prepare_data
from a4nn.reload import load_model
from a4nn.train import evaluate
from lineage.checkpoints import CheckpointError
from tests.conftest import write_tiny_config

pytestmark = pytest.mark.slow  # see pyproject.toml's markers

COMPARE = ["model_id", "epoch", "train_loss", "val_acc", "val_loss", "prediction", "converged"]


@pytest.fixture(scope="module")
def reference(tmp_path_factory):
    """An uninterrupted tiny run, to compare interrupted ones against."""
    folder = tmp_path_factory.mktemp("ref")
    cfg = write_tiny_config(folder)
    with contextlib.redirect_stdout(io.StringIO()):
        assert main(["run", str(cfg), "--out", str(folder / "run"), "--quiet"]) == 0
    return folder / "run", cfg


def test_reload_any_epoch_reproduces_recorded_accuracy(reference):
    run, cfg_path = reference
    cfg = load_config(cfg_path)
    data = prepare_data(cfg.data, progress=False)
    x, y = torch.from_numpy(data.x_val), torch.from_numpy(data.y_val)
    epochs = pd.read_csv(run / "epochs.csv")
    for row in epochs.groupby("model_id").head(2).itertuples():  # a couple of epochs each
        model = load_model(run, row.model_id, row.epoch)
        _, acc = evaluate(model, x, y, 64, torch.device("cpu"))
        assert acc == pytest.approx(row.val_acc, abs=1e-9)


def test_reload_names_missing_epoch(reference):
    run, _ = reference
    with pytest.raises(CheckpointError, match="was not trained to epoch 99"):
        load_model(run, 0, 99)


def test_reload_detects_corrupt_checkpoint(reference, tmp_path):
    run, _ = reference
    ckpt = run / "models" / "00000" / "checkpoints" / "epoch_001.pt"
    original = ckpt.read_bytes()
    try:
        ckpt.write_bytes(original[: len(original) // 2])
        with pytest.raises(CheckpointError, match="epoch_001.pt is corrupt"):
            load_model(run, 0, 1)
        assert len(pd.read_csv(run / "epochs.csv")) > 0  # the records are untouched
    finally:
        ckpt.write_bytes(original)


def _epoch_rows(run: Path) -> int:
    total = 0
    for f in (run / "models").glob("*/epochs.csv"):
        with contextlib.suppress(Exception):
            total += len(pd.read_csv(f))
    return total


def _kill_9_then_resume(cfg: Path, out: Path, after_rows: int) -> None:
    """Start `a4nn run`, kill -9 it once `after_rows` epochs are recorded, then --resume."""
    env = {**os.environ, "PYTHONUNBUFFERED": "1"}
    cmd = [sys.executable, "-m", "a4nn.cli", "run", str(cfg), "--out", str(out), "--quiet"]
    proc = subprocess.Popen(cmd, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    deadline = time.monotonic() + 120
    while _epoch_rows(out) < after_rows and time.monotonic() < deadline and proc.poll() is None:
        time.sleep(0.05)
    assert proc.poll() is None, "the run finished before it could be killed"
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    # whatever instant it died at, what it left is readable
    for f in (out / "models").glob("*/epochs.csv"):
        pd.read_csv(f)
    for f in out.glob("*.parquet"):
        pd.read_parquet(f)
    with contextlib.redirect_stdout(io.StringIO()):
        assert main(["run", str(cfg), "--out", str(out), "--resume", "--quiet"]) == 0


def _assert_same_epochs(got_run: Path, want_run: Path) -> None:
    got, want = pd.read_csv(got_run / "epochs.csv"), pd.read_csv(want_run / "epochs.csv")
    assert not got.duplicated(["model_id", "epoch"]).any()
    key = ["model_id", "epoch"]
    got, want = (
        got.sort_values(key).reset_index(drop=True),
        want.sort_values(key).reset_index(drop=True),
    )
    pd.testing.assert_frame_equal(got[COMPARE], want[COMPARE])


def test_kill_9_mid_run_then_resume_matches_uninterrupted(reference, tmp_path):
    ref_run, cfg = reference
    _kill_9_then_resume(cfg, tmp_path / "run", after_rows=12)
    _assert_same_epochs(tmp_path / "run", ref_run)


def test_resume_relearns_finished_models_for_the_previous_builds_prior(tmp_path):
    """The default engine learns from finished models: killed after the first generation,
    the resumed run's engine must know that generation again, or its predictions (and so the
    fitness the NAS sees) differ from the uninterrupted run's."""
    engine = {"preset": "default", "overrides": {"prior_min_curves": 2}}
    cfg = write_tiny_config(tmp_path, engine=engine)
    with contextlib.redirect_stdout(io.StringIO()):
        assert main(["run", str(cfg), "--out", str(tmp_path / "ref"), "--quiet"]) == 0
    ref = pd.read_csv(tmp_path / "ref" / "epochs.csv")
    first_gen = 3 * 7  # pop_size 3 x 7 epochs: the prior needs them to predict
    assert (ref["engine_family"].iloc[first_gen:] == "previous_builds").any()
    _kill_9_then_resume(cfg, tmp_path / "run", after_rows=first_gen + 1)
    _assert_same_epochs(tmp_path / "run", tmp_path / "ref")


def test_resume_skips_truncated_last_checkpoint(reference, tmp_path):
    """A model whose newest checkpoint is truncated resumes from the one before it."""
    ref_run, cfg = reference
    out = tmp_path / "run"
    with contextlib.redirect_stdout(io.StringIO()):
        assert main(["run", str(cfg), "--out", str(out), "--quiet"]) == 0
    # make the last model look cut off mid-training, with a torn newest checkpoint
    models = pd.read_csv(out / "models.csv")
    last = int(models["model_id"].iloc[-1])
    md = out / "models" / f"{last:05d}"
    m = json.loads((md / "model.json").read_text())
    m.pop("result")
    (md / "model.json").write_text(json.dumps(m))
    rows = pd.read_csv(md / "epochs.csv")
    newest = md / rows["checkpoint"].iloc[-1]
    newest.write_bytes(newest.read_bytes()[:100])
    with contextlib.redirect_stdout(io.StringIO()):
        assert main(["run", str(cfg), "--out", str(out), "--resume", "--quiet"]) == 0
    got = pd.read_csv(out / "epochs.csv")
    want = pd.read_csv(ref_run / "epochs.csv")
    assert not got.duplicated(["model_id", "epoch"]).any()
    np.testing.assert_allclose(
        got[got.model_id == last]["val_acc"], want[want.model_id == last]["val_acc"]
    )


@pytest.fixture
def one_candidate(tmp_path):
    """A tiny run's config, its data as tensors, and the first candidate it proposes."""
    from a4nn.train import TensorData

    cfg = load_config(write_tiny_config(tmp_path))
    arrays = prepare_data(cfg.data, progress=False)
    data = TensorData.from_arrays(arrays.x_train, arrays.y_train, arrays.x_val, arrays.y_val)
    cand = cfg.create_adapter().ask()[0]
    return cfg, data, cand


@pytest.mark.parametrize("keep", ["every", "last_best"])
def test_a_model_killed_during_an_epoch_resumes_from_the_epoch_before(
    one_candidate, tmp_path, keep
):
    """Each epoch's row reaches the model's epochs.csv with its checkpoint's SHA-256 as
    soon as the checkpoint is written, before the next epoch ends, so a model killed
    during the next epoch (here: a copy of its folder taken then; nothing runs at a
    kill -9) loses only the epoch in flight. With `last_best` retention too, whose
    dropped checkpoints read back as blanks."""
    import shutil

    from a4nn.search import make_engine
    from a4nn.train import train_candidate
    from lineage.run_dir import RunDir

    cfg, data, cand = one_candidate
    cfg.lineage.checkpoints = keep
    run = RunDir.create(tmp_path / "run", "", {})
    killed = RunDir.create(tmp_path / "killed", "", {})
    kill_after = 4  # of 7 epochs: `last_best` has dropped checkpoints by then

    def on_epoch(c, row) -> None:
        if row["epoch"] != kill_after:
            return
        deadline = time.monotonic() + 10  # its checkpoint and row, written in the background
        while time.monotonic() < deadline:
            rows = run.model(c.model_id).read_epochs()
            if len(rows) > kill_after and isinstance(rows[kill_after]["checkpoint_sha256"], str):
                break
            time.sleep(0.01)
        else:
            pytest.fail(f"epoch {kill_after}'s row and checkpoint SHA-256 not on disk after 10 s")
        shutil.copytree(run.model(c.model_id).root, killed.model(c.model_id).root)
        blanks.extend(r for r in rows if not isinstance(r["checkpoint"], str))

    blanks: list[dict] = []  # rows whose checkpoint retention dropped, at the "kill"

    full = train_candidate(cand, cfg, data, run, make_engine(cfg), on_epoch=on_epoch)
    resumed = train_candidate(cand, cfg, data, killed, make_engine(cfg))
    meta = killed.model(cand.model_id).read_meta()
    assert meta["resumed_from_epoch"] == kill_after + 1
    assert bool(blanks) == (keep == "last_best")
    assert resumed.status == full.status != "failed", resumed.reason
    assert resumed.fitness == pytest.approx(full.fitness)
    got = pd.DataFrame(killed.model(cand.model_id).read_epochs())
    want = pd.DataFrame(run.model(cand.model_id).read_epochs())
    pd.testing.assert_frame_equal(got[COMPARE], want[COMPARE])


def test_a_checkpoint_that_cannot_be_written_stops_the_search_not_the_model(
    one_candidate, tmp_path
):
    """Checkpoints are written on a background thread; when they cannot be (here: a file
    stands where the checkpoint folder goes), that is the disk's fault, not the model's:
    train_candidate raises InfrastructureError naming the model and the cause, and
    records no result, so a resumed run trains the model again."""
    from a4nn.faults import InfrastructureError
    from a4nn.search import make_engine
    from a4nn.train import train_candidate
    from lineage.run_dir import RunDir

    cfg, data, cand = one_candidate
    run = RunDir.create(tmp_path / "run", "", {})
    md = run.model(cand.model_id)
    md.root.mkdir(parents=True)
    (md.root / "checkpoints").write_text("not a folder")
    with pytest.raises(InfrastructureError) as err:
        train_candidate(cand, cfg, data, run, make_engine(cfg))
    assert f"model {cand.model_id} could not be recorded (FileExistsError" in str(err.value)
    assert "it is not marked failed" in str(err.value)
    assert "result" not in md.read_meta()
    assert all(not isinstance(r["checkpoint_sha256"], str) for r in md.read_epochs())
