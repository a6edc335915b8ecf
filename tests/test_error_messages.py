"""The reliability issue's smaller faults: each is one message and a status, no traceback."""

from __future__ import annotations

import json
import logging
import math

import pytest

from a4nn.cli import main
from lineage.checkpoints import CheckpointError, load_checkpoint

BINARY = bytes(range(256)) * 4


def test_a_binary_config_is_named(tmp_path, capsys):
    cfg = tmp_path / "model.pt"
    cfg.write_bytes(BINARY)
    assert main(["run", str(cfg), "--out", str(tmp_path / "o")]) == 2
    err = capsys.readouterr().err
    assert f"config {cfg} is not a text file" in err and "Traceback" not in err


def test_binary_curves_are_named(tmp_path, capsys):
    curves = tmp_path / "curves.csv"
    curves.write_bytes(BINARY)
    assert main(["engine", "replay", str(curves)]) == 2
    err = capsys.readouterr().err
    assert str(curves) in err and "Traceback" not in err


def test_replay_json_is_strict_json(tmp_path, capsys):
    """Two models with the same final accuracy: tau_eps has no pair to count (NaN), which
    strict JSON writes as null, never as a bare NaN."""
    rows = ["epoch,val_accs"]
    for _ in range(2):
        rows += [f"{e},{v}" for e, v in enumerate([50, 60, 70, 75, 78, 80])]
    curves = tmp_path / "c.csv"
    curves.write_text("\n".join(rows) + "\n")
    assert main(["engine", "replay", str(curves), "--json"]) == 0
    out = capsys.readouterr().out
    report = json.loads(out, parse_constant=lambda c: pytest.fail(f"bare {c} in JSON"))
    assert report["kendall_tau_eps"] is None
    assert all(not (isinstance(v, float) and math.isnan(v)) for v in report.values())


def test_out_under_a_file_is_a_user_error(tiny_config, tmp_path, capsys):
    blocker = tmp_path / "file"
    blocker.write_text("x")
    assert main(["run", str(tiny_config()), "--out", str(blocker / "run")]) == 2
    assert "Traceback" not in capsys.readouterr().err


@pytest.mark.parametrize("blank", ["", float("nan")])
def test_a_blank_recorded_sha256_is_a_checksum_error(tmp_path, blank):
    ckpt = tmp_path / "epoch_000.pt"
    ckpt.write_bytes(b"anything")
    with pytest.raises(CheckpointError, match="has no recorded SHA-256"):
        load_checkpoint(ckpt, blank)


@pytest.mark.slow
def test_resume_says_when_it_goes_back_past_a_corrupt_checkpoint(tmp_path, caplog):
    """A corrupt last checkpoint is skipped with a warning naming it, not silently."""
    from a4nn.config import load_config
    from a4nn.dataset import prepare_data
    from a4nn.search import make_engine
    from a4nn.train import TensorData, train_candidate
    from lineage.run_dir import RunDir
    from tests.conftest import write_tiny_config

    cfg = load_config(write_tiny_config(tmp_path, train={"epochs": 3, "threads": 1}))
    arrays = prepare_data(cfg.data, progress=False)
    data = TensorData.from_arrays(arrays.x_train, arrays.y_train, arrays.x_val, arrays.y_val)
    cand = cfg.create_adapter().ask()[0]
    run = RunDir.create(tmp_path / "run", "", {})
    train_candidate(cand, cfg, data, run, make_engine(cfg))
    md = run.model(cand.model_id)
    last = md.checkpoint_path(2)
    last.write_bytes(b"garbage")
    meta = md.read_meta()
    del meta["result"]
    md.write_meta(meta)
    with caplog.at_level(logging.WARNING, logger="a4nn.train"):
        train_candidate(cand, cfg, data, run, make_engine(cfg))
    assert f"model {cand.model_id}: resuming before epoch 2" in caplog.text
    assert "is corrupt" in caplog.text


@pytest.mark.slow
def test_resume_removes_temp_files_a_kill_left(finished_run_dir):
    out, cfg = finished_run_dir
    stale = [out / ".run.json.abc.tmp", out / "models" / "00000" / ".epochs.csv.x.tmp"]
    for f in stale:
        f.write_text("half")
    meta = json.loads((out / "run.json").read_text())
    assert main(["run", str(cfg), "--out", str(out), "--resume", "--quiet"]) == 0
    assert not any(f.exists() for f in stale)
    assert json.loads((out / "run.json").read_text())["status"] == meta["status"]


@pytest.fixture
def finished_run_dir(tiny_config, tmp_path):
    cfg = tiny_config(train={"epochs": 2, "batch_size": 16, "threads": 1})
    out = tmp_path / "run"
    assert main(["run", str(cfg), "--out", str(out), "--quiet"]) == 0
    return out, cfg
