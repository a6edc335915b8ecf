"""Checkpoint retention: `last_best` keeps the newest and the most accurate epoch, `none` none."""

from __future__ import annotations

import contextlib
import io

import pandas as pd
import pytest

from a4nn.cli import main
from lineage.checkpoints import sha256_file
from tests.conftest import write_tiny_config

pytestmark = pytest.mark.slow  # see pyproject.toml's markers


def _run(tmp_path, keep: str):
    cfg = write_tiny_config(tmp_path, lineage={"checkpoints": keep}, train={"epochs": 5})
    out = tmp_path / "run"
    with contextlib.redirect_stdout(io.StringIO()):
        assert main(["run", str(cfg), "--out", str(out), "--quiet"]) == 0
    return out, pd.read_csv(out / "epochs.csv")


def test_last_best_keeps_newest_and_best(tmp_path):
    out, epochs = _run(tmp_path, "last_best")
    for mid, rows in epochs.groupby("model_id"):
        files = sorted((out / "models" / f"{mid:05d}" / "checkpoints").glob("*.pt"))
        kept = rows[rows["checkpoint"].notna() & (rows["checkpoint"] != "")]
        best = rows.loc[rows["val_acc"].idxmax(), "epoch"]
        expected = {int(rows["epoch"].max()), int(best)}
        assert set(kept["epoch"].astype(int)) == expected
        assert len(files) == len(expected)
        for r in kept.itertuples():
            assert sha256_file(out / "models" / f"{mid:05d}" / r.checkpoint) == r.checkpoint_sha256


def test_none_keeps_no_checkpoint(tmp_path):
    out, epochs = _run(tmp_path, "none")
    assert not list(out.rglob("*.pt"))
    assert epochs["checkpoint"].isna().all()
