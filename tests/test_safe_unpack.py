"""lineage.safe_unpack: archives from a commons cannot write outside the target directory."""

from __future__ import annotations

import io
import os
import stat
import tarfile
import zipfile
from pathlib import Path

import pytest

from lineage.safe_unpack import UnsafeArchiveError, safe_extract, safe_relpath


def make_zip(path: Path, members: dict[str, bytes], symlinks: dict[str, str] | None = None) -> Path:
    with zipfile.ZipFile(path, "w") as zf:
        for name, data in members.items():
            zf.writestr(name, data)
        for name, target in (symlinks or {}).items():
            info = zipfile.ZipInfo(name)
            info.external_attr = (stat.S_IFLNK | 0o777) << 16
            zf.writestr(info, target)
    return path


def tar_add(tf: tarfile.TarFile, name: str, data: bytes = b"x", **kw: object) -> None:
    info = tarfile.TarInfo(name)
    for k, v in kw.items():
        setattr(info, k, v)
    if info.type in (tarfile.REGTYPE, tarfile.AREGTYPE):
        info.size = len(data)
        tf.addfile(info, io.BytesIO(data))
    else:
        tf.addfile(info)


def test_zip_round_trip_nested(tmp_path: Path) -> None:
    members = {
        "a.json": b'{"x": 1}',
        "tables/epochs.parquet": os.urandom(3000),
        "d/e/f.bin": b"\r\n\x00",
    }
    archive = make_zip(tmp_path / "ok.zip", members)
    written = safe_extract(archive, tmp_path / "out")
    assert sorted(p.relative_to(tmp_path / "out").as_posix() for p in written) == sorted(members)
    for name, data in members.items():
        assert (tmp_path / "out" / name).read_bytes() == data


def test_tar_gz_round_trip_with_inside_symlink(tmp_path: Path) -> None:
    archive = tmp_path / "ok.tar.gz"
    with tarfile.open(archive, "w:gz") as tf:
        tar_add(tf, "run/epochs.csv", b"a,b\n1,2\n")
        tar_add(tf, "run/latest.csv", type=tarfile.SYMTYPE, linkname="epochs.csv")
    safe_extract(archive, tmp_path / "out")
    link = tmp_path / "out/run/latest.csv"
    assert link.is_symlink() and link.read_bytes() == b"a,b\n1,2\n"


@pytest.mark.parametrize(
    ("name", "why"),
    [
        ("../evil.txt", "'..'"),
        ("a/../../evil.txt", "'..'"),
        ("/tmp/evil.txt", "absolute path"),
        ("C:\\evil.txt", "absolute path"),
        ("..\\evil.txt", "'..'"),
    ],
)
def test_zip_traversal_refused_and_nothing_written(tmp_path: Path, name: str, why: str) -> None:
    archive = make_zip(tmp_path / "bad.zip", {"good.txt": b"ok", name: b"evil"})
    with pytest.raises(UnsafeArchiveError) as err:
        safe_extract(archive, tmp_path / "out")
    assert repr(name) in str(err.value) and why in str(err.value)
    assert "bad.zip" in str(err.value)
    assert not (tmp_path / "out").exists()  # checked before anything was written
    assert not (tmp_path / "evil.txt").exists()


def test_zip_symlink_member_refused(tmp_path: Path) -> None:
    archive = make_zip(tmp_path / "link.zip", {"a.txt": b"a"}, symlinks={"passwd": "/etc/passwd"})
    with pytest.raises(UnsafeArchiveError, match=r"'passwd' is a symlink"):
        safe_extract(archive, tmp_path / "out")
    assert not (tmp_path / "out").exists()


def test_zip_through_existing_symlink_in_target_refused(tmp_path: Path) -> None:
    outside = tmp_path / "outside"
    outside.mkdir()
    dest = tmp_path / "out"
    dest.mkdir()
    (dest / "sub").symlink_to(outside)
    archive = make_zip(tmp_path / "a.zip", {"sub/x.txt": b"x"})
    with pytest.raises(UnsafeArchiveError, match="outside"):
        safe_extract(archive, dest)
    assert not (outside / "x.txt").exists()


@pytest.mark.parametrize(
    ("kw", "name", "match"),
    [
        ({}, "../evil", r"'\.\./evil' contains '\.\.'"),
        ({}, "/etc/evil", "absolute path"),
        (
            {"type": tarfile.SYMTYPE, "linkname": "/etc/passwd"},
            "passwd",
            "absolute path '/etc/passwd'",
        ),
        ({"type": tarfile.SYMTYPE, "linkname": "../../x"}, "a/up", "points outside"),
        ({"type": tarfile.LNKTYPE, "linkname": "../outside"}, "hard", "hardlink to '../outside'"),
        ({"type": tarfile.FIFOTYPE}, "fifo", "special file"),
        ({"type": tarfile.CHRTYPE}, "dev", "special file"),
    ],
)
def test_tar_unsafe_members_refused(tmp_path: Path, kw: dict, name: str, match: str) -> None:
    archive = tmp_path / "bad.tar"
    with tarfile.open(archive, "w") as tf:
        tar_add(tf, "fine.txt", b"fine")
        tar_add(tf, name, b"evil", **kw)
    with pytest.raises(UnsafeArchiveError, match=match) as err:
        safe_extract(archive, tmp_path / "out")
    assert "bad.tar" in str(err.value)
    assert not (tmp_path / "out").exists()


def test_tar_write_through_inside_link_refused(tmp_path: Path) -> None:
    """A link that is harmless alone must not become a path for a later member."""
    archive = tmp_path / "chain.tar"
    with tarfile.open(archive, "w") as tf:
        tar_add(tf, "sub/keep.txt", b"k")
        tar_add(tf, "link", type=tarfile.SYMTYPE, linkname="sub")
        tar_add(tf, "link/x.txt", b"x")
    with pytest.raises(UnsafeArchiveError, match="written through the link 'link'"):
        safe_extract(archive, tmp_path / "out")


def test_size_limit_and_not_an_archive(tmp_path: Path) -> None:
    archive = make_zip(tmp_path / "big.zip", {"zeros": bytes(10_000)})
    with pytest.raises(UnsafeArchiveError, match="over the limit of 1000 bytes"):
        safe_extract(archive, tmp_path / "out", max_total_bytes=1000)
    junk = tmp_path / "junk.zip"
    junk.write_bytes(b"not an archive at all")
    with pytest.raises(UnsafeArchiveError, match="not a zip or tar"):
        safe_extract(junk, tmp_path / "out")


def test_safe_relpath_rules() -> None:
    assert str(safe_relpath("a/./b//c.txt")) == "a/b/c.txt"
    assert str(safe_relpath("a\\b.txt")) == "a/b.txt"
    for bad in ("", "/", "..", "x/../..", "/x", "D:x", "a\x00b"):
        with pytest.raises(UnsafeArchiveError):
            safe_relpath(bad)
