"""Local side of a bundle: which files it has, their Dataverse names, sizes and checksums."""

from __future__ import annotations

import hashlib
import os
import re
from dataclasses import dataclass
from pathlib import Path, PurePosixPath

from lineage.sizes import human_size

__all__ = ["BundleError", "LocalFile", "digest", "human_size", "scan_bundle"]

# Dataverse rewrites directory labels outside this alphabet and strips leading/trailing
# '/', '.', '-', ' ' (StringUtil.sanitizeFileDirectory); it refuses these characters in names.
_DIR_OK = re.compile(r"^[A-Za-z0-9_ ./-]+$")
_NAME_BAD = re.compile(r'[/\\:*?"<>|;#\x00-\x1f]')
_HASHES = {"MD5": "md5", "SHA-1": "sha1", "SHA-256": "sha256", "SHA-512": "sha512"}


class BundleError(ValueError):
    """A bundle file Dataverse would store under another name, or a link leaving the bundle."""


@dataclass(frozen=True)
class LocalFile:
    rel: str  # POSIX path relative to the bundle: "tables/epochs.parquet"
    path: Path
    size: int
    md5: str

    @property
    def label(self) -> str:
        return PurePosixPath(self.rel).name

    @property
    def directory_label(self) -> str | None:
        parent = str(PurePosixPath(self.rel).parent)
        return None if parent == "." else parent


def digest(path: Path, algorithm: str = "MD5") -> str:
    """Hex digest of a file, `algorithm` as Dataverse names it (MD5, SHA-1, SHA-256, SHA-512)."""
    name = _HASHES.get(algorithm.upper(), algorithm.lower())
    with open(path, "rb") as fh:
        return hashlib.file_digest(fh, name).hexdigest()


def _check_names(rel: PurePosixPath) -> None:
    name, parent = rel.name, str(rel.parent)
    if _NAME_BAD.search(name) or name != name.strip():
        raise BundleError(
            f"bundle file {str(rel)!r}: Dataverse does not accept the file name {name!r} "
            '(no / \\ : * ? " < > | ; # or leading/trailing spaces); rename it before publishing'
        )
    if parent != ".":
        bad = not _DIR_OK.match(parent) or any(
            part != part.strip(".- ") for part in parent.split("/")
        )
        if bad:
            raise BundleError(
                f"bundle file {str(rel)!r}: Dataverse would rewrite the folder {parent!r} "
                "(allowed: letters, digits, '_', '-', '.', ' '; no part may start or end with "
                "'.', '-' or a space); rename it before publishing"
            )


def scan_bundle(bundle_dir: Path, *, exclude: tuple[Path, ...] = ()) -> list[LocalFile]:
    """All regular files under `bundle_dir` (sorted), with MD5s; skips `exclude` and temp files.

    A symlink is followed only when it points to a file inside the bundle; anything else
    (a link out of the bundle, a linked directory, a socket) is an error naming it, so that
    publishing never sends files the user did not mean to put in the bundle.
    """
    root = Path(bundle_dir)
    if not root.is_dir():
        raise BundleError(f"bundle directory {root} does not exist or is not a directory")
    real_root = root.resolve()
    skip = {Path(p).resolve() for p in exclude}
    out: list[LocalFile] = []
    for dirpath, dirnames, filenames in os.walk(root, followlinks=False):
        here = Path(dirpath)
        for d in list(dirnames):
            if (here / d).is_symlink():
                raise BundleError(
                    f"bundle entry {here / d} is a symlink to a directory; links are not "
                    "followed: replace it with a real directory or remove it"
                )
        dirnames.sort()
        for fname in sorted(filenames):
            path = here / fname
            if fname.startswith(".") and fname.endswith(".tmp"):
                continue  # an interrupted atomic write (lineage.atomic)
            if path.resolve() in skip or any(
                fname.startswith(f".{p.name}.") for p in skip if p.parent == path.parent.resolve()
            ):
                continue
            if path.is_symlink():
                target = path.resolve()
                if real_root not in target.parents or not target.is_file():
                    raise BundleError(
                        f"bundle entry {path} is a symlink to {target}, outside the bundle (or "
                        "not a file); copy the file into the bundle or remove the link"
                    )
            elif not path.is_file():
                raise BundleError(f"bundle entry {path} is not a regular file; remove it")
            rel = PurePosixPath(*path.relative_to(root).parts)
            _check_names(rel)
            out.append(LocalFile(str(rel), path, path.stat().st_size, digest(path)))
    return out
