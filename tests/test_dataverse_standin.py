"""The Dataverse stand-in answers like Dataverse's documented Native and Data Access APIs.

These tests talk raw HTTP (httpx), so they check the server itself, independently of our
client: paths, envelopes, status codes, auth, validation, versions and fault injection.
"""

from __future__ import annotations

import io
import json
import re
import subprocess
import sys
import time
import zipfile
from pathlib import Path
from typing import Any

import httpx
import pytest

from lineage.dataverse.metadata import Author, Contact, DatasetMetadata
from tests.dataverse_standin import DataverseStandin

TOKEN = "standin-admin-token"
READER = "standin-reader-token"
H = {"X-Dataverse-key": TOKEN}
HTTP = httpx.Client(timeout=10)  # one client: no per-request TLS context set-up


@pytest.fixture(autouse=True)
def _fresh_http_client():
    """A client per test, closed afterwards (no sockets left to the garbage collector)."""
    global HTTP
    HTTP = httpx.Client(timeout=10)
    yield
    HTTP.close()


@pytest.fixture
def dv():
    with DataverseStandin(tokens={TOKEN: "@admin"}, collections=("a4nn",), seed=7) as s:
        s.add_user(READER, "@reader", can_write=False)
        yield s


def body(**over: Any) -> dict[str, Any]:
    md = DatasetMetadata(
        title="A4NN test run",
        authors=[Author("Doe, Jane", "UTK")],
        contacts=[Contact("Jane Doe", "jane@example.org")],
        description="tiny",
    )
    for k, v in over.items():
        setattr(md, k, v)
    return md.to_dataverse_json()


def drop_field(doc: dict[str, Any], name: str) -> dict[str, Any]:
    fields = doc["datasetVersion"]["metadataBlocks"]["citation"]["fields"]
    doc["datasetVersion"]["metadataBlocks"]["citation"]["fields"] = [
        f for f in fields if f["typeName"] != name
    ]
    return doc


def create(dv: DataverseStandin, doc: dict[str, Any] | None = None) -> str:
    r = HTTP.post(f"{dv.url}/api/dataverses/a4nn/datasets", json=doc or body(), headers=H)
    assert r.status_code == 201, r.text
    return r.json()["data"]["persistentId"]


def add(dv: DataverseStandin, pid: str, name: str, data: bytes, **meta: Any) -> httpx.Response:
    return HTTP.post(
        f"{dv.url}/api/datasets/:persistentId/add",
        params={"persistentId": pid},
        files={"file": (name, data)},
        data={"jsonData": json.dumps(meta)},
        headers=H,
    )


def latest(dv: DataverseStandin, pid: str, headers: dict[str, str] | None = H) -> httpx.Response:
    return HTTP.get(
        f"{dv.url}/api/datasets/:persistentId/", params={"persistentId": pid}, headers=headers
    )


def publish(dv: DataverseStandin, pid: str, kind: str) -> httpx.Response:
    return HTTP.post(
        f"{dv.url}/api/datasets/:persistentId/actions/:publish",
        params={"persistentId": pid, "type": kind},
        headers=H,
    )


def test_create_answers_201_with_doi_and_envelope(dv: DataverseStandin) -> None:
    r = HTTP.post(f"{dv.url}/api/v1/dataverses/a4nn/datasets", json=body(), headers=H)
    assert r.status_code == 201
    doc = r.json()
    assert doc["status"] == "OK"
    assert re.fullmatch(r"doi:10\.5072/FK2/[A-Z0-9]{6}", doc["data"]["persistentId"])
    assert isinstance(doc["data"]["id"], int)
    got = latest(dv, doc["data"]["persistentId"]).json()["data"]
    assert got["latestVersion"]["versionState"] == "DRAFT"
    assert got["protocol"] == "doi" and got["authority"] == "10.5072"
    names = [f["typeName"] for f in got["latestVersion"]["metadataBlocks"]["citation"]["fields"]]
    assert {"title", "author", "datasetContact", "dsDescription", "subject"} <= set(names)


@pytest.mark.parametrize(
    ("mutate", "message"),
    [
        (lambda d: drop_field(d, "title"), "Validation Failed: Title is required."),
        (lambda d: drop_field(d, "subject"), "Validation Failed: Subject is required."),
        (lambda d: drop_field(d, "datasetContact"), "Point of Contact E-mail is required"),
        (lambda d: drop_field(d, "dsDescription"), "Description Text is required"),
        (lambda d: drop_field(d, "author"), "Author Name is required"),
        (lambda d: {"nothing": 1}, "Error parsing Json"),
    ],
)
def test_create_rejects_missing_required_fields(dv: DataverseStandin, mutate, message: str) -> None:
    r = HTTP.post(f"{dv.url}/api/dataverses/a4nn/datasets", json=mutate(body()), headers=H)
    assert r.status_code == 400
    assert r.json()["status"] == "ERROR" and message in r.json()["message"]
    assert not dv.datasets


def test_create_checks_vocabulary_email_and_type_class(dv: DataverseStandin) -> None:
    doc = body()
    for f in doc["datasetVersion"]["metadataBlocks"]["citation"]["fields"]:
        if f["typeName"] == "subject":
            f["value"] = ["Machine Learning"]
    r = HTTP.post(f"{dv.url}/api/dataverses/a4nn/datasets", json=doc, headers=H)
    assert r.status_code == 400 and "'Machine Learning' is not a valid value for subject" in r.text
    doc = body(contacts=[Contact("x", "x@y.z")])
    doc["datasetVersion"]["metadataBlocks"]["citation"]["fields"][3]["value"][0][
        "datasetContactEmail"
    ]["value"] = "not-an-email"
    r = HTTP.post(f"{dv.url}/api/dataverses/a4nn/datasets", json=doc, headers=H)
    assert r.status_code == 400 and "not a valid email address" in r.text
    doc = body()
    doc["datasetVersion"]["metadataBlocks"]["citation"]["fields"][0]["typeClass"] = "primitive"
    r = HTTP.post(f"{dv.url}/api/dataverses/a4nn/datasets", json=doc, headers=H)
    assert r.status_code == 400 and "typeClass" in r.text


def test_auth_and_not_found(dv: DataverseStandin) -> None:
    url = f"{dv.url}/api/dataverses/a4nn/datasets"
    r = HTTP.post(url, json=body(), headers={"X-Dataverse-key": "wrong"})
    assert (r.status_code, r.json()) == (401, {"status": "ERROR", "message": "Bad api key "})
    r = HTTP.get(f"{dv.url}/api/info/version", headers={"X-Dataverse-key": "wrong"})
    assert r.status_code == 401  # a bad key fails everywhere, even on public endpoints
    r = HTTP.post(url, json=body())
    assert r.status_code == 401 and ":guest is not permitted" in r.json()["message"]
    r = HTTP.post(url, json=body(), headers={"X-Dataverse-key": READER})
    assert r.status_code == 403 and "@reader is not permitted" in r.json()["message"]
    r = HTTP.post(f"{dv.url}/api/dataverses/nope/datasets", json=body(), headers=H)
    assert r.status_code == 404
    assert r.json()["message"] == "Can't find dataverse with identifier='nope'"
    r = latest(dv, "doi:10.5072/FK2/NOPE00")
    assert r.status_code == 404 and "doi:10.5072/FK2/NOPE00 not found" in r.json()["message"]
    r = HTTP.get(f"{dv.url}/api/no/such/endpoint")
    assert r.status_code == 404 and "API endpoint does not exist" in r.json()["message"]
    assert not dv.datasets


def test_upload_labels_duplicates_zip_and_ingest(dv: DataverseStandin) -> None:
    pid = create(dv)
    r = add(dv, pid, "run.json", b"{}", directoryLabel="a/b")
    assert r.status_code == 200
    f = r.json()["data"]["files"][0]
    assert (f["label"], f["directoryLabel"]) == ("run.json", "a/b")
    assert f["dataFile"]["checksum"] == {"type": "MD5", "value": "99914b932bd37a50b983c5e7c90ae93b"}
    # same name in the same folder: Dataverse renames rather than overwrite
    assert (
        add(dv, pid, "run.json", b"[]", directoryLabel="a/b").json()["data"]["files"][0]["label"]
        == "run-1.json"
    )
    # directoryLabel is sanitised like StringUtil.sanitizeFileDirectory
    r = add(dv, pid, "x.txt", b"x", directoryLabel="/bad:dir*/")
    assert r.json()["data"]["files"][0]["directoryLabel"] == "bad_dir_"
    # an uploaded zip is unpacked into its members
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as zf:
        zf.writestr("m/1.txt", b"1")
        zf.writestr("2.txt", b"2")
    files = add(dv, pid, "bundle.zip", buf.getvalue()).json()["data"]["files"]
    assert sorted((f.get("directoryLabel", ""), f["label"]) for f in files) == [
        ("", "2.txt"),
        ("m", "1.txt"),
    ]
    # CSV is ingested to .tab unless tabIngest is false
    csv = b"a,b\n1,2\n"
    ingested = add(dv, pid, "t.csv", csv).json()["data"]["files"][0]
    assert ingested["label"] == "t.tab"
    assert ingested["dataFile"]["originalFileName"] == "t.csv"
    kept = add(dv, pid, "k.csv", csv, tabIngest=False).json()["data"]["files"][0]
    assert kept["label"] == "k.csv" and not kept["dataFile"]["tabularData"]
    fid = ingested["dataFile"]["id"]
    assert HTTP.get(f"{dv.url}/api/access/datafile/{fid}", headers=H).content == b"1\t2\n"
    orig = HTTP.get(f"{dv.url}/api/access/datafile/{fid}", params={"format": "original"}, headers=H)
    assert orig.content == csv
    r = add(dv, pid, "bad:name.txt", b"x")
    assert r.status_code == 400 and "Invalid file name" in r.json()["message"]


def test_versions_major_minor_and_access(dv: DataverseStandin) -> None:
    pid = create(dv)
    fid = add(dv, pid, "a.txt", b"a").json()["data"]["files"][0]["dataFile"]["id"]
    # unpublished: guests can neither see the dataset nor download its files
    assert latest(dv, pid, headers=None).status_code == 401
    r = HTTP.get(f"{dv.url}/api/access/datafile/{fid}")
    assert r.status_code == 403 and "Not authorized to access this object" in r.json()["message"]
    assert publish(dv, pid, "minor").status_code == 200  # the first release is 1.0 regardless
    v = latest(dv, pid, headers=None).json()["data"]["latestVersion"]
    assert (v["versionState"], v["versionNumber"], v["versionMinorNumber"]) == ("RELEASED", 1, 0)
    assert HTTP.get(f"{dv.url}/api/access/datafile/{fid}").content == b"a"
    assert publish(dv, pid, "major").status_code == 403  # nothing to publish
    add(dv, pid, "b.txt", b"b")
    r = publish(dv, pid, "minor")
    assert r.status_code == 403
    assert r.json()["message"] == "Cannot release as minor version. Re-try as major release."
    assert publish(dv, pid, "major").status_code == 200
    fields = [f for f in body(title="Renamed")["datasetVersion"]["metadataBlocks"]["citation"]["fields"] if f["typeName"] == "title"]  # fmt: skip
    r = HTTP.put(
        f"{dv.url}/api/datasets/:persistentId/editMetadata",
        params={"persistentId": pid},
        json={"fields": fields},
        headers=H,
    )
    assert r.status_code == 400 and "Use replace=true" in r.json()["message"]
    r = HTTP.put(
        f"{dv.url}/api/datasets/:persistentId/editMetadata",
        params={"persistentId": pid, "replace": "true"},
        json={"fields": fields},
        headers=H,
    )
    assert r.status_code == 200
    assert publish(dv, pid, "minor").status_code == 200  # metadata-only change: minor allowed
    v = latest(dv, pid, headers=None).json()["data"]["latestVersion"]
    assert (v["versionNumber"], v["versionMinorNumber"]) == (2, 1)
    assert len(v["files"]) == 2
    r = publish(dv, pid, "sideways")
    assert r.status_code == 400 and "Illegal 'type' parameter" in r.json()["message"]
    # download all as a zip, with Dataverse's manifest
    r = HTTP.get(f"{dv.url}/api/access/dataset/:persistentId/", params={"persistentId": pid})
    with zipfile.ZipFile(io.BytesIO(r.content)) as zf:
        assert sorted(zf.namelist()) == ["MANIFEST.TXT", "a.txt", "b.txt"]


def test_replace_and_delete(dv: DataverseStandin) -> None:
    pid = create(dv)
    old = add(dv, pid, "a.txt", b"v1").json()["data"]["files"][0]["dataFile"]["id"]
    r = HTTP.post(f"{dv.url}/api/files/{old}/replace", files={"file": ("a.txt", b"v2")}, headers=H)
    assert r.status_code == 400 and "cannot replace an unpublished file" in r.json()["message"]
    publish(dv, pid, "major")
    r = HTTP.post(f"{dv.url}/api/files/{old}/replace", files={"file": ("a.txt", b"v2")}, headers=H)
    new = r.json()["data"]["files"][0]
    assert new["label"] == "a.txt" and new["dataFile"]["previousDataFileId"] == old
    extra = add(dv, pid, "b.txt", b"b").json()["data"]["files"][0]["dataFile"]["id"]
    assert HTTP.delete(f"{dv.url}/api/files/{extra}", headers=H).status_code == 200
    labels = [f["label"] for f in latest(dv, pid).json()["data"]["latestVersion"]["files"]]
    assert labels == ["a.txt"]


def test_fault_injection(dv: DataverseStandin) -> None:
    pid = create(dv)
    fault = dv.fail_nth_upload(2, status=503)
    assert add(dv, pid, "1.txt", b"1").status_code == 200
    r = add(dv, pid, "2.txt", b"2")
    assert (r.status_code, r.json()["status"]) == (503, "ERROR")
    assert add(dv, pid, "3.txt", b"3").status_code == 200
    assert fault.fired == 1
    dv.inject("GET", r"/info/version$", "drop")
    with pytest.raises(httpx.RemoteProtocolError):
        HTTP.get(f"{dv.url}/api/info/version")
    dv.inject("GET", r"/datasets/:persistentId$", "hang", seconds=2)
    t0 = time.monotonic()
    with pytest.raises(httpx.ReadTimeout):
        HTTP.get(f"{dv.url}/api/datasets/:persistentId/", params={"persistentId": pid}, timeout=0.2)
    assert time.monotonic() - t0 < 1.5
    dv.inject("POST", r"/add$", "lost")
    with pytest.raises(httpx.RemoteProtocolError):
        add(dv, pid, "4.txt", b"4")
    labels = [f["label"] for f in latest(dv, pid).json()["data"]["latestVersion"]["files"]]
    assert labels == ["1.txt", "3.txt", "4.txt"]  # the lost upload did take effect
    assert ("POST", f"/api/datasets/:persistentId/add?persistentId={pid}", -1) in dv.log


def test_command_line_server() -> None:
    proc = subprocess.Popen(
        [sys.executable, "-m", "tests.dataverse_standin", "--port", "0", "--token", "T"],
        stdout=subprocess.PIPE,
        text=True,
        cwd=Path(__file__).resolve().parents[1],  # the repository root: `tests` importable
    )
    try:
        line = proc.stdout.readline()
        url = re.search(r"(http://\S+?);", line).group(1)
        r = HTTP.get(f"{url}/api/dataverses/a4nn")
        assert r.json()["data"]["alias"] == "a4nn"
        r = HTTP.post(
            f"{url}/api/dataverses/a4nn/datasets", json=body(), headers={"X-Dataverse-key": "T"}
        )
        assert r.status_code == 201
    finally:
        proc.terminate()
        proc.wait(timeout=10)
        proc.stdout.close()
