"""fetch_dataset: verified, resumable downloads that a hostile server cannot steer outside OUT."""

from __future__ import annotations

import io
import json
import tarfile
from pathlib import Path

import httpx
import pytest

from lineage.dataverse import ChecksumError, RetryPolicy, fetch_dataset, publish_bundle
from lineage.dataverse.metadata import Author, Contact, DatasetMetadata
from lineage.safe_unpack import UnsafeArchiveError
from tests.dataverse_standin import DataverseStandin

TOKEN = "tok-fetch-admin"
FAST = RetryPolicy(attempts=2, backoff=0.01, max_backoff=0.02, timeout=5.0)
META = DatasetMetadata(
    title="t", authors=[Author("Doe, J")], contacts=[Contact("J", "j@example.org")], description="d"
)


@pytest.fixture
def dv():
    with DataverseStandin(tokens={TOKEN: "@admin"}, collections=("a4nn",), seed=5) as s:
        yield s


def published(dv: DataverseStandin, root: Path, files: dict[str, bytes]) -> str:
    for rel, data in files.items():
        (root / rel).parent.mkdir(parents=True, exist_ok=True)
        (root / rel).write_bytes(data)
    report = publish_bundle(
        root, server=dv.url, collection="a4nn", metadata=META, token=TOKEN,
        release="major", retry=FAST, progress=False,
    )  # fmt: skip
    return report.persistent_id


def fetch(dv: DataverseStandin | None, pid: str, out: Path, **kw) -> Path:
    kw.setdefault("server", dv.url if dv is not None else None)
    return fetch_dataset(pid, out=out, retry=FAST, progress=False, **kw)


FILES = {"a.json": b'{"a": 1}', "tables/t.bin": bytes(range(256)) * 4, "x/y/z.txt": b"z\r\n"}


def test_resumes_and_verifies(dv, tmp_path) -> None:
    pid = published(dv, tmp_path / "b", FILES)
    out = fetch(dv, pid, tmp_path / "out")
    assert {p.relative_to(out).as_posix() for p in out.rglob("*") if p.is_file()} == set(FILES)
    n = dv.count("GET", r"/access/datafile/")
    (out / "a.json").write_bytes(b"truncat")  # damaged copy: fetched again
    fetch(dv, pid, out)
    assert dv.count("GET", r"/access/datafile/") - n == 1
    assert (out / "a.json").read_bytes() == FILES["a.json"]


def test_zip_mode_round_trip(dv, tmp_path) -> None:
    pid = published(dv, tmp_path / "b", FILES)
    out = fetch(dv, pid, tmp_path / "out", via="zip")
    got = {p.relative_to(out).as_posix(): p.read_bytes() for p in out.rglob("*") if p.is_file()}
    assert got == FILES  # MANIFEST.TXT removed, nothing else added
    assert dv.count("GET", r"/access/dataset/") == 1


def test_checksum_mismatch_is_reported_and_not_written(dv, tmp_path) -> None:
    pid = published(dv, tmp_path / "b", FILES)
    ds = dv.dataset_by_pid(pid)
    fm = next(f for f in ds.latest.files if f.label == "t.bin")
    dv.datafiles[fm.datafile_id].content = b"bit rot"
    with pytest.raises(ChecksumError) as err:
        fetch(dv, pid, tmp_path / "out")
    msg = str(err.value)
    assert "tables/t.bin" in msg and "MD5" in msg and "was not written" in msg
    assert not (tmp_path / "out/tables/t.bin").exists()


@pytest.mark.parametrize(
    ("directory", "label"),
    [("../../escaped", "a.json"), (None, "../escaped.json"), ("/abs", "a.json")],
)
def test_hostile_directory_labels_refused(dv, tmp_path, directory, label) -> None:
    """A server (or a tampered listing) naming paths outside OUT gets nothing written."""
    pid = published(dv, tmp_path / "b", {"a.json": b"{}"})
    fm = dv.dataset_by_pid(pid).latest.files[0]
    fm.directory_label, fm.label = directory, label
    out = tmp_path / "deep/out"
    with pytest.raises(UnsafeArchiveError) as err:
        fetch(dv, pid, out)
    assert "traversal" in str(err.value) or "absolute" in str(err.value)
    assert pid in str(err.value)
    assert not list(tmp_path.glob("**/escaped*")) and not (tmp_path / "deep/escaped").exists()
    with pytest.raises(UnsafeArchiveError):  # the dataset zip carries the same paths
        fetch(dv, pid, tmp_path / "zipout", via="zip")
    assert not list(tmp_path.glob("**/escaped*"))


def test_archive_in_dataset_is_unpacked_safely(dv, tmp_path) -> None:
    good = io.BytesIO()
    with tarfile.open(fileobj=good, mode="w:gz") as tf:
        info = tarfile.TarInfo("ckpt/epoch_001.pt")
        info.size = 3
        tf.addfile(info, io.BytesIO(b"abc"))
    pid = published(dv, tmp_path / "b", {"ckpts.tar.gz": good.getvalue()})
    out = fetch(dv, pid, tmp_path / "out")
    assert (out / "ckpts/ckpt/epoch_001.pt").read_bytes() == b"abc"

    evil = io.BytesIO()
    with tarfile.open(fileobj=evil, mode="w") as tf:
        info = tarfile.TarInfo("../../evil.txt")
        info.size = 4
        tf.addfile(info, io.BytesIO(b"evil"))
    pid = published(dv, tmp_path / "b2", {"evil.tar": evil.getvalue()})
    with pytest.raises(UnsafeArchiveError, match=r"evil.tar: member '../../evil.txt'"):
        fetch(dv, pid, tmp_path / "out2")
    assert not (tmp_path / "evil.txt").exists() and not (tmp_path / "out2/evil").exists()


def test_ingested_tabular_file_fetched_in_original_format(dv, tmp_path) -> None:
    """Datasets uploaded by others may have CSVs ingested to .tab: we fetch the original."""
    r = httpx.post(
        f"{dv.url}/api/dataverses/a4nn/datasets",
        json=META.to_dataverse_json(),
        headers={"X-Dataverse-key": TOKEN},
    )
    pid = r.json()["data"]["persistentId"]
    csv = b"model_id,val_acc\n1,50.0\n2,61.5\n"
    httpx.post(
        f"{dv.url}/api/datasets/:persistentId/add",
        params={"persistentId": pid},
        files={"file": ("epochs.csv", csv)},
        data={"jsonData": json.dumps({"directoryLabel": "tables"})},
        headers={"X-Dataverse-key": TOKEN},
    )
    out = fetch(dv, pid, tmp_path / "out", token=TOKEN)
    assert (out / "tables/epochs.csv").read_bytes() == csv
    assert not (out / "tables/epochs.tab").exists()


def test_wrong_or_unreachable_server(tmp_path) -> None:
    import socket
    import threading
    from http.server import SimpleHTTPRequestHandler, ThreadingHTTPServer

    from lineage.dataverse import DataverseError, DataverseNotFoundError, DataverseUnavailableError

    web = ThreadingHTTPServer(("127.0.0.1", 0), SimpleHTTPRequestHandler)  # not a Dataverse
    threading.Thread(target=web.serve_forever, args=(0.05,), daemon=True).start()
    try:
        url = f"http://127.0.0.1:{web.server_address[1]}"
        with pytest.raises(DataverseNotFoundError, match=r"HTTP 404.*--server URL"):
            fetch(None, "doi:10.5072/FK2/ABCDEF", tmp_path / "a", server=url)
    finally:
        web.shutdown()
        web.server_close()
    with socket.socket() as sock:  # a port nobody listens on
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    with pytest.raises(
        DataverseUnavailableError, match=r"after 2 attempts \(last: connection failed"
    ):
        fetch(None, "doi:10.5072/FK2/ABCDEF", tmp_path / "b", server=f"http://127.0.0.1:{port}")
    with pytest.raises(DataverseError, match="'dataverse.example.org' is not an http"):
        fetch(None, "doi:x", tmp_path / "c", server="dataverse.example.org")


@pytest.fixture(scope="module")
def bomb() -> bytes:
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w:gz") as tf:
        info = tarfile.TarInfo("zeros.bin")
        info.size = 20 << 20  # 20 MiB of zeros in about 20 kB
        tf.addfile(info, io.BytesIO(bytes(info.size)))
    assert len(buf.getvalue()) < 100_000
    return buf.getvalue()


@pytest.mark.parametrize("via", ["files", "zip"])
def test_archive_bomb_in_dataset_refused_by_size_limit(dv, tmp_path, via, bomb) -> None:
    """The fetch path unpacks archives under safe_unpack.size_limit (ratio 200, 16 MiB floor)."""
    pid = published(dv, tmp_path / "b", {"bomb.tar.gz": bomb, "a.json": b"{}"})
    out = tmp_path / "out"
    with pytest.raises(
        UnsafeArchiveError, match=r"bomb.tar.gz: member 'zeros.bin' .*over the limit"
    ):
        fetch(dv, pid, out, via=via)
    assert sorted(p.name for p in out.iterdir()) == ["a.json", "bomb.tar.gz"]  # no bomb/, no temp
