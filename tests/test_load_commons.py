"""analyzer.load_commons over a folder of runs: each run once, named by its recorded name,
and every folder it leaves out named with the reason (issue 19, item 2)."""

from __future__ import annotations

import json
import warnings
from pathlib import Path

import pytest

from analyzer import load_commons


def fake_run(folder: Path, name: str | None, n_models: int = 2) -> Path:
    """A minimal run directory (run.json and CSV tables), as a bundle or an older run has."""
    folder.mkdir(parents=True, exist_ok=True)
    meta = {"status": "finished"} | ({"name": name} if name is not None else {})
    (folder / "run.json").write_text(json.dumps(meta))
    (folder / "models.csv").write_text(
        "model_id,fitness\n" + "".join(f"{i},{50 + i}.0\n" for i in range(n_models))
    )
    (folder / "epochs.csv").write_text(
        "model_id,epoch,val_acc\n" + "".join(f"{i},0,{50 + i}.0\n" for i in range(n_models))
    )
    return folder


def test_each_run_once_even_with_a_bundle_left_inside(tmp_path):
    """`a4nn publish` used to leave RUN_DIR/bundle/ (a copy with its own run.json)."""
    for name in ("alpha", "beta"):
        run = fake_run(tmp_path / name, name, n_models=7)
        fake_run(run / "bundle", name, n_models=7)
    with pytest.warns(UserWarning, match="skipped 2 folder"):
        tables = load_commons(tmp_path)
    assert len(tables.models) == 14  # not 28
    assert sorted(tables.run_names) == ["alpha", "beta"]
    assert set(tables.skipped) == {"alpha/bundle", "beta/bundle"}
    assert "inside the run folder 'alpha'" in tables.skipped["alpha/bundle"]


def test_run_at_the_root_is_named_by_its_recorded_name(tmp_path):
    fake_run(tmp_path, "quickstart")
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # nothing skipped: no warning
        tables = load_commons(tmp_path)
    assert set(tables.models["run"]) == {"quickstart"}
    assert tables.run_names == ["quickstart"] and tables.skipped == {}


def test_names_shared_by_two_runs_get_their_folder(tmp_path):
    fake_run(tmp_path / "a" / "r", "tiny")
    fake_run(tmp_path / "b", "tiny")
    fake_run(tmp_path / "c", None)  # no recorded name: the folder
    tables = load_commons(tmp_path)
    assert sorted(tables.run_names) == ["c", "tiny (a/r)", "tiny (b)"]


def test_hidden_and_unreadable_folders_are_reported(tmp_path):
    fake_run(tmp_path / "good", "good")
    fake_run(tmp_path / ".fetch-partial", "partial")
    broken = fake_run(tmp_path / "broken", "broken")
    (broken / "models.csv").unlink()
    with pytest.warns(UserWarning) as record:
        tables = load_commons(tmp_path)
    assert tables.run_names == ["good"]
    assert tables.skipped[".fetch-partial"].startswith("hidden folder")
    assert "cannot be read" in tables.skipped["broken"]
    message = str(record[0].message)
    assert ".fetch-partial" in message and "broken" in message
