"""Load diffraction datasets into arrays for training: image folders and ``.npz`` files.

Image folders follow A4NN's layout, ``ROOT/images/{trainset,testset}/*_<conf>_ptm<id>.tiff``
(``ROOT/{trainset,testset}`` is accepted too): our simulator's output and the original A4NN
release (EF2 conformations ``1n0u`` and ``1n0vc``). The conformation token is the field
right before ``_ptm<id>``; tokens are compared whole, so ``1n0vc`` is never mistaken for
``1n0v`` or ``1n0u``.

``.npz`` files hold ``x_train``, ``y_train``, ``x_test``, ``y_test``; images as (N, H, W) or
(N, 1, H, W), labels as integers; optional ``class_names`` (strings, index = label).

:func:`load_dataset` is the one entry point the training loop calls, with a
:class:`DataSpec` that says where the data is, how to split off validation data, how to
normalize and whether to resize.
"""

from __future__ import annotations

import contextlib
import json
import logging
import math
import re
import threading
import zipfile
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal

import numpy as np
import tifffile

A4NN_LABELS: dict[str, int] = {"1n0u": 0, "1n0vc": 1}
"""Label map of the original A4NN release (EF2, PDB 1n0u and 1n0v)."""

NPZ_KEYS = ("x_train", "y_train", "x_test", "y_test")
SPLITS = ("trainset", "testset")
IMAGE_SUFFIXES = (".tiff", ".tif")
_NAME = re.compile(r"(?:^|_)(?P<conf>[^_]+)_ptm(?P<id>\d+)\.tiff?$", re.IGNORECASE)


class DataError(ValueError):
    """A dataset that cannot be loaded; the message names the file and what is wrong."""


@dataclass
class DataSpec:
    """What :func:`load_dataset` loads and how.

    - ``format``: ``folder`` (A4NN image layout) or ``npz``.
    - ``path``: the dataset root folder, or the ``.npz`` file.
    - ``label_map``: conformation token -> label; None infers it (``dataset.json`` of our
      simulator, the A4NN release's ``1n0u``/``1n0vc``, else sorted tokens). For ``npz``
      it is unused (labels are stored).
    - ``validation``: ``testset`` uses the test split as validation data (as A4NN does);
      ``split`` holds out ``val_fraction`` of the training split, stratified by class and
      shuffled with ``seed``.
    - ``normalization``: ``none``; ``per_image`` (each image to zero mean, unit std);
      ``log1p`` (log(1 + counts)); ``dataset`` (the training set's mean and std).
    - ``resize``: None, or S to resize images to S×S (area averaging when shrinking,
      bilinear when enlarging), applied before normalization.
    """

    format: Literal["folder", "npz"] = "folder"
    path: Path = Path("data/xfel")
    label_map: dict[str, int] | None = None
    validation: Literal["testset", "split"] = "testset"
    val_fraction: float = 0.2
    seed: int = 0
    normalization: Literal["none", "per_image", "log1p", "dataset"] = "none"
    resize: int | None = None


@dataclass
class DatasetArrays:
    """Training and validation arrays: images float32 (N, 1, H, W), labels int64 (N,).

    ``names`` are the class names by label (``names[k]`` is the token of label k);
    ``train_files``/``val_files`` the source of each row (file names, or ``npz`` keys)."""

    x_train: np.ndarray
    y_train: np.ndarray
    x_val: np.ndarray
    y_val: np.ndarray
    names: list[str]
    train_files: list[str] = field(default_factory=list)
    val_files: list[str] = field(default_factory=list)

    @property
    def num_classes(self) -> int:
        return len(self.names)

    @property
    def input_shape(self) -> tuple[int, int, int]:
        return tuple(self.x_train.shape[1:])  # type: ignore[return-value]


# ------------------------------------------------------------------ image folders


def conformation_of(file_name: str) -> str:
    """The conformation token of ``…_<conf>_ptm<id>.tiff``, or DataError."""
    m = _NAME.search(Path(file_name).name)
    if not m:
        raise DataError(
            f"image file name {file_name!r} does not follow '<prefix>_<conformation>_ptm<id>"
            ".tiff'; rename it or remove it from the folder"
        )
    return m.group("conf")


def _split_dir(root: Path, split: str) -> Path:
    if split not in SPLITS:
        raise DataError(f"split must be one of {SPLITS}, got {split!r}")
    for cand in (root / "images" / split, root / split):
        if cand.is_dir():
            return cand
    raise DataError(
        f"dataset folder {root} has no {split} folder (looked for {root / 'images' / split} "
        f"and {root / split}); generate data with 'a4nn data xfel --out {root}'"
    )


def _image_files(folder: Path) -> list[Path]:
    return sorted(p for p in folder.iterdir() if p.is_file() and p.suffix.lower() in IMAGE_SUFFIXES)


def infer_label_map(root: Path) -> dict[str, int]:
    """Label map of an image-folder dataset without an explicit one.

    ``dataset.json`` ``labels`` (our simulator) first; then, if every token is ``1n0u``
    or ``1n0vc``, the A4NN release's map; else tokens in sorted order."""
    root = Path(root)
    meta_path = root / "dataset.json"
    if meta_path.is_file():
        try:
            labels = json.loads(meta_path.read_text())["labels"]
            return {str(k): int(v) for k, v in labels.items()}
        except (ValueError, KeyError, TypeError, AttributeError) as exc:
            raise DataError(
                f"{meta_path} is not a valid dataset.json (needs a 'labels' object mapping "
                f"conformation tokens to integers): {exc}"
            ) from exc
    tokens: set[str] = set()
    for split in SPLITS:
        try:
            folder = _split_dir(root, split)
        except DataError:
            continue
        tokens |= {conformation_of(p.name) for p in _image_files(folder)}
    if not tokens:
        raise DataError(f"dataset folder {root} holds no .tiff images in trainset/testset")
    if tokens <= set(A4NN_LABELS):
        return dict(A4NN_LABELS)
    return {tok: k for k, tok in enumerate(sorted(tokens))}


class _WhileReading(logging.Filter):
    """Drops tifffile's log records in the threads that are inside `_read_image`.

    tifffile logs its own warning for a damaged file ("invalid offset to first page")
    and then returns nothing or raises; `_read_image` says what is wrong with the file
    in its `DataError`, so the warning would only be a second, rawer line on the console.
    Other threads' records (another library reading TIFFs) pass."""

    def __init__(self) -> None:
        super().__init__()
        self.readers: set[int] = set()
        self.lock = threading.Lock()

    def filter(self, record: logging.LogRecord) -> bool:
        return record.thread not in self.readers

    @contextlib.contextmanager
    def reading(self) -> Iterator[None]:
        me = threading.get_ident()
        with self.lock:
            self.readers.add(me)
        try:
            yield
        finally:
            with self.lock:
                self.readers.discard(me)


_QUIET_TIFFFILE = _WhileReading()
logging.getLogger("tifffile").addFilter(_QUIET_TIFFFILE)


def _read_image(path: Path) -> np.ndarray:
    try:
        with _QUIET_TIFFFILE.reading():
            image = tifffile.imread(path)
    except Exception as exc:  # tifffile raises several types for corrupt files
        raise DataError(f"image {path} cannot be read as TIFF: {exc}") from exc
    image = np.asarray(image)
    if image.size == 0:
        raise DataError(
            f"image {path} cannot be read as TIFF: no image data (corrupt or truncated file; "
            "regenerate or remove it)"
        )
    if image.ndim == 3 and image.shape[0] == 1:
        image = image[0]
    if image.ndim != 2:
        what = "an RGB/multi-channel image" if image.ndim == 3 else f"{image.ndim}-D"
        raise DataError(
            f"image {path} has shape {image.shape} ({what}); expected one 2-D "
            "single-channel diffraction pattern per file"
        )
    if not np.issubdtype(image.dtype, np.number) or np.iscomplexobj(image):
        raise DataError(f"image {path} has non-real dtype {image.dtype}")
    image = image.astype(np.float32, copy=False)
    if not np.isfinite(image).all():
        raise DataError(f"image {path} contains NaN or infinite values")
    return image


def load_image_folder(
    root: Path, split: str, label_map: dict[str, int] | None = None
) -> tuple[np.ndarray, np.ndarray, list[str]]:
    """Read ``root/images/<split>/*.tiff``: images float32 (N, 1, H, W), labels int64
    (N,), file names (sorted). All images must have one 2-D shape."""
    root = Path(root)
    folder = _split_dir(root, split)
    files = _image_files(folder)
    if not files:
        raise DataError(f"image folder {folder} holds no .tiff/.tif images")
    label_map = infer_label_map(root) if label_map is None else dict(label_map)
    labels = np.empty(len(files), dtype=np.int64)
    for i, p in enumerate(files):
        tok = conformation_of(p.name)
        if tok not in label_map:
            raise DataError(
                f"image {p} has conformation {tok!r}, which the label map "
                f"{label_map} does not name; add it to the label map"
            )
        labels[i] = label_map[tok]
    first = _read_image(files[0])
    images = np.empty((len(files), 1, *first.shape), dtype=np.float32)
    images[0, 0] = first
    for i, p in enumerate(files[1:], start=1):
        image = _read_image(p)
        if image.shape != first.shape:
            raise DataError(
                f"image {p} is {image.shape[0]}x{image.shape[1]} but {files[0].name} is "
                f"{first.shape[0]}x{first.shape[1]}; all images must have the same size"
            )
        images[i, 0] = image
    return images, labels, [p.name for p in files]


# ------------------------------------------------------------------ npz


def load_npz(path: Path) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Read ``x_train, y_train, x_test, y_test`` from ``path`` (see module docstring):
    images float32 (N, 1, H, W), labels int64."""
    path = Path(path)
    if not path.is_file():
        raise DataError(f"npz file {path} does not exist")
    try:
        with np.load(path, allow_pickle=False) as data:
            missing = [k for k in NPZ_KEYS if k not in data.files]
            if missing:
                raise DataError(
                    f"npz file {path} lacks key(s) {missing}; it has {sorted(data.files)} "
                    f"and needs {list(NPZ_KEYS)}"
                )
            arrays = {k: data[k] for k in NPZ_KEYS}
    except DataError:
        raise
    except (OSError, ValueError, zipfile.BadZipFile, EOFError) as exc:
        raise DataError(f"npz file {path} cannot be read: {exc}") from exc
    out = []
    for split in ("train", "test"):
        x, y = arrays[f"x_{split}"], arrays[f"y_{split}"]
        if x.ndim == 3:
            x = x[:, None]
        if x.ndim != 4 or x.shape[1] != 1:
            raise DataError(
                f"npz file {path}: x_{split} has shape {x.shape}; expected (N, H, W) or "
                "(N, 1, H, W) single-channel images"
            )
        if not np.issubdtype(x.dtype, np.number) or not np.isfinite(x).all():
            raise DataError(f"npz file {path}: x_{split} must hold finite numbers")
        if y.ndim != 1 or y.shape[0] != x.shape[0]:
            raise DataError(
                f"npz file {path}: y_{split} has shape {y.shape}; expected ({x.shape[0]},) "
                f"to match x_{split}"
            )
        if not np.issubdtype(y.dtype, np.integer) or (y.size and y.min() < 0):
            raise DataError(
                f"npz file {path}: y_{split} must hold non-negative integer labels, "
                f"got dtype {y.dtype}"
            )
        out += [x.astype(np.float32), y.astype(np.int64)]
    if out[0].shape[2:] != out[2].shape[2:]:
        raise DataError(
            f"npz file {path}: x_train images are {out[0].shape[2:]} but x_test images "
            f"are {out[2].shape[2:]}"
        )
    return out[0], out[1], out[2], out[3]


def _npz_names(path: Path, labels: np.ndarray) -> list[str]:
    with np.load(path, allow_pickle=False) as data:
        if "class_names" in data.files:
            return [str(n) for n in data["class_names"]]
    return [str(k) for k in range(int(labels.max()) + 1 if labels.size else 0)]


# ------------------------------------------------------------------ transforms


def resize_images(x: np.ndarray, size: int, chunk: int = 1024) -> np.ndarray:
    """Resize (N, 1, H, W) images to (N, 1, size, size): area averaging when shrinking
    (keeps mean photon density), bilinear when enlarging."""
    import torch
    import torch.nn.functional as F

    if x.shape[-2:] == (size, size):
        return x
    shrink = size <= min(x.shape[-2:])
    out = np.empty((x.shape[0], x.shape[1], size, size), dtype=np.float32)
    with torch.no_grad():
        for i in range(0, x.shape[0], chunk):
            t = torch.from_numpy(np.ascontiguousarray(x[i : i + chunk]))
            if shrink:
                r = F.interpolate(t, size=(size, size), mode="area")
            else:
                r = F.interpolate(t, size=(size, size), mode="bilinear", align_corners=False)
            out[i : i + chunk] = r.numpy()
    return out


def normalize(x_train: np.ndarray, x_val: np.ndarray, how: str) -> tuple[np.ndarray, np.ndarray]:
    """Apply one of ``none|per_image|log1p|dataset`` (see :class:`DataSpec`)."""
    if how == "none":
        return x_train, x_val
    if how == "log1p":
        if min(x_train.min(initial=0), x_val.min(initial=0)) <= -1:
            raise DataError("normalization 'log1p' needs images with values > -1")
        return np.log1p(x_train), np.log1p(x_val)
    if how == "per_image":

        def per(x: np.ndarray) -> np.ndarray:
            mean = x.mean(axis=(1, 2, 3), keepdims=True)
            std = x.std(axis=(1, 2, 3), keepdims=True)
            return ((x - mean) / np.where(std > 0, std, 1.0)).astype(np.float32)

        return per(x_train), per(x_val)
    if how == "dataset":
        mean, std = float(x_train.mean()), float(x_train.std())
        std = std if std > 0 else 1.0
        return ((x_train - mean) / std).astype(np.float32), ((x_val - mean) / std).astype(
            np.float32
        )
    raise DataError(f"normalization must be one of none, per_image, log1p, dataset; got {how!r}")


def _holdout(y: np.ndarray, fraction: float, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """Stratified, seeded split of indices into (train, val)."""
    rng = np.random.default_rng(seed)
    train, val = [], []
    for label in np.unique(y):
        idx = rng.permutation(np.flatnonzero(y == label))
        k = int(round(fraction * idx.size))
        if k < 1 or k >= idx.size:
            raise DataError(
                f"val_fraction {fraction} leaves class {int(label)} ({idx.size} images) with "
                "an empty train or validation part; change val_fraction or add images"
            )
        val.append(idx[:k])
        train.append(idx[k:])
    return np.sort(np.concatenate(train)), np.sort(np.concatenate(val))


# ------------------------------------------------------------------ entry point


def load_dataset(spec: DataSpec | None = None, **kwargs: object) -> DatasetArrays:
    """Load the data ``spec`` describes (or a DataSpec built from keyword arguments)."""
    if spec is None:
        spec = DataSpec(**kwargs)  # type: ignore[arg-type]
    elif kwargs:
        raise TypeError("give either a DataSpec or keyword arguments, not both")
    path = Path(spec.path)
    if spec.validation not in ("testset", "split"):
        raise DataError(f"validation must be 'testset' or 'split', got {spec.validation!r}")
    if spec.validation == "split" and not (
        isinstance(spec.val_fraction, int | float) and 0 < spec.val_fraction < 1
    ):
        raise DataError(f"val_fraction must be in (0, 1), got {spec.val_fraction!r}")
    if spec.normalization not in ("none", "per_image", "log1p", "dataset"):
        raise DataError(
            f"normalization must be one of none, per_image, log1p, dataset; "
            f"got {spec.normalization!r}"
        )
    if spec.resize is not None and not (
        isinstance(spec.resize, int) and not isinstance(spec.resize, bool) and spec.resize >= 1
    ):
        raise DataError(f"resize must be a positive integer or None, got {spec.resize!r}")

    if spec.format == "folder":
        if not path.is_dir():
            raise DataError(f"dataset folder {path} does not exist")
        label_map = infer_label_map(path) if spec.label_map is None else dict(spec.label_map)
        x_tr, y_tr, f_tr = load_image_folder(path, "trainset", label_map)
        if spec.validation == "testset":
            x_te, y_te, f_te = load_image_folder(path, "testset", label_map)
        else:
            x_te = np.empty((0, *x_tr.shape[1:]), np.float32)
            y_te, f_te = np.empty(0, np.int64), []
        if x_te.shape[1:] != x_tr.shape[1:] and x_te.size:
            raise DataError(
                f"testset images of {path} are {x_te.shape[2:]} but trainset images are "
                f"{x_tr.shape[2:]}"
            )
        n_classes = max(label_map.values()) + 1
        names = [""] * n_classes
        for tok, k in label_map.items():
            names[k] = tok
    elif spec.format == "npz":
        x_tr, y_tr, x_te, y_te = load_npz(path)
        f_tr = [f"x_train[{i}]" for i in range(len(y_tr))]
        f_te = [f"x_test[{i}]" for i in range(len(y_te))]
        names = _npz_names(path, np.concatenate([y_tr, y_te]))
    else:
        raise DataError(f"format must be 'folder' or 'npz', got {spec.format!r}")

    if len(np.unique(y_tr)) < 2:
        raise DataError(
            f"training data of {path} holds {len(np.unique(y_tr))} class(es); need at least 2"
        )
    if spec.validation == "split":
        tr, va = _holdout(y_tr, float(spec.val_fraction), int(spec.seed))
        x_va, y_va = x_tr[va], y_tr[va]
        f_va = [f_tr[i] for i in va]
        x_tr, y_tr, f_tr = x_tr[tr], y_tr[tr], [f_tr[i] for i in tr]
    else:
        x_va, y_va, f_va = x_te, y_te, f_te

    if spec.resize is not None:
        x_tr, x_va = resize_images(x_tr, spec.resize), resize_images(x_va, spec.resize)
    x_tr, x_va = normalize(x_tr, x_va, spec.normalization)
    if not math.isfinite(float(x_tr.sum())):
        raise DataError(f"normalized training images of {path} are not finite")
    return DatasetArrays(
        x_train=np.ascontiguousarray(x_tr, dtype=np.float32),
        y_train=y_tr,
        x_val=np.ascontiguousarray(x_va, dtype=np.float32),
        y_val=y_va,
        names=names,
        train_files=f_tr,
        val_files=f_va,
    )
