"""Unpack zip and tar archives from a data commons without letting them write outside the target.

An archive from the internet is untrusted input: a member named `../../.bashrc`, `/etc/x`,
`C:\\x`, or a symlink pointing out of the target (and a later member written through it) would
otherwise overwrite files anywhere the user can write. Every member is checked *before* anything
is extracted, so a refused archive leaves the target untouched, and the error names the archive,
the member and the rule it broke.

Rules: member paths must be relative, without `..`, drive letters or NUL bytes (backslashes
count as separators, as on Windows); only regular files and directories are extracted from zips;
tar symlinks and hardlinks are allowed only when they point inside the target and no other
member is written through a link; device files, FIFOs and other special members are refused.
Tar extraction additionally runs under the standard library's `data` filter.
"""

from __future__ import annotations

import posixpath
import shutil
import stat
import tarfile
import zipfile
from pathlib import Path, PurePosixPath

__all__ = ["UnsafeArchiveError", "safe_relpath", "safe_extract", "archive_kind"]

_CHUNK = 1 << 20


class UnsafeArchiveError(ValueError):
    """An archive member (or a remote file name) would land outside the target directory."""


def safe_relpath(name: str, *, source: str = "archive", member: str | None = None) -> PurePosixPath:
    """Return `name` as a safe relative POSIX path, or raise naming `source` and the member.

    Used for archive members and for directory labels / file names sent by a Dataverse server.
    """
    shown = member if member is not None else name
    if "\x00" in name:
        raise UnsafeArchiveError(
            f"{source}: member {shown!r} has a NUL byte in its name; refusing it"
        )
    norm = name.replace("\\", "/")
    if norm.startswith("/") or (len(norm) >= 2 and norm[1] == ":" and norm[0].isalpha()):
        raise UnsafeArchiveError(
            f"{source}: member {shown!r} has an absolute path; refusing to write outside the "
            "target directory (the archive is unsafe: do not unpack it by hand either)"
        )
    parts = [p for p in norm.split("/") if p not in ("", ".")]
    if ".." in parts:
        raise UnsafeArchiveError(
            f"{source}: member {shown!r} contains '..' (path traversal); refusing to write "
            "outside the target directory"
        )
    if not parts:
        raise UnsafeArchiveError(f"{source}: member {shown!r} has an empty path")
    return PurePosixPath(*parts)


def archive_kind(path: Path) -> str | None:
    """'zip' or 'tar' when `path` is an archive we can unpack (by content, not name), else None."""
    path = Path(path)
    if zipfile.is_zipfile(path):
        return "zip"
    try:
        if tarfile.is_tarfile(path):
            return "tar"
    except OSError:
        return None
    return None


def safe_extract(archive: Path, dest: Path, *, max_total_bytes: int | None = None) -> list[Path]:
    """Extract a zip or tar (any compression tarfile reads) into `dest`; return the files written.

    Raises UnsafeArchiveError (nothing extracted) when any member breaks the rules above, or
    when the uncompressed total exceeds `max_total_bytes` (a zip bomb guard).
    """
    archive, dest = Path(archive), Path(dest)
    kind = archive_kind(archive)
    if kind == "zip":
        return _extract_zip(archive, dest, max_total_bytes)
    if kind == "tar":
        return _extract_tar(archive, dest, max_total_bytes)
    raise UnsafeArchiveError(
        f"{archive}: not a zip or tar archive (or it is corrupt); cannot unpack it"
    )


def _check_total(archive: Path, total: int, limit: int | None) -> None:
    if limit is not None and total > limit:
        raise UnsafeArchiveError(
            f"{archive}: unpacks to {total} bytes, over the limit of {limit} bytes; "
            "raise max_total_bytes if you trust this archive"
        )


def _inside(dest: Path, target: Path) -> Path:
    """Resolve `target` (following links already on disk) and insist it stays under `dest`."""
    real_dest = dest.resolve()
    real = target.resolve()
    if real != real_dest and real_dest not in real.parents:
        raise UnsafeArchiveError(
            f"{target}: resolves to {real}, outside {real_dest} (a symlink on disk points "
            "out of the target directory); refusing to write there"
        )
    return real


def _extract_zip(archive: Path, dest: Path, limit: int | None) -> list[Path]:
    src = str(archive)
    with zipfile.ZipFile(archive) as zf:
        plan: list[tuple[zipfile.ZipInfo, PurePosixPath]] = []
        total = 0
        for info in zf.infolist():
            rel = safe_relpath(info.filename, source=src)
            mode = info.external_attr >> 16
            if stat.S_ISLNK(mode):
                raise UnsafeArchiveError(
                    f"{src}: member {info.filename!r} is a symlink; symlinks are not unpacked "
                    "from zip archives"
                )
            if stat.S_IFMT(mode) and not (stat.S_ISREG(mode) or stat.S_ISDIR(mode)):
                raise UnsafeArchiveError(
                    f"{src}: member {info.filename!r} is a special file (mode {oct(mode)}); "
                    "only regular files and directories are unpacked"
                )
            total += info.file_size
            plan.append((info, rel))
        _check_total(archive, total, limit)
        dest.mkdir(parents=True, exist_ok=True)
        written: list[Path] = []
        for info, rel in plan:
            target = dest.joinpath(*rel.parts)
            if info.is_dir():
                target.mkdir(parents=True, exist_ok=True)
                _inside(dest, target)
                continue
            target.parent.mkdir(parents=True, exist_ok=True)
            real = _inside(dest, target)
            with zf.open(info) as fin, open(real, "wb") as fout:
                shutil.copyfileobj(fin, fout, _CHUNK)
            written.append(target)
    return written


def _extract_tar(archive: Path, dest: Path, limit: int | None) -> list[Path]:
    src = str(archive)
    with tarfile.open(archive) as tf:
        members = tf.getmembers()
        links: set[PurePosixPath] = set()
        total = 0
        for m in members:
            rel = safe_relpath(m.name, source=src)
            if m.issym() or m.islnk():
                kind = "symlink" if m.issym() else "hardlink"
                if m.issym():
                    if m.linkname.startswith("/") or m.linkname.replace("\\", "/").startswith("/"):
                        raise UnsafeArchiveError(
                            f"{src}: member {m.name!r} is a {kind} to the absolute path "
                            f"{m.linkname!r}; refusing it"
                        )
                    joined = posixpath.normpath(
                        posixpath.join(str(rel.parent), m.linkname.replace("\\", "/"))
                    )
                else:  # hardlink targets are archive member names, relative to the root
                    joined = posixpath.normpath(m.linkname.replace("\\", "/"))
                if joined == ".." or joined.startswith("../") or joined.startswith("/"):
                    raise UnsafeArchiveError(
                        f"{src}: member {m.name!r} is a {kind} to {m.linkname!r}, which points "
                        "outside the target directory; refusing it"
                    )
                links.add(rel)
            elif not (m.isfile() or m.isdir()):
                raise UnsafeArchiveError(
                    f"{src}: member {m.name!r} is a special file (device, FIFO or similar); "
                    "only files, directories and inside links are unpacked"
                )
            else:
                total += m.size
        for m in members:
            rel = safe_relpath(m.name, source=src)
            through = [p for p in rel.parents if p in links]
            if through:
                raise UnsafeArchiveError(
                    f"{src}: member {m.name!r} would be written through the link "
                    f"{str(through[0])!r}; refusing it"
                )
        _check_total(archive, total, limit)
        dest.mkdir(parents=True, exist_ok=True)
        written: list[Path] = []
        for m in members:
            try:
                tf.extract(m, dest, filter="data")
            except tarfile.FilterError as err:  # second line of defence
                raise UnsafeArchiveError(f"{src}: member {m.name!r} refused: {err}") from None
            if m.isfile():
                written.append(dest.joinpath(*safe_relpath(m.name, source=src).parts))
    return written
