"""Turn the config's `data` section into training arrays.

For `source: xfel` the simulated dataset is generated once into `cache_dir` (named after
its parameters, written to a temporary folder and renamed, so an interrupted simulation
never leaves a half dataset that later runs would trust) and reused by every later run.
"""

from __future__ import annotations

import hashlib
import shutil
from pathlib import Path
from typing import TYPE_CHECKING

from a4nn.config import DataConfig

if TYPE_CHECKING:  # the loaders (numpy, tifffile) load when data is prepared, not before
    from a4nn.data.loaders import DatasetArrays


def xfel_cache_path(data: DataConfig) -> Path:
    x = data.xfel
    tag = f"xfel-{x.intensity:.0e}-n{x.n_train}-{x.n_test}-s{x.seed}".replace("+", "")
    if x.pdb_files is not None:
        tag += "-" + "-".join(Path(p).stem for p in x.pdb_files)
    return data.cache_dir / tag


def ensure_xfel(data: DataConfig, progress: bool = True) -> Path:
    """The simulated dataset's folder, generating it on first use."""
    target = xfel_cache_path(data)
    if _simulated(target):
        return target
    tmp = target.with_name(target.name + ".partial")
    shutil.rmtree(tmp, ignore_errors=True)
    from a4nn.data.xfel import simulate_dataset  # the simulator (scipy) only when needed

    x = data.xfel
    if progress:
        print(f"simulating XFEL dataset (intensity {x.intensity:g}) into {target} ...")
    simulate_dataset(
        tmp,
        intensity=x.intensity,
        n_train=x.n_train,
        n_test=x.n_test,
        seed=x.seed,
        pdb_files=x.pdb_files,
        progress=progress,
    )
    shutil.rmtree(target, ignore_errors=True)
    tmp.rename(target)
    return target


def _simulated(target: Path) -> bool:
    """Whether a simulated dataset is in place (a simulation is renamed there once done)."""
    return (target / "dataset.json").exists()


def prepare_data(data: DataConfig, progress: bool = True, seed: int = 0) -> DatasetArrays:
    """Load (and for `xfel`, first simulate) the data the config describes."""
    from a4nn.data.loaders import DataSpec, load_dataset

    if data.source == "xfel":
        path, fmt = ensure_xfel(data, progress), "folder"
    else:
        path, fmt = data.path, data.source
    spec = DataSpec(
        format=fmt,
        path=Path(path),
        label_map=data.label_map,
        validation=data.validation,
        val_fraction=data.val_fraction,
        seed=seed,
        normalization=data.normalize,
        resize=data.resize,
    )
    return load_dataset(spec)


def dataset_path(data: DataConfig) -> Path:
    """Where the run's data lives (the simulated folder for `xfel`)."""
    return xfel_cache_path(data) if data.source == "xfel" else Path(data.path)


def dataset_fingerprint(data: DataConfig) -> dict[str, object]:
    """SHA-256 over the dataset's files (relative names and contents), for the lineage."""
    root = dataset_path(data)
    files = sorted(p for p in root.rglob("*") if p.is_file()) if root.is_dir() else [root]
    h = hashlib.sha256()
    for f in files:
        h.update(f.relative_to(root).as_posix().encode() if root.is_dir() else f.name.encode())
        with open(f, "rb") as fh:
            for block in iter(lambda fh=fh: fh.read(1 << 20), b""):
                h.update(block)
    return {"path": str(root), "files": len(files), "sha256": h.hexdigest()}
