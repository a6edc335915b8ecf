"""A run goes to the (stand-in) commons with `a4nn publish` and comes back with `a4nn fetch`
into pandas equal to the original; the token never lands in the run or the bundle."""

from __future__ import annotations

import contextlib
import io
import shutil
from pathlib import Path

import pandas as pd
import pytest

from a4nn.cli import main
from analyzer import load_commons, load_run
from tests.conftest import write_tiny_config
from tests.dataverse_standin import DataverseStandin

pytestmark = pytest.mark.slow  # see pyproject.toml's markers

TOKEN = "tok-e2e-SECRET-91b2"


@pytest.fixture(scope="module")
def tiny_run(tmp_path_factory) -> Path:
    folder = tmp_path_factory.mktemp("commons")
    run = folder / "run"
    cfg = write_tiny_config(folder, train={"epochs": 4})
    with contextlib.redirect_stdout(io.StringIO()):
        assert main(["run", str(cfg), "--out", str(run), "--quiet"]) == 0
    return run


@pytest.fixture
def published(tiny_run, tmp_path, monkeypatch, capsys):
    run = tmp_path / "run"
    shutil.copytree(tiny_run, run)
    (run / "dataverse.yaml").write_text(
        "authors: [{name: 'Doe, Jane', affiliation: 'UTK'}]\n"
        "contacts: [{name: 'Jane Doe', email: 'jane@example.org'}]\n"
    )
    monkeypatch.setenv("DATAVERSE_API_TOKEN", TOKEN)
    with DataverseStandin(tokens={TOKEN: "@admin"}, collections=("a4nn",)) as dv:
        capsys.readouterr()
        code = main(["publish", str(run), "--server", dv.url, "--collection", "a4nn"])
        out = capsys.readouterr().out
        assert code == 0, out
        yield run, dv, out


def test_publish_fetch_load_round_trip(published, tmp_path, capsys):
    run, dv, out = published
    assert "bundle" in out and "files" in out  # the size is reported before publishing
    pid = next(w for w in out.split() if w.startswith("doi:"))
    dest = tmp_path / "download"
    assert main(["fetch", pid, "--server", dv.url, "--out", str(dest)]) == 0
    original, fetched = load_run(run), load_commons(dest)
    for name in ("models", "epochs"):
        a = getattr(original, name).drop(columns="run")
        b = getattr(fetched, name).drop(columns="run")
        pd.testing.assert_frame_equal(a, b)


def test_rerun_publish_uploads_nothing_new(published, capsys):
    run, dv, _ = published
    assert main(["publish", str(run), "--server", dv.url, "--collection", "a4nn"]) == 0
    out = capsys.readouterr().out
    assert " 0 uploaded" in out
    assert len(dv.datasets) == 1


def test_token_never_written(published):
    run, _, out = published
    assert TOKEN not in out
    for path in run.rglob("*"):
        if path.is_file():
            assert TOKEN.encode() not in path.read_bytes(), path


def test_missing_metadata_names_the_file(tiny_run, tmp_path, capsys):
    run = tmp_path / "run2"
    shutil.copytree(tiny_run, run)
    code = main(["publish", str(run), "--server", "http://127.0.0.1:9", "--collection", "x"])
    assert code == 2
    assert "dataverse.yaml does not exist" in capsys.readouterr().err


def test_wrong_token_is_a_clear_401(published, monkeypatch, capsys):
    run, dv, _ = published
    monkeypatch.setenv("DATAVERSE_API_TOKEN", "wrong-token")
    (run / "publish.json").unlink()
    assert main(["publish", str(run), "--server", dv.url, "--collection", "a4nn"]) == 2
    err = capsys.readouterr().err
    assert "401" in err or "API token" in err
    assert "wrong-token" not in err


def test_missing_token_is_one_message_before_bundling(
    tiny_run, tmp_path, monkeypatch, capsys, prefect_api
):
    """Neither DATAVERSE_API_TOKEN nor a Prefect Secret block (the test server has none)."""
    run = tmp_path / "run3"
    shutil.copytree(tiny_run, run)
    (run / "dataverse.yaml").write_text(
        "authors: [{name: 'Doe, Jane'}]\ncontacts: [{name: 'Jane Doe', email: 'jane@example.org'}]\n"
    )
    monkeypatch.delenv("DATAVERSE_API_TOKEN", raising=False)
    code = main(["publish", str(run), "--server", "http://127.0.0.1:9", "--collection", "x"])
    captured = capsys.readouterr()
    assert code == 2
    assert captured.err.startswith("a4nn: error: No Dataverse API token")
    assert "'dataverse-api-token'" in captured.err and len(captured.err.splitlines()) == 1
    assert "bundle" not in captured.out and not (run / "bundle").exists()


def test_publish_flow_publishes_once(tiny_run, tmp_path, monkeypatch, prefect_api):
    from flows.publish_flow import publish_flow

    run = tmp_path / "run"
    shutil.copytree(tiny_run, run)
    (run / "dataverse.yaml").write_text(
        "authors: [{name: 'Doe, Jane'}]\ncontacts: [{name: 'Jane Doe', email: 'jane@example.org'}]\n"
    )
    monkeypatch.setenv("DATAVERSE_API_TOKEN", TOKEN)
    with DataverseStandin(tokens={TOKEN: "@admin"}, collections=("a4nn",)) as dv:
        first = publish_flow(str(run), dv.url, "a4nn", release="major")
        again = publish_flow(str(run), dv.url, "a4nn")
    assert first["persistent_id"] == again["persistent_id"]
    assert first["uploaded"] > 0 and again["uploaded"] == 0
    assert first["version"] == "1.0"
    assert len(dv.datasets) == 1


# -- issue 19: what a scientist does next ---------------------------------------------------
def _reevaluate(run_dir: Path, model_id: int, epoch: int) -> float:
    """Validation accuracy of `load_model(run_dir, model_id, epoch)` on the run's data."""
    import torch
    import yaml

    from a4nn.config import config_from_dict
    from a4nn.dataset import prepare_data
    from a4nn.reload import load_model
    from a4nn.train import TensorData, evaluate

    cfg = config_from_dict(yaml.safe_load((run_dir / "config.yaml").read_text()), "config")
    arrays = prepare_data(cfg.data, progress=False, seed=cfg.seed)
    data = TensorData.from_arrays(arrays.x_train, arrays.y_train, arrays.x_val, arrays.y_val)
    model = load_model(run_dir, model_id, epoch)
    _, acc = evaluate(model, data.x_val, data.y_val, cfg.train.batch_size, torch.device("cpu"))
    return acc


def _check_every_model_reloads(run_dir: Path) -> int:
    """Every model at its first and last epoch re-evaluates to its recorded val_acc."""
    epochs = load_run(run_dir).epochs
    checked = 0
    for model_id, rows in epochs.groupby("model_id"):
        for epoch in sorted({int(rows["epoch"].min()), int(rows["epoch"].max())}):
            recorded = float(rows.loc[rows["epoch"] == epoch, "val_acc"].iloc[0])
            assert _reevaluate(run_dir, int(model_id), epoch) == pytest.approx(
                recorded, abs=1e-6
            ), (model_id, epoch)
            checked += 1
    return checked


def test_fetched_bundle_with_checkpoints_reloads_any_model_any_epoch(
    tiny_run, tmp_path, monkeypatch, capsys
):
    run = tmp_path / "run"
    shutil.copytree(tiny_run, run)
    (run / "dataverse.yaml").write_text(
        "authors: [{name: 'Doe, Jane'}]\ncontacts: [{name: 'Jane Doe', email: 'jane@example.org'}]\n"
    )
    monkeypatch.setenv("DATAVERSE_API_TOKEN", TOKEN)
    with DataverseStandin(tokens={TOKEN: "@admin"}, collections=("a4nn",)) as dv:
        capsys.readouterr()
        args = ["publish", str(run), "--server", dv.url, "--collection", "a4nn"]
        assert main([*args, "--checkpoints"]) == 0
        out = capsys.readouterr().out
        pid = next(w.rstrip(",") for w in out.split() if w.startswith("doi:"))
        dest = tmp_path / "commons"
        assert main(["fetch", pid, "--server", dv.url, "--out", str(dest / "fetched")]) == 0
    # the messages: one size, in one unit; a draft is called a draft
    assert len([line for line in out.splitlines() if line.startswith("bundle ")]) == 1
    assert "bytes" not in out and "KiB" not in out and "MiB" not in out
    assert "draft" in out and "published" not in out
    # the run keeps no bundle (it would load twice from a commons folder)
    assert not (run / "bundle").exists() and not list(run.glob(".a4nn-bundle-*"))
    fetched = dest / "fetched"
    for model_dir in sorted((run / "models").iterdir()):
        assert (fetched / "models" / model_dir.name / "epochs.csv").is_file()
    assert _check_every_model_reloads(fetched) >= 2 * len(list((run / "models").iterdir()))
    assert load_commons(dest).run_names == ["tiny"]


def test_moved_run_directory_reloads(tiny_run, tmp_path):
    """A run directory moved to another folder (data gone too) still rebuilds its models."""
    moved = tmp_path / "elsewhere" / "copy"
    shutil.copytree(tiny_run, moved)
    assert _check_every_model_reloads(moved) > 0  # the data is still at its path here
    from a4nn.reload import load_model

    data = Path(load_run(moved).meta["copy"]["dataset"]["path"])
    hidden = data.with_name(data.name + ".away")
    data.rename(hidden)
    try:
        assert load_model(moved, 0) is not None  # no data needed to rebuild
    finally:
        hidden.rename(data)


def test_publish_draft_and_release_messages(published, capsys):
    run, dv, out = published
    assert "draft (never released" in out and "--release major" in out
    args = ["publish", str(run), "--server", dv.url, "--collection", "a4nn"]
    assert main([*args, "--release", "major"]) == 0
    out = capsys.readouterr().out
    assert "published doi:" in out and "released as version 1.0" in out


def test_server_outage_exits_4_user_errors_exit_2(published, capsys):
    run, dv, _ = published
    dv.inject("GET", r".*", "status", status=503, times=1000)
    args = ["publish", str(run), "--server", dv.url, "--collection", "a4nn"]
    assert main(args) == 4
    err = capsys.readouterr().err
    assert err.startswith("a4nn: error: the server or the network failed:")
    assert "run the same command again later" in err
    dv.faults.clear()
    assert main([*args[:-1], "no-such-collection"]) == 2  # 404: the user's to fix
    assert "no-such-collection" in capsys.readouterr().err
