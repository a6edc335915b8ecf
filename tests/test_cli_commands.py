"""The CLI's smaller commands: data xfel, engine replay, and their bad inputs."""

from __future__ import annotations

import json

import pytest

from a4nn.cli import main


def test_data_xfel_bad_intensity_names_the_value(tmp_path, capsys):
    with pytest.raises(SystemExit) as err:
        main(["data", "xfel", "--out", str(tmp_path / "x"), "--intensity", "bright"])
    assert err.value.code == 2
    assert "intensity must be a number such as 1e14, 1e15 or 1e16, got 'bright'" in (
        capsys.readouterr().err
    )


def test_data_xfel_negative_intensity_is_refused(tmp_path, capsys):
    with pytest.raises(SystemExit):
        main(["data", "xfel", "--out", str(tmp_path / "x"), "--intensity=-1e15"])
    assert "intensity must be positive" in capsys.readouterr().err


@pytest.mark.slow
def test_data_xfel_writes_the_layout(tmp_path, capsys):
    out = tmp_path / "xfel"
    args = ["data", "xfel", "--out", str(out), "--n-train", "4", "--n-test", "2", "--seed", "3"]
    assert main(args) == 0
    assert len(list((out / "images" / "trainset").glob("*.tiff"))) == 4
    assert len(list((out / "images" / "testset").glob("*.tiff"))) == 2
    assert "wrote simulated XFEL dataset" in capsys.readouterr().out


def test_data_xfel_bad_pdb_names_the_file(tmp_path, capsys):
    bad = tmp_path / "bad.pdb"
    bad.write_text("not a pdb\n")
    code = main(["data", "xfel", "--out", str(tmp_path / "x"), "--pdb", str(bad), str(bad)])
    assert code == 2
    assert "bad.pdb" in capsys.readouterr().err


def test_engine_replay_of_a_run_directory(tmp_path, capsys):
    run = tmp_path / "run"
    run.mkdir()
    rows = ["model_id,epoch,val_acc"]
    for m in range(3):
        rows += [f"{m},{e},{50 + 10 * m + 40 * (1 - 0.7**e):.3f}" for e in range(8)]
    (run / "epochs.csv").write_text("\n".join(rows) + "\n")
    assert main(["engine", "replay", str(run), "--preset", "paper", "--json"]) == 0
    report = json.loads(capsys.readouterr().out)
    assert report["models"] == 3
    assert report["epochs_budget"] == 24
    for key in ("epochs_used", "epochs_saved_pct", "mae_stopped", "kendall_tau"):
        assert key in report


def test_engine_replay_unknown_preset(tmp_path, capsys):
    assert main(["engine", "replay", str(tmp_path), "--preset", "magic"]) == 2
    assert "unknown engine preset 'magic'" in capsys.readouterr().err
