"""Unpack zip and tar archives from a data commons without letting them write outside the target.

An archive from the internet is untrusted input: a member named `../../.bashrc`, `/etc/x` or
`C:\\x`, a symlink pointing out of the target (directly, or through a chain of other links in
the archive), or a member written through a link would otherwise create or overwrite files
anywhere the user can write. `safe_extract` therefore works in three steps:

1. **Plan.** It reads the whole member list and simulates the final tree: the archive's
   members laid over what already is in the target. Every member path, and every symlink
   once *all* links exist (in whatever order the archive lists them, chains and links through
   links already in the target included), is resolved against that tree. Any member that
   would land, point or be written outside the target is refused, and so is any archive over
   the size or member-count limit. Nothing has been written yet.
2. **Extract** into a fresh temporary folder `.<target>.unpack-*`: beside the target when it
   does not exist yet (missing parents are created), else inside it. Tar members pass through the standard library's `data` extraction
   filter as a second line of defence; zip members are written with equivalent checks.
3. **Move into place**: one rename when the target does not exist yet, otherwise each entry
   is renamed over the target's (existing folders are merged, files and links replaced).

On any refusal or error, the temporary folder (and any parent folders this call created) is
removed: a refused archive leaves the target and its surroundings as they were. The error is
one `UnsafeArchiveError` (a ValueError) naming the archive, the member and the rule it broke.

Rules:

- member paths must be relative, without `..`, drive letters or NUL bytes (backslashes count
  as separators, as on Windows); a bare `./` root folder entry is skipped;
- a path may appear only once, except for folders (a file listed twice, a file and a folder,
  or a link and anything else at one path is ambiguous and refused);
- no member may be written through a link: not one from the archive, not one already in the
  target; a member may not replace a folder already in the target by a file or link, nor a
  file or link by a folder;
- tar symlinks must be relative and resolve inside the target (link loops are refused, and
  so is resolving through more than 40 nested links); tar hardlinks must name an earlier
  regular file of the archive;
- zip archives may not contain symlinks at all (Dataverse bundles need none, and `zipfile`
  would write them as small text files); devices, FIFOs and other special members are refused
  in both formats;
- the declared uncompressed total must stay within `max_total_bytes` (a zip bomb guard; bytes
  actually written are counted too) and the number of members within `max_members`.

`size_limit(archive)` is the limit the Dataverse fetch uses for archives of unknown content:
`MAX_RATIO` times the archive's size, at least `RATIO_FLOOR_BYTES`, at most `MAX_TOTAL_BYTES`.

Not covered: another process writing into the target while it is unpacked; case-insensitive
file systems (`A` and `a` are taken as two paths, as on Linux); and a crash or I/O error (not
a refusal) during the final move, which can leave a target with some entries replaced, each
one whole. A killed process can leave a `.<target>.unpack-*` folder behind.
"""

from __future__ import annotations

import lzma
import os
import shutil
import stat
import tarfile
import tempfile
import zipfile
import zlib
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath

__all__ = [
    "MAX_MEMBERS",
    "MAX_RATIO",
    "MAX_TOTAL_BYTES",
    "RATIO_FLOOR_BYTES",
    "UnsafeArchiveError",
    "archive_kind",
    "safe_extract",
    "safe_relpath",
    "size_limit",
]

_CHUNK = 1 << 20
MAX_MEMBERS = 100_000  # default member-count limit
MAX_RATIO = 200  # size_limit: unpacked bytes per archive byte
RATIO_FLOOR_BYTES = 16 << 20  # size_limit never goes below this
MAX_TOTAL_BYTES = 64 << 30  # size_limit never goes above this
_MAX_LINK_DEPTH = 40  # nested links while resolving one (bounds the recursion)

Rel = tuple[str, ...]


class UnsafeArchiveError(ValueError):
    """An archive cannot be unpacked safely: a member (or a remote file name) would land
    outside the target directory, breaks a rule or a limit, or cannot be read or written."""


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
    if _is_absolute(norm):
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


def _is_absolute(norm: str) -> bool:
    return norm.startswith("/") or (len(norm) >= 2 and norm[1] == ":" and norm[0].isalpha())


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


def size_limit(archive: Path) -> int:
    """A zip-bomb limit for an archive whose unpacked size nobody vouches for."""
    size = Path(archive).stat().st_size
    return min(MAX_TOTAL_BYTES, max(RATIO_FLOOR_BYTES, MAX_RATIO * size))


def safe_extract(
    archive: Path,
    dest: Path,
    *,
    max_total_bytes: int | None = None,
    max_members: int | None = MAX_MEMBERS,
) -> list[Path]:
    """Extract a zip or tar (any compression tarfile reads) into `dest`; return the files written.

    Raises UnsafeArchiveError, leaving `dest` and its surroundings as they were, when any member
    breaks the rules in the module docstring, when the uncompressed total exceeds
    `max_total_bytes` or the member count `max_members` (None: no limit), or when the archive
    cannot be read or written.
    """
    archive, dest = Path(archive), Path(dest)
    kind = archive_kind(archive)
    if kind is None:
        raise UnsafeArchiveError(
            f"{archive}: not a zip or tar archive (or it is corrupt); cannot unpack it"
        )
    if os.path.lexists(dest) and not dest.is_dir():
        raise UnsafeArchiveError(
            f"{archive}: cannot unpack into {dest}: it exists and is not a directory"
        )
    limits = (max_total_bytes, max_members)
    if kind == "zip":
        return _extract_zip(archive, dest, limits)
    return _extract_tar(archive, dest, limits)


# -- the plan: every member checked against the simulated final tree ---------------------------


@dataclass
class _Member:
    name: str  # as in the archive, for messages
    rel: Rel  # normalised path under the target
    kind: str  # "dir" | "file" | "symlink" | "hardlink"
    link: str = ""  # symlink: its text, '/'-separated; hardlink: the linked member's path
    size: int = 0
    info: tarfile.TarInfo | zipfile.ZipInfo | None = field(default=None, repr=False)


class _Refused(Exception):
    """Internal: a member was refused; carries the message without the archive's name."""


def _member_rel(name: str, is_dir: bool) -> Rel | None:
    """The member's normalised path; None for a bare root folder entry (`./`)."""
    if is_dir and "\x00" not in name:
        norm = name.replace("\\", "/")
        if not _is_absolute(norm) and not [p for p in norm.split("/") if p not in ("", ".")]:
            return None
    return safe_relpath(name, source="", member=name).parts


def _plan(src: str, dest: Path, members: list[_Member], limits: tuple[int | None, int | None]):
    """Refuse (UnsafeArchiveError) unless every member lands and points inside `dest`."""
    max_total, _max_members = limits
    total = 0
    for m in members:
        total += m.size
        if max_total is not None and total > max_total:
            raise UnsafeArchiveError(
                f"{src}: member {m.name!r} brings the unpacked size to {total} bytes, over the "
                f"limit of {max_total} bytes (a zip bomb?); nothing was unpacked. Raise "
                "max_total_bytes if you trust this archive"
            )
    tree = _Tree(dest)
    try:
        for m in members:
            tree.add(m)
        for m in members:
            tree.check_on_disk(m)
        for m in members:
            if m.kind == "symlink" and tree.resolve(m.rel[:-1], m.link, m) is None:
                raise _Refused(
                    f"member {m.name!r} is a symlink to {m.link!r}, which points outside the "
                    "target directory (once all links in the archive and the target exist)"
                )
    except _Refused as err:
        raise UnsafeArchiveError(f"{src}: {err}; refusing it (nothing was unpacked)") from None


class _Tree:
    """The archive's members over the target's current content (read from disk, never written)."""

    def __init__(self, dest: Path) -> None:
        self.real = Path(os.path.realpath(dest)) if dest.is_dir() else None
        self.nodes: dict[Rel, _Member] = {}
        self.implied: dict[Rel, _Member] = {}  # folder -> the first member inside it
        self.memo: dict[Rel, Rel | None] = {}  # resolved links (None: escapes)
        self.busy: set[Rel] = set()

    def add(self, m: _Member) -> None:
        for i in range(1, len(m.rel)):
            up = m.rel[:i]
            node = self.nodes.get(up)
            if node is not None and node.kind != "dir":
                raise _Refused(_through(m, node))
            self.implied.setdefault(up, m)
        old = self.nodes.get(m.rel)
        if m.kind != "dir" and m.rel in self.implied:
            raise _Refused(_through(self.implied[m.rel], m))
        if old is not None and not (old.kind == m.kind == "dir"):
            raise _Refused(
                f"member {m.name!r} ({m.kind}) and member {old.name!r} ({old.kind}) are both "
                f"{'/'.join(m.rel)!r}; the archive is ambiguous"
            )
        if m.kind == "hardlink":
            target = self.nodes.get(PurePosixPath(m.link).parts)
            if target is None or target.kind not in ("file", "hardlink"):
                raise _Refused(
                    f"member {m.name!r} is a hardlink to {m.link!r}, which is not a regular file "
                    "listed before it in the archive"
                )
        if old is None:
            self.nodes[m.rel] = m

    def _disk(self, rel: Rel) -> os.stat_result | None:
        if self.real is None:
            return None
        try:
            return os.lstat(self.real.joinpath(*rel))
        except (FileNotFoundError, NotADirectoryError):
            return None

    def check_on_disk(self, m: _Member) -> None:
        """No member goes through a link or non-folder already in the target, or swaps kinds."""
        if self.real is None:
            return
        for i in range(1, len(m.rel)):
            up = m.rel[:i]
            st = self._disk(up)
            if st is None:
                return  # nothing on disk below a missing folder
            if stat.S_ISLNK(st.st_mode):
                where = self.resolve(up[:-1], os.readlink(self.real.joinpath(*up)), m)
                how = (
                    "outside the target directory"
                    if where is None
                    else f"to {'/'.join(where) or '.'!r} in the target"
                )
                raise _Refused(
                    f"member {m.name!r} would be written through {'/'.join(up)!r}, a symlink "
                    f"already in {self.real} that points {how}"
                )
            if not stat.S_ISDIR(st.st_mode):
                raise _Refused(
                    f"member {m.name!r} would be written inside {'/'.join(up)!r}, which is a "
                    f"file already in {self.real}"
                )
        st = self._disk(m.rel)
        if st is None:
            return
        on_disk_dir = stat.S_ISDIR(st.st_mode)
        if m.kind == "dir" and not on_disk_dir:
            raise _Refused(
                f"member {m.name!r} is a folder, but {'/'.join(m.rel)!r} already is a "
                f"{'symlink' if stat.S_ISLNK(st.st_mode) else 'file'} in {self.real}"
            )
        if m.kind != "dir" and on_disk_dir:
            raise _Refused(
                f"member {m.name!r} ({m.kind}) would replace the folder {'/'.join(m.rel)!r} "
                f"already in {self.real}"
            )

    def resolve(self, base: Rel, text: str, m: _Member, depth: int = 0) -> Rel | None:
        """Where `text`, followed from folder `base`, ends up (every link followed, as the
        kernel does); None when it leaves the target. Missing parts count as folders, so a
        dangling path is judged as if it later existed."""
        if depth > _MAX_LINK_DEPTH:
            raise _Refused(f"member {m.name!r}: a chain of more than {_MAX_LINK_DEPTH} links")
        if text.startswith("/"):
            return self._absolute(text)
        cur = list(base)
        for part in text.split("/"):
            if part in ("", "."):
                continue
            if part == "..":
                if not cur:
                    return None
                cur.pop()
                continue
            cur.append(part)
            here = tuple(cur)
            node = self.nodes.get(here)
            if node is not None:
                if node.kind != "symlink":
                    continue
                link_text = node.link
            elif here in self.implied:
                continue
            else:
                st = self._disk(here)
                if st is None or not stat.S_ISLNK(st.st_mode):
                    continue
                link_text = os.readlink(self.real.joinpath(*here))  # type: ignore[union-attr]
            if here not in self.memo:
                if here in self.busy:
                    raise _Refused(f"member {m.name!r}: the links {'/'.join(here)!r} form a loop")
                self.busy.add(here)
                self.memo[here] = self.resolve(here[:-1], link_text, m, depth + 1)
                self.busy.discard(here)
            got = self.memo[here]
            if got is None:
                return None
            cur = list(got)
        return tuple(cur)

    def _absolute(self, text: str) -> Rel | None:
        """An absolute link already on disk: inside only when it names a path in the target."""
        if self.real is None:
            return None
        norm = os.path.normpath(text)
        try:
            rel = Path(norm).relative_to(self.real)
        except ValueError:
            return None
        return rel.parts


def _through(inner: _Member, link: _Member) -> str:
    if link.kind == "symlink":
        return f"member {inner.name!r} would be written through the link {link.name!r}"
    return (
        f"member {inner.name!r} would be written inside member {link.name!r}, which is a "
        f"{link.kind}, not a folder"
    )


# -- writing: a fresh folder next to the target, moved into place on success ------------------


class _Staging:
    """A fresh folder for the extraction, undone on failure: inside `dest` when it exists
    (same file system as its content), else beside it, creating missing parents."""

    def __init__(self, dest: Path) -> None:
        self.dest = dest
        self.created: list[Path] = []
        if os.path.lexists(dest):
            where = dest
        else:
            where = dest.absolute().parent
            missing = []
            while not os.path.lexists(where):
                missing.append(where)
                where = where.parent
            for p in reversed(missing):
                p.mkdir()
                self.created.append(p)
            where = dest.absolute().parent
        self.tmp = Path(tempfile.mkdtemp(prefix=f".{dest.name}.unpack-", dir=where))
        self.root = self.tmp / "tree"
        self.root.mkdir()  # default permissions (mkdtemp's 0700 stays on the wrapper)

    def commit(self) -> None:
        _move_into_place(self.root, self.dest)
        shutil.rmtree(self.tmp)

    def abort(self) -> None:
        shutil.rmtree(self.tmp, ignore_errors=True)
        for p in reversed(self.created):
            try:
                p.rmdir()
            except OSError:
                break


def _move_into_place(src: Path, dest: Path) -> None:
    if not os.path.lexists(dest):
        os.rename(src, dest)
        return
    for entry in sorted(os.scandir(src), key=lambda e: e.name):
        target = dest / entry.name
        if entry.is_dir(follow_symlinks=False) and target.is_dir() and not target.is_symlink():
            _move_into_place(Path(entry.path), target)
        else:
            os.replace(entry.path, target)


_READ_ERRORS = (tarfile.TarError, zipfile.BadZipFile, EOFError, zlib.error, lzma.LZMAError,
                RuntimeError, NotImplementedError, OSError)  # fmt: skip


def _unpack(src: str, dest: Path, plan: list[_Member], write_one) -> list[Path]:
    staging = _Staging(dest)
    written: list[Path] = []
    current = None
    try:
        for m in plan:
            current = m
            write_one(m, staging.root)
            if m.kind in ("file", "hardlink"):
                written.append(dest.joinpath(*m.rel))
        current = None
        staging.commit()
    except UnsafeArchiveError:
        staging.abort()
        raise
    except _READ_ERRORS as err:
        staging.abort()
        what = f"member {current.name!r}" if current is not None else "moving the result into place"
        if isinstance(err, OSError) and err.errno is not None:  # the file system, not the archive
            raise UnsafeArchiveError(
                f"{src}: {what}: {err}; nothing was unpacked"
                if current is not None
                else f"{src}: {what} failed part-way ({err}); some entries of {dest} may have "
                "been replaced, each one whole"
            ) from err
        raise UnsafeArchiveError(
            f"{src}: {what} could not be unpacked ({type(err).__name__}: {err}); the archive "
            "may be corrupt or truncated; nothing was unpacked"
        ) from err
    except BaseException:
        staging.abort()
        raise
    return written


def _check_count(src: str, n: int, name: str, max_members: int | None) -> None:
    if max_members is not None and n > max_members:
        raise UnsafeArchiveError(
            f"{src}: member {name!r} is member number {n}, over the limit of {max_members} "
            "members; nothing was unpacked. Raise max_members if you trust this archive"
        )


# -- zip ----------------------------------------------------------------------------------------


def _zip_members(src: str, infos: Iterable[zipfile.ZipInfo], max_members: int | None):
    out: list[_Member] = []
    for n, info in enumerate(infos, 1):
        name = info.filename
        _check_count(src, n, name, max_members)
        mode = info.external_attr >> 16
        if stat.S_ISLNK(mode):
            raise UnsafeArchiveError(
                f"{src}: member {name!r} is a symlink; symlinks are not unpacked from zip "
                "archives; refusing the archive (nothing was unpacked)"
            )
        if stat.S_IFMT(mode) and not (stat.S_ISREG(mode) or stat.S_ISDIR(mode)):
            raise UnsafeArchiveError(
                f"{src}: member {name!r} is a special file (mode {oct(mode)}); only regular "
                "files and directories are unpacked (nothing was unpacked)"
            )
        is_dir = name.endswith("/") or stat.S_ISDIR(mode)
        rel = _rel_or_refuse(src, name, is_dir)
        if rel is None:
            continue
        size = 0 if is_dir else info.file_size
        out.append(_Member(name, rel, "dir" if is_dir else "file", size=size, info=info))
    return out


def _rel_or_refuse(src: str, name: str, is_dir: bool) -> Rel | None:
    try:
        return _member_rel(name, is_dir)
    except UnsafeArchiveError as err:  # re-say it with the archive's name
        raise UnsafeArchiveError(f"{src}{err} (nothing was unpacked)") from None


def _extract_zip(archive: Path, dest: Path, limits) -> list[Path]:
    src = str(archive)
    try:
        zf = zipfile.ZipFile(archive)
    except (zipfile.BadZipFile, OSError) as err:
        raise UnsafeArchiveError(f"{src}: cannot read the zip archive ({err})") from err
    with zf:
        plan = _zip_members(src, zf.infolist(), limits[1])
        _plan(src, dest, plan, limits)
        budget = [limits[0]]

        def write_one(m: _Member, root: Path) -> None:
            target = root.joinpath(*m.rel)
            if m.kind == "dir":
                target.mkdir(parents=True, exist_ok=True)
                return
            target.parent.mkdir(parents=True, exist_ok=True)
            flags = os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW | os.O_CLOEXEC
            with zf.open(m.info) as fin, os.fdopen(os.open(target, flags, 0o666), "wb") as fout:
                while chunk := fin.read(_CHUNK):
                    if budget[0] is not None:
                        budget[0] -= len(chunk)
                        if budget[0] < 0:
                            raise UnsafeArchiveError(
                                f"{src}: member {m.name!r} unpacks to more than its declared "
                                f"size, over the limit of {limits[0]} bytes; nothing was unpacked"
                            )
                    fout.write(chunk)

        return _unpack(src, dest, plan, write_one)


# -- tar ----------------------------------------------------------------------------------------


def _tar_member(src: str, ti: tarfile.TarInfo) -> _Member | None:
    name = ti.name
    rel = _rel_or_refuse(src, name, ti.isdir())
    if rel is None:
        return None
    if ti.issym():
        text = ti.linkname
        norm = text.replace("\\", "/")
        if not text or "\x00" in text:
            raise UnsafeArchiveError(
                f"{src}: member {name!r} is a symlink with an empty or NUL-bearing target; "
                "refusing it (nothing was unpacked)"
            )
        if _is_absolute(norm):
            raise UnsafeArchiveError(
                f"{src}: member {name!r} is a symlink to the absolute path {text!r}; refusing "
                "it (nothing was unpacked)"
            )
        return _Member(name, rel, "symlink", link=norm, info=ti)
    if ti.islnk():
        try:
            target = safe_relpath(ti.linkname, source="")
        except UnsafeArchiveError:
            raise UnsafeArchiveError(
                f"{src}: member {name!r} is a hardlink to {ti.linkname!r}, which points "
                "outside the target directory; refusing it (nothing was unpacked)"
            ) from None
        return _Member(name, rel, "hardlink", link=str(target), info=ti)
    if ti.isreg():
        return _Member(name, rel, "file", size=ti.size, info=ti)
    if ti.isdir():
        return _Member(name, rel, "dir", info=ti)
    raise UnsafeArchiveError(
        f"{src}: member {name!r} is a special file (device, FIFO or similar); only files, "
        "directories and inside links are unpacked (nothing was unpacked)"
    )


def _extract_tar(archive: Path, dest: Path, limits) -> list[Path]:
    if not hasattr(tarfile, "data_filter"):  # pragma: no cover - Python < 3.11.4
        raise RuntimeError("lineage.safe_unpack needs Python 3.11.4 or newer (tar data filter)")
    src = str(archive)
    try:
        tf = tarfile.open(archive)  # noqa: SIM115 - closed by the `with tf` below
    except _READ_ERRORS as err:
        raise UnsafeArchiveError(f"{src}: cannot read the tar archive ({err})") from err
    with tf:
        tf.errorlevel = 2  # every extraction problem raises
        plan: list[_Member] = []
        n = 0
        try:
            for ti in tf:
                n += 1
                _check_count(src, n, ti.name, limits[1])
                m = _tar_member(src, ti)
                if m is not None:
                    plan.append(m)
        except UnsafeArchiveError:
            raise
        except _READ_ERRORS as err:
            raise UnsafeArchiveError(
                f"{src}: cannot read the member list after {n} members ({err}); the archive "
                "is corrupt or truncated; nothing was unpacked"
            ) from err
        _plan(src, dest, plan, limits)
        # links last: the data filter checks a link against what is on disk when it is made
        ordered = [m for m in plan if m.kind != "symlink"] + [
            m for m in plan if m.kind == "symlink"
        ]

        def write_one(m: _Member, root: Path) -> None:
            ti = m.info.replace(name="/".join(m.rel), deep=False)  # type: ignore[union-attr]
            if m.kind in ("symlink", "hardlink"):
                ti.linkname = m.link
            try:
                tf.extract(ti, root, filter="data")
            except tarfile.FilterError as err:  # second line of defence
                raise UnsafeArchiveError(
                    f"{src}: member {m.name!r} refused by the tar data filter ({err}); "
                    "nothing was unpacked"
                ) from None

        return _unpack(src, dest, ordered, write_one)
