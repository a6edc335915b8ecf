"""lineage.safe_unpack: archives from a commons cannot write outside the target directory."""

from __future__ import annotations

import io
import os
import stat
import tarfile
import tempfile
import warnings
import zipfile
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

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


# -- the attacks named in the reliability issue -------------------------------------------------


def tree_of(root: Path) -> dict[str, tuple]:
    """Everything under `root` (links not followed): path -> kind and content."""
    out: dict[str, tuple] = {}
    if not os.path.lexists(root):
        return out
    for dirpath, dirnames, filenames in os.walk(root):
        for name in dirnames + filenames:
            p = Path(dirpath, name)
            st = p.lstat()
            rel = p.relative_to(root).as_posix()
            if stat.S_ISLNK(st.st_mode):
                out[rel] = ("link", os.readlink(p))
            elif stat.S_ISREG(st.st_mode):
                out[rel] = ("file", p.read_bytes(), st.st_mode)
            else:
                out[rel] = ("other", st.st_mode)
    return out


@pytest.mark.parametrize("order", [(0, 1, 2), (2, 1, 0), (1, 0, 2), (0, 2, 1)])
def test_tar_link_chain_escaping_refused_in_any_order(tmp_path: Path, order) -> None:
    """c -> a/.., a -> b/.., b -> . : each text alone stays inside; together c is outside."""
    links = [("c", "a/.."), ("a", "b/.."), ("b", ".")]
    archive = tmp_path / "chain.tar"
    with tarfile.open(archive, "w") as tf:
        tar_add(tf, "fine.txt", b"fine")
        for i in order:
            tar_add(tf, links[i][0], type=tarfile.SYMTYPE, linkname=links[i][1])
    with pytest.raises(UnsafeArchiveError, match="points outside the target") as err:
        safe_extract(archive, tmp_path / "out")
    assert "chain.tar" in str(err.value) and "member '" in str(err.value)
    assert sorted(os.listdir(tmp_path)) == ["chain.tar"]


@pytest.mark.parametrize("reverse", [False, True])
def test_tar_link_chain_inside_accepted_in_any_order(tmp_path: Path, reverse: bool) -> None:
    links = [("l2", "l1/../e/f.txt"), ("l1", "d/e"), ("d/e", "../g")]
    archive = tmp_path / "ok.tar"
    with tarfile.open(archive, "w") as tf:
        tar_add(tf, "g/f.txt", b"in")
        tar_add(tf, "e/f.txt", b"other")
        for name, text in reversed(links) if reverse else links:
            tar_add(tf, name, type=tarfile.SYMTYPE, linkname=text)
    safe_extract(archive, tmp_path / "out")
    # l1 -> d/e -> d/../g = g; l1/.. is the target; l2 = e/f.txt
    assert (tmp_path / "out/l2").read_bytes() == b"other"
    assert (tmp_path / "out/l1/f.txt").read_bytes() == b"in"


def test_tar_link_loop_refused(tmp_path: Path) -> None:
    archive = tmp_path / "loop.tar"
    with tarfile.open(archive, "w") as tf:
        tar_add(tf, "x", type=tarfile.SYMTYPE, linkname="y/z")
        tar_add(tf, "y", type=tarfile.SYMTYPE, linkname="x/..")
    with pytest.raises(UnsafeArchiveError, match="loop.tar: member 'x'.*loop"):
        safe_extract(archive, tmp_path / "out")
    assert not (tmp_path / "out").exists()


def test_refused_zip_creates_no_folders_outside(tmp_path: Path) -> None:
    """The old code made sub/new/deep (through a link out of the target) before refusing."""
    outside = tmp_path / "outside"
    outside.mkdir()
    dest = tmp_path / "out"
    dest.mkdir()
    (dest / "keep.txt").write_bytes(b"keep")
    (dest / "sub").symlink_to(outside)
    archive = make_zip(tmp_path / "a.zip", {"first.txt": b"1", "sub/new/deep/x.txt": b"x"})
    before = tree_of(tmp_path)
    with pytest.raises(UnsafeArchiveError, match=r"a.zip: member 'sub/new/deep/x.txt'.*outside"):
        safe_extract(archive, dest)
    assert tree_of(tmp_path) == before  # nothing outside, nothing in the target, no leftovers
    assert not (outside / "new").exists()


def test_refused_tar_leaves_no_member_behind(tmp_path: Path) -> None:
    """A tar refused while extracting (after other members were written) leaves nothing.

    Python 3.11's data filter checks a link against the disk as it is when the link is made:
    `l -> a/../..` made before `a -> x/y` looks like it leaves the target, though once both
    exist it names the target itself. The plan accepts it; the filter refuses it mid-way.
    """
    archive = tmp_path / "late.tar"
    with tarfile.open(archive, "w") as tf:
        tar_add(tf, "first.txt", b"first")
        tar_add(tf, "x/y/z.txt", b"z")
        tar_add(tf, "l", type=tarfile.SYMTYPE, linkname="a/../..")
        tar_add(tf, "a", type=tarfile.SYMTYPE, linkname="x/y")
    dest = tmp_path / "deep/er/out"
    with pytest.raises(UnsafeArchiveError, match=r"late.tar: member 'l' refused by the tar data"):
        safe_extract(archive, dest)
    assert sorted(os.listdir(tmp_path)) == ["late.tar"]  # the parents it made are gone too
    dest.mkdir(parents=True)
    (dest / "first.txt").write_bytes(b"old")
    before = tree_of(tmp_path)
    with pytest.raises(UnsafeArchiveError, match="data filter"):
        safe_extract(archive, dest)
    assert tree_of(tmp_path) == before


@pytest.mark.parametrize("kind", ["tar", "zip"])
def test_corrupt_member_leaves_nothing(tmp_path: Path, kind: str) -> None:
    if kind == "tar":
        archive = tmp_path / "cut.tar"
        with tarfile.open(archive, "w") as tf:
            tar_add(tf, "first.txt", b"first")
            tar_add(tf, "big.bin", os.urandom(50_000))
        archive.write_bytes(archive.read_bytes()[:20_000])  # cut inside big.bin
        match = r"cut.tar: cannot read the member list .* truncated"
    else:
        archive = make_zip(tmp_path / "bad.zip", {"first.txt": b"first", "second.txt": b"s" * 99})
        data = archive.read_bytes()
        i = data.index(b"s" * 99)
        archive.write_bytes(data[:i] + b"t" + data[i + 1 :])  # stored data no longer fits its CRC
        match = r"bad.zip: member 'second.txt' could not be unpacked \(BadZipFile: Bad CRC"
    with pytest.raises(UnsafeArchiveError, match=match):
        safe_extract(archive, tmp_path / "new/out")
    assert sorted(os.listdir(tmp_path)) == [archive.name]


def test_tar_member_through_its_own_earlier_link_refused(tmp_path: Path) -> None:
    archive = tmp_path / "dup.tar"
    with tarfile.open(archive, "w") as tf:
        tar_add(tf, "a", type=tarfile.SYMTYPE, linkname=".")
        tar_add(tf, "a", b"again")
    with pytest.raises(UnsafeArchiveError, match="'a' .* are both 'a'; the archive is ambiguous"):
        safe_extract(archive, tmp_path / "out")
    with pytest.raises(UnsafeArchiveError, match="written through the link 'l'"):
        with tarfile.open(archive, "w") as tf:
            tar_add(tf, "x/y", b"y")
            tar_add(tf, "l/y", b"y")
            tar_add(tf, "l", type=tarfile.SYMTYPE, linkname="x")  # the link comes last
        safe_extract(archive, tmp_path / "out")
    assert not (tmp_path / "out").exists()


def test_existing_link_in_target_is_replaced_not_written_through(tmp_path: Path) -> None:
    secret = tmp_path / "secret.txt"
    secret.write_bytes(b"secret")
    dest = tmp_path / "out"
    dest.mkdir()
    (dest / "f.txt").symlink_to(secret)
    (dest / "other.txt").write_bytes(b"kept")
    archive = make_zip(tmp_path / "a.zip", {"f.txt": b"new", "d/g.txt": b"g"})
    written = safe_extract(archive, dest)
    assert secret.read_bytes() == b"secret"
    assert not (dest / "f.txt").is_symlink() and (dest / "f.txt").read_bytes() == b"new"
    assert (dest / "other.txt").read_bytes() == b"kept"  # merged, not replaced
    assert sorted(p.name for p in written) == ["f.txt", "g.txt"]
    assert [p.name for p in tmp_path.iterdir() if p.name.startswith(".")] == []


def test_kind_conflicts_with_target_refused(tmp_path: Path) -> None:
    dest = tmp_path / "out"
    (dest / "d").mkdir(parents=True)
    archive = make_zip(tmp_path / "a.zip", {"d": b"file over a folder"})
    with pytest.raises(UnsafeArchiveError, match="would replace the folder 'd'"):
        safe_extract(archive, dest)
    archive = make_zip(tmp_path / "b.zip", {"d/x/y.txt": b"", "e": b"", "e/f": b""})
    with pytest.raises(UnsafeArchiveError, match="b.zip: member 'e/f' would be written inside"):
        safe_extract(archive, dest)
    assert tree_of(dest) == {"d": ("other", (dest / "d").lstat().st_mode)}


def test_tar_data_filter_applies(tmp_path: Path) -> None:
    archive = tmp_path / "modes.tar"
    with tarfile.open(archive, "w") as tf:
        tar_add(tf, "./", type=tarfile.DIRTYPE)  # `tar -C dir -c .` writes this; skipped
        tar_add(tf, "./suid", b"x", mode=0o4777)
        tar_add(tf, "plain", b"p")
        tar_add(tf, "hard", type=tarfile.LNKTYPE, linkname="./plain")
    safe_extract(archive, tmp_path / "out")
    mode = (tmp_path / "out/suid").stat().st_mode
    assert stat.S_IMODE(mode) == 0o755  # no setuid, no group/other write
    assert (tmp_path / "out/hard").stat().st_ino == (tmp_path / "out/plain").stat().st_ino


def test_hardlink_to_a_member_not_before_it_refused(tmp_path: Path) -> None:
    archive = tmp_path / "h.tar"
    with tarfile.open(archive, "w") as tf:
        tar_add(tf, "hard", type=tarfile.LNKTYPE, linkname="later")
        tar_add(tf, "later", b"x")
    with pytest.raises(UnsafeArchiveError, match="not a regular file listed before it"):
        safe_extract(archive, tmp_path / "out")


def test_member_count_limit(tmp_path: Path) -> None:
    archive = make_zip(tmp_path / "many.zip", {f"f{i}": b"" for i in range(5)})
    with pytest.raises(UnsafeArchiveError, match="member 'f3' is member number 4, over the limit"):
        safe_extract(archive, tmp_path / "out", max_members=3)
    assert not (tmp_path / "out").exists()
    assert len(safe_extract(archive, tmp_path / "out", max_members=5)) == 5


# -- property: whatever the archive, nothing outside the target changes ------------------------

# Names are mostly plain, so that most archives reach the link checks; one in twenty is hostile.
CLEAN = st.lists(st.sampled_from(["a", "b", "c", "d", "e"]), min_size=1, max_size=2).map("/".join)
HOSTILE = st.builds(
    lambda pre, parts: pre + "/".join(parts),
    st.sampled_from(["", "/", "C:\\", "./"]),
    st.lists(st.sampled_from(["a", "b", "..", "", "a\\..", "."]), min_size=1, max_size=3),
)
UPWARD = st.lists(st.sampled_from(["a", "b", "c", "d", "..", "."]), min_size=1, max_size=4)
ODD_LINK = st.sampled_from(["", "/etc", "@OUT", "@OUT/secret.txt", "../outside/secret.txt"])
TAR_KINDS = ["file"] * 3 + ["dir"] * 2 + ["sym"] * 4 + ["hard"]
ZIP_KINDS = ["file"] * 3 + ["dir"] * 2  # zip symlinks come in as "special" (all refused)
DEST_STATES = st.sampled_from(["absent", "empty", "links"])


def rare(draw) -> bool:
    return draw(st.integers(0, 29)) == 13  # not an end: Hypothesis favours those


@st.composite
def members(draw, kinds: list[str]) -> list[tuple[str, str, str, bytes]]:
    """Up to 8 members: files, folders, links (chains and loops, up and out), duplicates."""
    spec: list[tuple[str, str, str, bytes]] = []
    for _ in range(draw(st.integers(0, 8))):
        kind = "special" if rare(draw) else draw(st.sampled_from(kinds))
        name = draw(HOSTILE if rare(draw) else CLEAN)
        link = ""
        if kind == "sym":
            link = draw(ODD_LINK if rare(draw) else UPWARD.map("/".join))
        elif kind == "hard":  # mostly an earlier member (as tar needs), sometimes not
            earlier = [n for _, n, _, _ in spec]
            link = draw(st.sampled_from(earlier) if earlier and not rare(draw) else HOSTILE)
        spec.append((kind, name, link, draw(st.binary(max_size=8))))
    return spec


def build_tar(path: Path, spec, outside: Path) -> None:
    types = {"file": tarfile.REGTYPE, "dir": tarfile.DIRTYPE, "sym": tarfile.SYMTYPE,
             "hard": tarfile.LNKTYPE}  # fmt: skip
    specials = [tarfile.FIFOTYPE, tarfile.CHRTYPE, tarfile.BLKTYPE]
    with tarfile.open(path, "w") as tf:
        for kind, name, link, data in spec:
            link = link.replace("@OUT", str(outside))
            if kind == "special":
                tar_add(tf, name, type=specials[len(data) % 3], devmajor=1, devminor=3)
            elif kind in ("sym", "hard"):
                tar_add(tf, name, type=types[kind], linkname=link)
            else:
                tar_add(tf, name, data, type=types[kind])


def build_zip(path: Path, spec, outside: Path) -> None:
    modes = {"file": stat.S_IFREG | 0o644, "dir": stat.S_IFDIR | 0o755,
             "special": stat.S_IFIFO | 0o644, "link": stat.S_IFLNK | 0o777}  # fmt: skip
    with warnings.catch_warnings(), zipfile.ZipFile(path, "w") as zf:
        warnings.simplefilter("ignore")  # duplicate names are the point
        for kind, name, _link, data in spec:
            if kind == "special" and len(data) % 2:  # a symlink out of the target
                kind, data = "link", str(outside).encode()
            info = zipfile.ZipInfo(name + ("/" if kind == "dir" else ""))
            info.external_attr = modes[kind] << 16
            zf.writestr(info, data)


def check_nothing_escapes(build, spec, dest_state: str) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        base = Path(tmp)
        outside = base / "outside"
        outside.mkdir()
        (outside / "secret.txt").write_bytes(b"secret")
        dest = base / "work/out"
        dest.parent.mkdir()
        if dest_state != "absent":
            dest.mkdir()
        if dest_state == "links":
            (dest / "a").symlink_to(outside)
            (dest / "c").symlink_to("../../outside/secret.txt")
            (dest / "d").mkdir()
            (dest / "d/kept.txt").write_bytes(b"kept")
        archive = base / "archive.bin"
        build(archive, spec, outside)
        around = {k: v for k, v in tree_of(base).items() if not k.startswith("work/out")}
        inside = tree_of(dest)
        try:
            written = safe_extract(archive, dest)
        except UnsafeArchiveError as err:
            assert str(archive) in str(err)
            assert tree_of(dest) == inside  # refused: the target is as it was
            written = []
        after = {k: v for k, v in tree_of(base).items() if not k.startswith("work/out")}
        assert after == around  # nothing created, changed or left behind outside the target
        real = os.path.realpath(dest)
        for rel, what in tree_of(dest).items():
            assert what[0] in ("file", "link") or stat.S_ISDIR(what[1]), rel  # no FIFOs, devices
            if what[0] == "link" and inside.get(rel) != what:  # every new link stays inside
                assert os.path.commonpath([os.path.realpath(dest / rel), real]) == real, rel
        for p in written:
            assert p.is_file() and os.path.commonpath([os.path.realpath(p), real]) == real


# modest counts keep the suite fast (about a second of CPU each); database=None: no .hypothesis/
@settings(max_examples=200, deadline=None, database=None)
@given(spec=members(TAR_KINDS), dest_state=DEST_STATES)
def test_property_tar_nothing_escapes(spec, dest_state) -> None:
    check_nothing_escapes(build_tar, spec, dest_state)


@settings(max_examples=100, deadline=None, database=None)
@given(spec=members(ZIP_KINDS), dest_state=DEST_STATES)
def test_property_zip_nothing_escapes(spec, dest_state) -> None:
    check_nothing_escapes(build_zip, spec, dest_state)
