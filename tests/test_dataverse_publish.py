"""publish_bundle / fetch_dataset against the local Dataverse stand-in: round trip, resume,
retries, auth errors, versions, and the token never leaving the process."""

from __future__ import annotations

import json
import logging
import time
import zipfile
from pathlib import Path

import pandas as pd
import pytest

from lineage.dataverse import (
    Author,
    Contact,
    DatasetMetadata,
    DataverseAuthError,
    DataverseClient,
    DataverseNotFoundError,
    DataverseRequestError,
    DataverseUnavailableError,
    RetryPolicy,
    TokenError,
    fetch_dataset,
    publish_bundle,
)
from lineage.dataverse.files import BundleError
from lineage.sizes import human_size
from tests.dataverse_standin import DataverseStandin

TOKEN = "tok-SECRET-5f3a9c1e"
READER = "tok-READER-77"
FAST = RetryPolicy(attempts=3, backoff=0.01, max_backoff=0.02, timeout=5.0)
META = DatasetMetadata(
    title="A4NN search on simulated XFEL data",
    authors=[Author("Doe, Jane", "University of Tennessee")],
    contacts=[Contact("Jane Doe", "jane@example.org")],
    description="Per-epoch lineage of every model of a small A4NN search.",
)


@pytest.fixture
def dv():
    with DataverseStandin(tokens={TOKEN: "@admin"}, collections=("a4nn",), seed=3) as s:
        s.add_user(READER, "@reader", can_write=False)
        yield s


@pytest.fixture
def bundle(tmp_path: Path) -> Path:
    b = tmp_path / "run"
    (b / "tables").mkdir(parents=True)
    (b / "models/1").mkdir(parents=True)
    epochs = pd.DataFrame(
        {"model_id": [1, 1, 2], "epoch": [1, 2, 1], "val_acc": [50.0, 61.5, 48.25]}
    )
    epochs.to_parquet(b / "tables/epochs.parquet")
    pd.DataFrame({"model_id": [1, 2], "fitness": [61.5, 48.25]}).to_parquet(
        b / "tables/models.parquet"
    )
    (b / "run.json").write_text(json.dumps({"name": "tiny", "seed": 0}))
    (b / "models/1/model.json").write_text(json.dumps({"genome": [[1, 0, 1, 0]]}))
    (b / "epochs.csv").write_text("model_id,epoch,val_acc\n1,1,50.0\n1,2,61.5\n")
    return b


def publish(bundle: Path, dv: DataverseStandin, **kw) -> object:
    kw.setdefault("token", TOKEN)
    kw.setdefault("retry", FAST)
    kw.setdefault("progress", False)
    return publish_bundle(bundle, server=dv.url, collection="a4nn", metadata=META, **kw)


def files_of(root: Path, skip: tuple[str, ...] = ("publish.json",)) -> dict[str, bytes]:
    return {
        p.relative_to(root).as_posix(): p.read_bytes()
        for p in sorted(root.rglob("*"))
        if p.is_file() and p.name not in skip
    }


def test_round_trip_byte_identical_and_tables_equal(dv, bundle, tmp_path, capsys) -> None:
    report = publish(bundle, dv, release="major", progress=True)
    printed = capsys.readouterr().out
    size = sum(len(v) for v in files_of(bundle).values())
    shown = f"5 files, {human_size(size)}\n"  # the size, once, in one unit, before uploading
    assert shown in printed and "bytes)" not in printed
    assert printed.index(shown) < printed.index("upload")
    assert report.size_bytes == size and report.n_files == 5
    assert report.created and report.version == "1.0" and report.released
    assert sorted(report.uploaded) == sorted(files_of(bundle))
    out = fetch_dataset(report.persistent_id, server=dv.url, out=tmp_path / "got", progress=False)
    assert files_of(out) == files_of(bundle)
    pd.testing.assert_frame_equal(
        pd.read_parquet(out / "tables/epochs.parquet"),
        pd.read_parquet(bundle / "tables/epochs.parquet"),
    )
    # the state file records the pid and every file with its MD5
    state = json.loads((bundle / "publish.json").read_text())
    target = state["targets"][0]
    assert target["persistent_id"] == report.persistent_id
    assert set(target["files"]) == set(files_of(bundle))
    # the server keeps folders as directoryLabel and did not ingest the CSV
    ds = dv.dataset_by_pid(report.persistent_id)
    assert sorted((fm.directory_label or "", fm.label) for fm in ds.latest.files) == [
        ("", "epochs.csv"),
        ("", "run.json"),
        ("models/1", "model.json"),
        ("tables", "epochs.parquet"),
        ("tables", "models.parquet"),
    ]


def test_rerun_is_idempotent(dv, bundle) -> None:
    first = publish(bundle, dv, release="major")
    adds = dv.count("POST", r"/add$")
    second = publish(bundle, dv, release="major")
    assert second.persistent_id == first.persistent_id and not second.created
    assert second.uploaded == [] and len(second.skipped) == 5 and not second.released
    assert dv.count("POST", r"/add$") == adds
    assert dv.count("POST", r"/datasets$") == 1 and len(dv.datasets) == 1


def test_500_mid_upload_then_rerun_uploads_only_the_rest(dv, bundle) -> None:
    dv.fail_nth_upload(3, status=500, times=FAST.attempts)  # the 3rd file fails every attempt
    with pytest.raises(DataverseUnavailableError) as err:
        publish(bundle, dv)
    msg = str(err.value)
    assert "HTTP 500" in msg and "after 3 attempts" in msg and "run the same command again" in msg
    state = json.loads((bundle / "publish.json").read_text())["targets"][0]
    pid = state["persistent_id"]
    assert len(state["files"]) == 2  # the two that landed are recorded
    before = dv.count("POST", r"/add$")
    report = publish(bundle, dv, release="major")
    assert report.persistent_id == pid and not report.created
    assert len(report.uploaded) == 3 and len(report.skipped) == 2
    assert dv.count("POST", r"/add$") - before == 3  # only what was missing
    assert len(dv.datasets) == 1 and dv.count("POST", r"/datasets$") == 1
    assert len(dv.dataset_by_pid(pid).latest.files) == 5


def test_transient_5xx_and_timeouts_are_retried(dv, bundle) -> None:
    dv.fail_nth_upload(2, status=503, times=2)  # two failures, third attempt works
    hang = dv.inject("GET", r"/datasets/:persistentId$", "hang", nth=1, seconds=3)
    retry = RetryPolicy(attempts=3, backoff=0.01, max_backoff=0.02, timeout=0.3)
    report = publish(bundle, dv, retry=retry)
    assert len(report.uploaded) == 5
    codes = [c for m, p, c in dv.log if p.split("?")[0].endswith("/add")]
    assert codes.count(503) == 2 and codes.count(200) == 5
    assert hang.fired == 1  # the first read hung past the timeout and was retried


def test_lost_responses_do_not_duplicate_dataset_or_files(dv, bundle) -> None:
    """The server acted but the answer never came: retries must not act twice."""
    dv.inject("POST", r"/dataverses/a4nn/datasets$", "lost")
    dv.inject("POST", r"/add$", "lost", nth=2)
    report = publish(bundle, dv)
    assert len(dv.datasets) == 1  # found again by its publish key, not created twice
    labels = sorted(fm.label for fm in dv.dataset_by_pid(report.persistent_id).latest.files)
    assert labels == ["epochs.csv", "epochs.parquet", "model.json", "models.parquet", "run.json"]


def test_killed_between_create_and_state_write_finds_the_dataset(dv, bundle) -> None:
    """A crash after the server created the dataset but before its pid was saved."""
    dv.inject("POST", r"/dataverses/a4nn/datasets$", "lost")
    dv.inject("GET", r"/dataverses/a4nn/contents$", "status", status=500, times=99)
    with pytest.raises(DataverseUnavailableError):
        publish(bundle, dv, retry=RetryPolicy(attempts=1, backoff=0.01, timeout=5))
    state = json.loads((bundle / "publish.json").read_text())["targets"][0]
    assert "persistent_id" not in state and state["publish_key"]
    assert len(dv.datasets) == 1
    dv.faults.clear()
    report = publish(bundle, dv)
    assert not report.created and len(dv.datasets) == 1
    assert report.persistent_id == next(iter(dv.datasets.values())).pid


def test_token_never_persisted_logged_or_printed(dv, bundle, tmp_path, capsys, caplog) -> None:
    caplog.set_level(logging.DEBUG)
    dv.fail_nth_upload(1, status=500)
    report = publish(bundle, dv, release="major", progress=True)
    fetch_dataset(report.persistent_id, server=dv.url, out=tmp_path / "got", token=TOKEN)
    captured = capsys.readouterr()
    assert caplog.records  # httpx did log the requests...
    assert TOKEN not in caplog.text  # ...without the token
    assert TOKEN not in captured.out + captured.err
    assert TOKEN not in repr(report)
    for path in list(bundle.rglob("*")) + list((tmp_path / "got").rglob("*")):
        if path.is_file():
            assert TOKEN.encode() not in path.read_bytes(), path
    assert all(TOKEN not in p for _, p, _ in dv.log)


def test_hung_server_times_out_and_is_retried(dv) -> None:
    dv.inject("GET", r"/info/version$", "hang", seconds=5, times=2)
    retry = RetryPolicy(attempts=2, backoff=0.01, max_backoff=0.02, timeout=0.3)
    t0 = time.monotonic()
    with (
        DataverseClient(dv.url, TOKEN, retry=retry) as client,
        pytest.raises(
            DataverseUnavailableError, match=r"after 2 attempts \(last: no answer within 0.3 s\)"
        ),
    ):
        client.version()
    assert time.monotonic() - t0 < 3  # each attempt gave up after 0.3 s, not after 5 s
    assert dv.count("GET", r"/info/version$") == 2


def test_401_403_404_messages(dv, bundle, tmp_path) -> None:
    with pytest.raises(DataverseAuthError) as err:
        publish(bundle, dv, token="tok-WRONG-123")
    msg = str(err.value)
    assert "rejected the API token" in msg and "HTTP 401" in msg and "Bad api key" in msg
    assert "DATAVERSE_API_TOKEN" in msg and "tok-WRONG-123" not in msg
    assert [c for _, _, c in dv.log] == [401]  # refused at once, not retried
    dv.log.clear()
    with pytest.raises(DataverseAuthError) as err:
        publish(bundle, dv, token=READER)
    assert "HTTP 403" in str(err.value) and "Contributor" in str(err.value)
    with pytest.raises(DataverseNotFoundError) as err:
        publish_bundle(
            bundle, server=dv.url, collection="nope", metadata=META, token=TOKEN, progress=False
        )
    assert "collection 'nope' not found" in str(err.value)
    assert "Can't find dataverse with identifier='nope'" in str(err.value)
    with pytest.raises(DataverseNotFoundError, match=r"dataset doi:10.5072/FK2/AAAAAA not found"):
        fetch_dataset("doi:10.5072/FK2/AAAAAA", server=dv.url, out=tmp_path / "x", progress=False)
    assert len(dv.datasets) == 0


def test_fetch_unpublished_needs_token(dv, bundle, tmp_path, monkeypatch) -> None:
    monkeypatch.delenv("DATAVERSE_API_TOKEN", raising=False)
    report = publish(bundle, dv)  # draft only
    with pytest.raises(DataverseAuthError, match="requires an API token"):
        fetch_dataset(report.persistent_id, server=dv.url, out=tmp_path / "x", progress=False)
    monkeypatch.setenv("DATAVERSE_API_TOKEN", TOKEN)
    out = fetch_dataset(report.persistent_id, server=dv.url, out=tmp_path / "y", progress=False)
    assert files_of(out) == files_of(bundle)


def test_major_minor_versions_and_changes(dv, bundle) -> None:
    assert publish(bundle, dv, release="minor").version == "1.0"  # first release is 1.0
    (bundle / "tables/new.parquet").write_bytes((bundle / "tables/epochs.parquet").read_bytes())
    with pytest.raises(DataverseRequestError, match="release='major'"):
        publish(bundle, dv, release="minor")  # files changed: Dataverse refuses minor
    report = publish(bundle, dv, release="major")
    assert (report.version, report.uploaded) == ("2.0", [])  # uploaded by the refused run
    # a file changed after it was published: replaced in place, not added as run-1.json
    (bundle / "run.json").write_text(json.dumps({"name": "tiny", "seed": 1}))
    report = publish(bundle, dv, release="major")
    assert report.replaced == ["run.json"] and report.version == "3.0"
    ds = dv.dataset_by_pid(report.persistent_id)
    assert [fm.label for fm in ds.latest.files].count("run.json") == 1
    # metadata-only change: a minor release
    meta = DatasetMetadata(**{**META.__dict__, "title": "A4NN search, corrected title"})
    report = publish_bundle(
        bundle, server=dv.url, collection="a4nn", metadata=meta, token=TOKEN,
        release="minor", retry=FAST, progress=False,
    )  # fmt: skip
    assert report.metadata_updated and report.version == "3.1"
    title = next(f for f in ds.latest.fields if f["typeName"] == "title")
    assert title["value"] == "A4NN search, corrected title"


def test_zip_in_bundle_survives_dataverse_unzipping(dv, bundle, tmp_path) -> None:
    with zipfile.ZipFile(bundle / "checkpoints.zip", "w") as zf:
        zf.writestr("m1/epoch_001.pt", b"\x00weights")
    report = publish(bundle, dv, release="major")
    labels = [fm.label for fm in dv.dataset_by_pid(report.persistent_id).latest.files]
    assert "checkpoints.zip" in labels and "epoch_001.pt" not in labels
    out = fetch_dataset(report.persistent_id, server=dv.url, out=tmp_path / "got", progress=False)
    assert (out / "checkpoints.zip").read_bytes() == (bundle / "checkpoints.zip").read_bytes()
    assert (out / "checkpoints/m1/epoch_001.pt").read_bytes() == b"\x00weights"  # unpacked


def test_bundle_problems_are_named(dv, bundle, tmp_path) -> None:
    outside = tmp_path / "secret.txt"
    outside.write_text("not for publishing")
    (bundle / "leak.txt").symlink_to(outside)
    with pytest.raises(BundleError, match=r"leak.txt is a symlink to .*outside the bundle"):
        publish(bundle, dv)
    (bundle / "leak.txt").unlink()
    (bundle / "what?.txt").write_text("x")
    with pytest.raises(BundleError, match=r"'what\?.txt'.*rename it"):
        publish(bundle, dv)
    (bundle / "what?.txt").unlink()
    (bundle / ".hidden").mkdir()
    (bundle / ".hidden/x.txt").write_text("x")
    with pytest.raises(BundleError, match=r"would rewrite the folder '.hidden'"):
        publish(bundle, dv)
    assert len(dv.datasets) == 0  # all checked before contacting the server
    with pytest.raises(ValueError, match="release='patch'"):
        publish(bundle, dv, release="patch")


def test_resolve_token_sources(monkeypatch) -> None:
    from lineage.dataverse import resolve_token

    monkeypatch.setenv("DATAVERSE_API_TOKEN", "  from-env  ")
    assert resolve_token() == "from-env"
    assert resolve_token("explicit") == "explicit"
    assert resolve_token(lambda: " from-lookup ") == "from-lookup"
    monkeypatch.delenv("DATAVERSE_API_TOKEN")
    with pytest.raises(TokenError) as err:
        resolve_token()
    assert "DATAVERSE_API_TOKEN" in str(err.value)


def test_missing_token_is_reported_before_the_bundle_is_read(dv, bundle, monkeypatch, capsys):
    monkeypatch.delenv("DATAVERSE_API_TOKEN", raising=False)
    with pytest.raises(TokenError, match="DATAVERSE_API_TOKEN"):
        publish_bundle(bundle, server=dv.url, collection="a4nn", metadata=META)
    assert "bundle" not in capsys.readouterr().out  # the files were not scanned (hashed)
    assert dv.log == []


@pytest.mark.slow
def test_dataverse_token_from_prefect_secret_block(prefect_api, monkeypatch) -> None:
    """flows.dataverse_secret: with DATAVERSE_API_TOKEN unset, the Prefect Secret block supplies it."""
    from prefect.blocks.system import Secret

    from flows.dataverse_secret import dataverse_token

    monkeypatch.setenv("DATAVERSE_API_TOKEN", "from-env")
    assert dataverse_token() == "from-env"
    monkeypatch.delenv("DATAVERSE_API_TOKEN")
    monkeypatch.setenv("PREFECT_API_URL", prefect_api)  # the block is read from this server
    Secret(value="tok-from-prefect").save("dataverse-api-token", overwrite=True)
    try:
        assert dataverse_token() == "tok-from-prefect"
    finally:
        Secret.delete("dataverse-api-token")
    with pytest.raises(TokenError, match="no Prefect Secret block named 'dataverse-api-token'"):
        dataverse_token()


def test_no_token_and_no_prefect_server_fails_at_once_without_prefect(
    tmp_path, monkeypatch
) -> None:
    """With no token and no Prefect API configured, the lookup reports the missing token at
    once: it neither imports Prefect nor starts its temporary server to look for a block."""
    import sys

    from flows.dataverse_secret import dataverse_token, prefect_api_configured

    for var in ("DATAVERSE_API_TOKEN", "PREFECT_API_URL", "PREFECT_PROFILES_PATH"):
        monkeypatch.delenv(var, raising=False)
    monkeypatch.setenv("PREFECT_HOME", str(tmp_path))
    monkeypatch.setitem(sys.modules, "prefect.blocks.system", None)  # importing it fails
    assert not prefect_api_configured()
    with pytest.raises(TokenError, match="set DATAVERSE_API_TOKEN.*no block was read"):
        dataverse_token()
    (tmp_path / "profiles.toml").write_text(
        'active = "work"\n[profiles.work]\nPREFECT_API_URL = "http://127.0.0.1:4200/api"\n'
    )
    assert prefect_api_configured()  # a profile's server is asked (not tried here)
