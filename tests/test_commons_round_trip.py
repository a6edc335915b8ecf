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
