"""Download a Dataverse dataset into a directory, safely and verifiably.

Every file of the latest version the caller may see is downloaded through the Data Access API
and written under its folder (`directoryLabel`), after checking that the server-supplied folder
and name cannot escape the output directory. Each file's checksum (MD5 on most installations)
is verified before it is written; files already present with the right checksum are kept, so
an interrupted fetch resumes. Ingested tabular files are fetched in their original format
(`?format=original`), the bytes that were uploaded. Archives in the dataset (zip, tar) are
unpacked next to themselves with `lineage.safe_unpack`, under its size and member limits.
"""

from __future__ import annotations

import hashlib
import os
import tempfile
from dataclasses import dataclass
from pathlib import Path, PurePosixPath
from typing import Any

from lineage.atomic import atomic_write_bytes
from lineage.dataverse.client import TOKEN_ENV, DataverseClient, DataverseError, RetryPolicy
from lineage.dataverse.files import digest, human_size
from lineage.provenance import CRATE_FILE, validate_crate
from lineage.safe_unpack import (
    UnsafeArchiveError,
    archive_kind,
    safe_extract,
    safe_relpath,
    size_limit,
)

__all__ = ["ChecksumError", "RemoteFile", "fetch_dataset", "remote_files"]

ARCHIVE_SUFFIXES = (".zip", ".tar", ".tar.gz", ".tgz", ".tar.bz2", ".tbz2", ".tar.xz", ".txz")
_HASHLIB = {"MD5": "md5", "SHA-1": "sha1", "SHA-256": "sha256", "SHA-512": "sha512"}


class ChecksumError(DataverseError):
    """A downloaded file does not match the checksum the server recorded for it."""


@dataclass(frozen=True)
class RemoteFile:
    rel: PurePosixPath  # where it goes under the output directory (validated)
    file_id: int
    size: int | None
    checksum_type: str
    checksum: str | None
    original: bool  # ingested tabular file: download ?format=original


def remote_files(dataset: dict[str, Any], pid: str) -> list[RemoteFile]:
    """The files of `dataset["latestVersion"]`, with paths checked against traversal."""
    out: list[RemoteFile] = []
    seen: dict[PurePosixPath, str] = {}
    for f in dataset.get("latestVersion", {}).get("files", []):
        df = f.get("dataFile", {})
        original = bool(df.get("originalFileName")) and bool(df.get("tabularData"))
        name = df["originalFileName"] if original else f.get("label") or df.get("filename", "")
        directory = f.get("directoryLabel") or ""
        shown = f"{directory}/{name}" if directory else name
        rel = safe_relpath(shown, source=f"dataset {pid}", member=shown)
        if rel in seen:
            raise DataverseError(
                f"dataset {pid}: files {seen[rel]!r} and {shown!r} would both be written to "
                f"{str(rel)!r}; fetch them by file id instead"
            )
        seen[rel] = shown
        checksum = df.get("checksum") or (
            {"type": "MD5", "value": df["md5"]} if df.get("md5") else {}
        )
        size = df.get("originalFileSize") if original else df.get("filesize")
        out.append(
            RemoteFile(
                rel=rel,
                file_id=int(df["id"]),
                size=size,
                checksum_type=str(checksum.get("type", "MD5")).upper(),
                checksum=checksum.get("value"),
                original=original,
            )
        )
    return out


def _inside(out: Path, rel: PurePosixPath) -> Path:
    target = out.joinpath(*rel.parts)
    real_out, real = out.resolve(), target.resolve()
    if real_out not in real.parents:
        raise UnsafeArchiveError(
            f"{rel}: resolves to {real}, outside {real_out} (a symlink in the output directory "
            "points elsewhere); refusing to write there"
        )
    return target


def _matches(data: bytes, rf: RemoteFile) -> tuple[bool, str]:
    if not rf.checksum:
        return True, ""
    algo = _HASHLIB.get(rf.checksum_type, rf.checksum_type.lower())
    got = hashlib.new(algo, data).hexdigest()
    return got == rf.checksum.lower(), got


def _unpack(path: Path, say: Any) -> None:
    name = path.name
    suffix = next((s for s in ARCHIVE_SUFFIXES if name.lower().endswith(s)), None)
    if suffix is None or archive_kind(path) is None:
        return
    dest = path.with_name(name[: -len(suffix)])
    written = safe_extract(path, dest, max_total_bytes=size_limit(path))  # zip-bomb guard
    say(f"unpacked {path.name} into {dest.name}/ ({len(written)} files)")


def fetch_dataset(
    pid: str,
    *,
    server: str,
    out: Path,
    token: str | None = None,
    via: str = "files",
    unpack_archives: bool = True,
    progress: bool = True,
    retry: RetryPolicy | None = None,
) -> Path:
    """Download every file of dataset `pid` into `out` (created), verified; return `out`.

    `token` defaults to $DATAVERSE_API_TOKEN and may be absent for published datasets.
    `via="files"` downloads file by file (resumable); `via="zip"` asks for the whole
    dataset as one zip (Dataverse's "download all"), unpacks it safely and verifies it.
    """
    say = print if progress else (lambda _msg: None)
    if via not in ("files", "zip"):
        raise ValueError(f"via={via!r}: use 'files' or 'zip'")
    out = Path(out)
    with DataverseClient(server, token or os.environ.get(TOKEN_ENV) or None, retry=retry) as client:
        return _fetch(client, pid, out, via, unpack_archives, say)


def _fetch(
    client: DataverseClient, pid: str, out: Path, via: str, unpack_archives: bool, say: Any
) -> Path:
    dataset = client.get_dataset(pid)
    files = remote_files(dataset, pid)
    latest = dataset["latestVersion"]
    version = (
        f"{latest.get('versionNumber')}.{latest.get('versionMinorNumber')}"
        if latest.get("versionState") == "RELEASED"
        else latest.get("versionState", "?")
    )
    total = sum(f.size or 0 for f in files)
    say(f"dataset {pid} version {version}: {len(files)} files, {human_size(total)}")
    out.mkdir(parents=True, exist_ok=True)
    if via == "zip":
        _fetch_zip(client, pid, out, files, say)
    else:
        for i, rf in enumerate(files, 1):
            target = _inside(out, rf.rel)
            if (
                target.is_file()
                and rf.checksum
                and digest(target, rf.checksum_type) == rf.checksum.lower()
            ):
                say(f"[{i}/{len(files)}] {rf.rel} already here")
                continue
            say(f"[{i}/{len(files)}] {rf.rel}")
            for attempt in (1, 2):
                data = client.download_file(rf.file_id, original=rf.original, label=str(rf.rel))
                ok, got = _matches(data, rf)
                if ok:
                    break
                if attempt == 2:
                    raise ChecksumError(
                        f"dataset {pid}: {rf.rel} (file id {rf.file_id}) downloaded twice with "
                        f"{rf.checksum_type} {got}, but the server records {rf.checksum}; the file "
                        "was not written. Report it to the dataset's contact."
                    )
            target.parent.mkdir(parents=True, exist_ok=True)
            _inside(out, rf.rel)
            atomic_write_bytes(target, data)
    if unpack_archives:
        for rf in files:
            _unpack(out.joinpath(*rf.rel.parts), say)
    fetched = {rf.rel.as_posix() for rf in files}
    if CRATE_FILE in fetched:  # an A4NN bundle: hold its files against its RO-Crate
        validate_crate(out, only=fetched)
        say(f"{CRATE_FILE}: a valid Workflow Run RO-Crate of the fetched files")
    say(f"fetched {pid} into {out}")
    return out


def _fetch_zip(
    client: DataverseClient, pid: str, out: Path, files: list[RemoteFile], say: Any
) -> None:
    data = client.download_dataset_zip(pid, original=True)
    listed = {rf.rel for rf in files}
    with tempfile.TemporaryDirectory(dir=out, prefix=".fetch-") as tmp:
        archive = Path(tmp) / "dataverse_files.zip"
        archive.write_bytes(data)
        sizes = [rf.size for rf in files]
        limit = (  # the listed files plus MANIFEST.TXT; a bigger zip is not what was listed
            sum(sizes) + (1 << 20) + 4096 * len(files)  # type: ignore[arg-type]
            if None not in sizes
            else size_limit(archive)
        )
        safe_extract(archive, out, max_total_bytes=limit)
    for rf in files:
        target = _inside(out, rf.rel)
        if not target.is_file():
            raise DataverseError(
                f"dataset {pid}: the zip from the server lacks {rf.rel} (the installation's "
                "zip size limit?); fetch again with via='files'"
            )
        if rf.checksum and digest(target, rf.checksum_type) != rf.checksum.lower():
            target.unlink()
            raise ChecksumError(
                f"dataset {pid}: {rf.rel} in the zip does not match its {rf.checksum_type} "
                f"{rf.checksum}; it was removed. Fetch again with via='files'."
            )
    manifest = out / "MANIFEST.TXT"
    if PurePosixPath("MANIFEST.TXT") not in listed and manifest.exists():
        manifest.unlink()
    say(f"unpacked the dataset zip ({human_size(len(data))})")
