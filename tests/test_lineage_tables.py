"""Lineage tables: schema-checked Parquet, background checkpoints, commons loading."""

from __future__ import annotations

import pandas as pd
import pyarrow.parquet as pq
import pytest
import torch

from analyzer import load_a4nn_csv, load_commons
from lineage.checkpoints import CheckpointWriter, load_checkpoint, sha256_file
from lineage.schema import EPOCHS, SchemaError, read_table, table_bytes, to_table

ROW = {
    "model_id": 1,
    "epoch": 0,
    "train_acc": 50.0,
    "val_acc": 60.0,
    "train_loss": 0.7,
    "val_loss": 0.6,
    "epoch_seconds": 1.0,
    "prediction": None,
    "converged": False,
    "engine_family": "",
    "engine_params": "",
    "checkpoint": "checkpoints/epoch_000.pt",
    "checkpoint_sha256": "ab",
    "checkpoint_wait_seconds": 0.001,
}


def test_table_round_trip_keeps_types(tmp_path):
    path = tmp_path / "epochs.parquet"
    path.write_bytes(table_bytes(to_table([ROW, {**ROW, "epoch": 1}], EPOCHS, "x")))
    df = read_table(path, "epochs")
    assert list(df["epoch"]) == [0, 1]
    assert df["prediction"].isna().all()


def test_wrong_type_is_refused_on_write():
    with pytest.raises(SchemaError, match="x.parquet: rows do not match lineage schema"):
        to_table([{**ROW, "epoch": "first"}], EPOCHS, "x.parquet")


def test_missing_column_is_refused_on_read(tmp_path):
    path = tmp_path / "epochs.parquet"
    table = to_table([ROW], EPOCHS, "x").drop(["val_acc"])
    pq.write_table(table, path)
    with pytest.raises(SchemaError, match="column 'val_acc' is missing"):
        read_table(path, "epochs")


def test_unknown_schema_version_is_refused(tmp_path):
    path = tmp_path / "epochs.parquet"
    table = to_table([ROW], EPOCHS, "x").replace_schema_metadata({b"a4nn_lineage_schema": b"9.0"})
    pq.write_table(table, path)
    with pytest.raises(SchemaError, match="lineage schema 9.0"):
        read_table(path, "epochs")


def test_truncated_parquet_is_reported(tmp_path):
    path = tmp_path / "epochs.parquet"
    path.write_bytes(table_bytes(to_table([ROW], EPOCHS, "x"))[:40])
    with pytest.raises(SchemaError, match="not a readable Parquet file"):
        read_table(path, "epochs")


def test_background_writer_snapshots_state(tmp_path):
    w = torch.nn.Parameter(torch.zeros(1000))
    writer = CheckpointWriter()
    writer.submit(tmp_path / "a.pt", {"w": w.data}, tag="a")
    w.data += 1.0  # training goes on mutating the weights at once
    ((tag, sha),) = writer.done(wait=True)
    writer.close()
    assert tag == "a" and sha == sha256_file(tmp_path / "a.pt")
    assert torch.equal(load_checkpoint(tmp_path / "a.pt", sha)["w"], torch.zeros(1000))


def test_a4nn_commons_csv_loads(tmp_path):
    csv = tmp_path / "c.csv"
    csv.write_text(
        "epoch,train_accs,val_accs,predictions,converged,genome,arch,flops\n"
        '0,50,55,inf,False,"[[0]]",7,1.5\n1,60,65,70.0,True,"[[0]]",7,1.5\n'
        '0,40,45,inf,False,"[[1]]",8,2.5\n'
    )
    t = load_a4nn_csv(csv)
    assert list(t.models["model_id"]) == [7, 8]
    assert list(t.models["epochs_trained"]) == [2, 1]
    assert t.epochs["prediction"].isna().sum() == 2
    t2 = load_commons(tmp_path)
    pd.testing.assert_frame_equal(t.models.drop(columns="run"), t2.models.drop(columns="run"))
    assert set(t2.models["run"]) == {"c.csv"}


def test_load_commons_names_empty_folder(tmp_path):
    with pytest.raises(FileNotFoundError, match="no A4NN run .* found under"):
        load_commons(tmp_path)


def test_model_epochs_csv_reads_back_as_pandas_would_have_written_it(tmp_path):
    """A worker writes its model's epochs.csv without pandas; readers must not notice."""
    import io

    import numpy as np

    from lineage.run_dir import ModelDir

    rows = [
        dict(ROW),
        {**ROW, "epoch": 1, "prediction": 61.25, "converged": np.bool_(True)},
        {**ROW, "epoch": 2, "val_acc": np.float32(0.5), "train_loss": float("nan")},
        {**ROW, "epoch": 3, "engine_family": 'pow3, "robust"', "prediction": np.float64(1e-7)},
        {"model_id": 1, "epoch": np.int64(4)},  # a row missing most fields
    ]
    md = ModelDir(tmp_path / "00001", 1)
    md.root.mkdir()
    md.write_epochs(rows)
    ours = pd.read_csv(md.epochs_path)
    theirs = pd.read_csv(io.StringIO(pd.DataFrame(rows, columns=list(ROW)).to_csv(index=False)))
    pd.testing.assert_frame_equal(ours, theirs)
    assert ours.loc[3, "engine_family"] == 'pow3, "robust"'
    assert [int(r["epoch"]) for r in md.read_epochs()] == [0, 1, 2, 3, 4]
