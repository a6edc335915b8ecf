"""Publish a run bundle to a Dataverse collection: create once, upload what is missing, release.

Idempotent and resumable. The dataset's persistent id is written to a state file
(`BUNDLE/publish.json` by default) the moment the server returns it, and every uploaded
file is recorded there as it lands. A rerun reads the dataset's file list from the server
and uploads only the files missing from it (matched by folder, name and MD5); a file whose
content changed is replaced. A second dataset is never created: before the create request a
random key is recorded in the state file and sent as the dataset's `otherId`; if the answer
to the create request is lost (timeout, dropped connection, 5xx) the collection is searched
for that key before anything is retried.

The API token is used for the `X-Dataverse-key` header only: it is never written to the
state file, printed, or put in an exception message.
"""

from __future__ import annotations

import copy
import tempfile
import uuid
import zipfile
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from lineage.atomic import atomic_write_json, read_json
from lineage.dataverse.client import (
    DataverseClient,
    DataverseError,
    DataverseNotFoundError,
    DataverseRequestError,
    RetryPolicy,
    resolve_token,
)
from lineage.dataverse.files import LocalFile, human_size, scan_bundle
from lineage.dataverse.metadata import DatasetMetadata, dataset_json, metadata_digest

__all__ = ["STATE_FILE", "PublishReport", "publish_bundle"]

STATE_FILE = "publish.json"
STATE_SCHEMA = "a4nn.publish/1"
KEY_AGENCY = "A4NN publish key"


@dataclass
class PublishReport:
    """What one `publish_bundle` call did."""

    persistent_id: str
    server: str
    collection: str
    dataset_url: str
    created: bool
    size_bytes: int
    n_files: int
    uploaded: list[str] = field(default_factory=list)
    replaced: list[str] = field(default_factory=list)
    skipped: list[str] = field(default_factory=list)
    remote_only: list[str] = field(default_factory=list)
    version: str = "DRAFT"  # "DRAFT" or the latest released "major.minor"
    released: bool = False  # whether this call released a new version
    metadata_updated: bool = False
    state_file: Path | None = None
    draft: bool = True  # the dataset has unpublished changes (a draft) after this call

    def status_text(self) -> str:
        """What the dataset is now, said as it is: 'released as version 1.0',
        'draft (never released)', or 'draft; version 1.0 is the latest release'."""
        if not self.draft:
            return f"released as version {self.version}"
        if self.version == "DRAFT":
            return "draft (never released: others cannot see it until it is released)"
        return (
            f"draft with unreleased changes; version {self.version} is the latest release "
            "(others see that one)"
        )


def _now() -> str:
    return datetime.now(UTC).isoformat(timespec="seconds")


def _key_field(key: str) -> dict[str, Any]:
    def prim(name: str, value: str) -> dict[str, Any]:
        return {"typeName": name, "multiple": False, "typeClass": "primitive", "value": value}

    return {
        "otherIdAgency": prim("otherIdAgency", KEY_AGENCY),
        "otherIdValue": prim("otherIdValue", key),
    }


def _with_key(body: dict[str, Any], key: str) -> dict[str, Any]:
    """A copy of the dataset JSON carrying `key` as an otherId entry."""
    body = copy.deepcopy(body)
    fields = body["datasetVersion"]["metadataBlocks"]["citation"]["fields"]
    for f in fields:
        if f.get("typeName") == "otherId":
            f["value"] = [
                v for v in f["value"] if v.get("otherIdAgency", {}).get("value") != KEY_AGENCY
            ]
            f["value"].append(_key_field(key))
            break
    else:
        fields.append(
            {
                "typeName": "otherId",
                "multiple": True,
                "typeClass": "compound",
                "value": [_key_field(key)],
            }
        )
    return body


def _has_key(dataset: dict[str, Any], key: str) -> bool:
    fields = (
        dataset.get("latestVersion", {})
        .get("metadataBlocks", {})
        .get("citation", {})
        .get("fields", [])
    )
    for f in fields:
        if f.get("typeName") == "otherId":
            for v in f.get("value", []):
                if v.get("otherIdValue", {}).get("value") == key:
                    return True
    return False


def _pid_of(item: dict[str, Any]) -> str:
    return f"{item['protocol']}:{item['authority']}{item.get('separator', '/')}{item['identifier']}"


def _find_by_key(
    client: DataverseClient, collection: str, key: str, limit: int = 50
) -> dict[str, Any] | None:
    """The dataset in `collection` carrying our publish key (newest first), if any."""
    items = [i for i in client.collection_contents(collection) if i.get("type") == "dataset"]
    for item in sorted(items, key=lambda i: -int(i["id"]))[:limit]:
        pid = _pid_of(item)
        try:
            ds = client.get_dataset(pid)
        except DataverseNotFoundError:
            continue
        if _has_key(ds, key):
            return {"id": ds["id"], "persistentId": pid}
    return None


def _quietly(fn: Callable[[], Any]) -> Any:
    """For recovery probes between retries: a failing probe just means 'not found yet'."""
    try:
        return fn()
    except DataverseError:
        return None


def _remote_files(dataset: dict[str, Any]) -> dict[tuple[str, str], dict[str, Any]]:
    out = {}
    for f in dataset.get("latestVersion", {}).get("files", []):
        out[(f.get("directoryLabel") or "", f["label"])] = f
    return out


def _key(lf: LocalFile) -> tuple[str, str]:
    return (lf.directory_label or "", lf.label)


def _md5(remote: dict[str, Any]) -> str | None:
    df = remote.get("dataFile", {})
    checksum = df.get("checksum") or {}
    if checksum.get("type", "MD5").upper() == "MD5" and checksum.get("value"):
        return checksum["value"]
    return df.get("md5")


def _load_state(path: Path) -> dict[str, Any]:
    if not path.exists():
        return {"schema": STATE_SCHEMA, "targets": []}
    state = read_json(path)
    if not isinstance(state, dict) or state.get("schema") != STATE_SCHEMA:
        raise DataverseError(
            f"{path}: not an A4NN publish state file (schema {STATE_SCHEMA!r} expected); "
            "move it away or pass another state_file"
        )
    return state


def publish_bundle(
    bundle_dir: Path,
    *,
    server: str,
    collection: str,
    metadata: DatasetMetadata | dict[str, Any],
    token: str | Callable[[], str] | None = None,
    release: str | None = None,
    state_file: Path | None = None,
    progress: bool = True,
    retry: RetryPolicy | None = None,
    label: str | None = None,
) -> PublishReport:
    """Create (once) a dataset in `collection` on `server`, upload the bundle's files into it,
    and release a `major` or `minor` version when `release` is given (None leaves a draft).

    The state file (default `bundle_dir/publish.json`, never uploaded) records the persistent
    id and uploaded files, so that a rerun resumes instead of starting over. `token` is the
    API token or a callable that looks it up (called once, before the files are read);
    None means $DATAVERSE_API_TOKEN. `label` names the bundle in the messages (default: its
    folder).
    """
    say: Callable[[str], None] = print if progress else (lambda _msg: None)
    if release not in (None, "major", "minor"):
        raise ValueError(f"release={release!r}: use None (leave a draft), 'major' or 'minor'")
    if not isinstance(collection, str) or not collection.strip():
        raise ValueError("collection: give the alias of the Dataverse collection to publish into")
    bundle_dir = Path(bundle_dir)
    state_path = Path(state_file) if state_file is not None else bundle_dir / STATE_FILE
    body = dataset_json(metadata)  # validate metadata before touching the network
    token = resolve_token(token)  # a missing token is reported before the files are hashed
    files = scan_bundle(bundle_dir, exclude=(state_path,))
    total = sum(f.size for f in files)
    say(f"bundle {label or bundle_dir}: {len(files)} files, {human_size(total)}")

    with DataverseClient(server, token, retry=retry) as client:
        return _publish(client, files, total, body, state_path, collection, release, say)


@dataclass
class _Run:
    """One publish call's context: the client, the state entry for (server, collection)."""

    client: DataverseClient
    state: dict[str, Any]
    target: dict[str, Any]
    state_path: Path
    say: Callable[[str], None]

    def save(self) -> None:
        self.target["updated_at"] = _now()
        atomic_write_json(self.state_path, self.state)


def _publish(
    client: DataverseClient,
    files: list[LocalFile],
    total: int,
    body: dict[str, Any],
    state_path: Path,
    collection: str,
    release: str | None,
    say: Callable[[str], None],
) -> PublishReport:
    server = client.server
    state = _load_state(state_path)
    target = next(
        (t for t in state["targets"] if t["server"] == server and t["collection"] == collection),
        None,
    )
    if target is None:
        target = {"server": server, "collection": collection, "files": {}, "releases": []}
        state["targets"].append(target)
    run = _Run(client, state, target, state_path, say)

    digest = metadata_digest(body)
    pid, created = _ensure_dataset(run, collection, body, digest)
    try:
        dataset = client.get_dataset(pid)
    except DataverseNotFoundError as err:
        raise DataverseNotFoundError(
            f"{err} The state file {state_path} records this dataset for {server}; if it was "
            "deleted on purpose, remove its entry from the state file to create a new one."
        ) from None
    report = PublishReport(
        persistent_id=pid,
        server=server,
        collection=collection,
        dataset_url=f"{server}/dataset.xhtml?persistentId={pid}",
        created=created,
        size_bytes=total,
        n_files=len(files),
        state_file=state_path,
    )
    if target.get("metadata_sha256") != digest:
        key = target.get("publish_key")
        keyed = _with_key(body, key) if key else body
        client.edit_metadata(pid, keyed["datasetVersion"]["metadataBlocks"]["citation"]["fields"])
        target["metadata_sha256"] = digest
        report.metadata_updated = True
        run.save()
        say("updated the dataset's metadata")
    _sync_files(run, pid, files, _remote_files(dataset), report)
    _release(run, pid, release, report)
    run.save()
    say(f"done: {report.dataset_url} ({report.status_text()})")
    return report


def _ensure_dataset(
    run: _Run, collection: str, body: dict[str, Any], digest: str
) -> tuple[str, bool]:
    """The dataset's pid, creating it unless the state file (or its publish key) finds it."""
    target, client = run.target, run.client
    if target.get("persistent_id"):
        return target["persistent_id"], False
    key = target.get("publish_key")
    found = _find_by_key(client, collection, key) if key else None
    created = found is None
    if found is None:
        if not key:
            key = target["publish_key"] = uuid.uuid4().hex
            run.save()  # the key is on disk before the dataset can exist
        found = client.create_dataset(
            collection,
            _with_key(body, key),
            recover=lambda: _quietly(lambda: _find_by_key(client, collection, key)),
        )
    target["persistent_id"] = found["persistentId"]
    target["dataset_id"] = found.get("id")
    target["created_at"] = target.get("created_at") or _now()
    target["metadata_sha256"] = digest
    run.save()
    run.say(
        f"{'created' if created else 'found'} dataset {found['persistentId']} in {collection!r}"
    )
    return found["persistentId"], created


def _sync_files(
    run: _Run,
    pid: str,
    files: list[LocalFile],
    remote: dict[tuple[str, str], dict[str, Any]],
    report: PublishReport,
) -> None:
    """Upload what the dataset lacks, replace what changed, record each file as it lands."""
    client, say = run.client, run.say
    local_keys = {_key(f) for f in files}
    report.remote_only = sorted(
        f"{d}/{n}" if d else n for d, n in remote if (d, n) not in local_keys
    )
    todo = [f for f in files if _md5(remote.get(_key(f), {})) != f.md5]
    for f in files:
        if f not in todo:
            report.skipped.append(f.rel)
            file_id = remote[_key(f)]["dataFile"]["id"]
            run.target["files"][f.rel] = {"md5": f.md5, "size": f.size, "file_id": file_id}
    if report.skipped:
        say(f"{len(report.skipped)} files already in {pid}; skipping them")
    if todo:
        say(f"uploading {len(todo)} files ({human_size(sum(f.size for f in todo))})")

    def present(lf: LocalFile) -> list[dict[str, Any]] | None:
        """Recovery probe: did a lost upload of `lf` land after all?"""
        entry = _remote_files(client.get_dataset(pid)).get(_key(lf))
        return [entry] if entry is not None and _md5(entry) == lf.md5 else None

    with tempfile.TemporaryDirectory(prefix="a4nn-publish-") as tmp:
        for i, lf in enumerate(todo, 1):
            old = remote.get(_key(lf))
            say(
                f"[{i}/{len(todo)}] {'replace' if old else 'upload'} {lf.rel} ({human_size(lf.size)})"
            )
            json_data: dict[str, Any] = {"tabIngest": False}  # keep CSVs byte-identical
            if lf.directory_label:
                json_data["directoryLabel"] = lf.directory_label
            send = lf.path
            if lf.label.lower().endswith(".zip"):  # Dataverse unpacks zips: double-zip it
                send = Path(tmp) / str(i) / lf.label
                send.parent.mkdir()
                with zipfile.ZipFile(send, "w", zipfile.ZIP_STORED) as zf:
                    zf.write(lf.path, arcname=lf.label)
            old_df = (old or {}).get("dataFile", {})
            if old is not None and old_df.get("publicationDate") and send is lf.path:
                entries = client.replace_file(
                    old_df["id"], send, dict(json_data, forceReplace=True), label=lf.rel
                )
                report.replaced.append(lf.rel)
            else:
                if old is not None:  # unpublished (or zipped) file: delete, then add
                    client.delete_file(old_df["id"], label=lf.rel)
                    report.replaced.append(lf.rel)
                else:
                    report.uploaded.append(lf.rel)
                entries = client.add_file(
                    pid,
                    send,
                    json_data,
                    label=lf.rel,
                    recover=lambda lf=lf: _quietly(lambda: present(lf)),
                )
            entry = entries[0]
            got = (entry.get("directoryLabel") or "", entry["label"])
            if got != _key(lf) or _md5(entry) != lf.md5:
                raise DataverseRequestError(
                    f"Dataverse stored {lf.rel} as {'/'.join(p for p in got if p)!r} with MD5 "
                    f"{_md5(entry)} (expected {lf.md5}); the dataset {pid} needs a look by hand"
                )
            file_id = entry["dataFile"]["id"]
            run.target["files"][lf.rel] = {"md5": lf.md5, "size": lf.size, "file_id": file_id}
            run.save()


def _version(latest: dict[str, Any]) -> str:
    return f"{latest.get('versionNumber')}.{latest.get('versionMinorNumber')}"


def _release(run: _Run, pid: str, release: str | None, report: PublishReport) -> None:
    """Publish the draft as a `release` version, if asked and if there is a draft."""
    client, say = run.client, run.say
    latest = client.get_dataset(pid)["latestVersion"]
    if release is not None and latest["versionState"] != "DRAFT":
        say(f"{pid} has no unpublished changes; nothing to release")
    elif release is not None:
        try:
            client.publish(pid, release)
        except DataverseError as err:
            if "minor" in str(err).lower() and release == "minor":
                raise DataverseRequestError(
                    f"{err} Dataverse allows a minor release only when no file was added, "
                    "replaced or deleted since the last release; publish again with "
                    "release='major'."
                ) from None
            raise
        latest = client.get_dataset(pid)["latestVersion"]
        report.released = True
        run.target["releases"].append({"version": _version(latest), "type": release, "at": _now()})
        run.save()
        say(f"released {pid} as version {_version(latest)}")
    if latest["versionState"] == "RELEASED":
        report.version = _version(latest)
        report.draft = False
    elif run.target["releases"]:  # a draft on top of a release made earlier
        report.version = run.target["releases"][-1]["version"]
