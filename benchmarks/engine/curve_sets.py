"""The curve sets the engine benchmarks replay, found on disk.

* `a4nn-1e15`: the published 1e15 development set (100 NSGA-Net models x 25 epochs);
* every `*epochs.csv` or run directory (with `epochs.csv`) under `benchmarks/data/xfel-curves/`:
  our own searches on simulated XFEL data recorded with the engine off (the CPU recipe);
* the same under `benchmarks/data/xfel-curves-gpu/`, named `xfel-gpu_<intensity>`: the GPU
  recipe (4,000 training / 4,000 validation images at 32x32, the paper's channel widths);
* the same under `benchmarks/data/xfel-curves-hard/`, named `xfel-hard_<intensity>`: searches
  of random architectures on harder data (low beam intensity, 300 training images, 32x32,
  1,000 validation images), where architectures matter (finals spread over 3 points);
* `a4nn-1e15-wide2`, `a4nn-1e15-wide3`: the 1e15 set widened and made noisier
  (noisy_sets.py), stand-ins for the held-back published sets of other intensities.
"""

from __future__ import annotations

import platform
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT))

from engine.replay import Curves, read_curves  # noqa: E402

DATA = ROOT / "benchmarks" / "data"


def curve_sets() -> dict[str, Curves]:
    """name -> curves, the development set first."""
    from noisy_sets import noisy_sets

    base = read_relative(DATA / "a4nn-icpp23" / "1gpu_1e15_training_data.csv")
    sets = {"a4nn-1e15": base, **noisy_sets(base)}
    for folder, prefix in (
        ("xfel-curves", "xfel"),
        ("xfel-curves-gpu", "xfel-gpu"),
        ("xfel-curves-hard", "xfel-hard"),
    ):
        sets.update(_recorded(DATA / folder, prefix))
    return sets


def _recorded(folder: Path, prefix: str) -> dict[str, Curves]:
    """The per-epoch tables under `folder` (`*epochs.csv`, or run directories holding one);
    the per-model tables beside them are not curves."""
    sets: dict[str, Curves] = {}
    if not folder.is_dir():
        return sets
    for p in sorted(folder.iterdir()):
        if p.is_file() and p.name.endswith("epochs.csv"):
            tag = p.name.removesuffix(".csv").removesuffix("_epochs").removeprefix("xfel_")
        elif p.is_dir() and (p / "epochs.csv").is_file():
            tag = p.name
        else:
            continue
        name = f"{prefix}_{tag}"
        if name in sets:
            raise ValueError(f"two curve sets named {name}: {sets[name].source} and {p}; keep one")
        sets[name] = read_relative(p)
    return sets


def read_relative(path: Path) -> Curves:
    """`read_curves`, its `source` relative to the repository root: the reports this
    feeds are committed, and must not name the checkout they were made in."""
    curves = read_curves(path)
    p = Path(path).resolve()
    if p.is_relative_to(ROOT):  # else outside the repository: keep the path as given
        curves.source = str(p.relative_to(ROOT))
    return curves


def subset(curves: Curves, keys: list) -> Curves:
    """Only the given models, rows kept in training order (a search of its own)."""
    ks = set(keys)
    out = Curves(source=f"{curves.source}[{len(ks)} models]")
    out.rows = [r for r in curves.rows if r[0] in ks]
    out.labels = {k: v for k, v in curves.labels.items() if k in ks}
    out.features = {k: v for k, v in curves.features.items() if k in ks}
    return out


def halves(curves: Curves) -> list[Curves]:
    """First and second half of the search, in training order."""
    keys = curves.models()
    h = len(keys) // 2
    return [subset(curves, keys[:h]), subset(curves, keys[h:])]


def budget_of(curves: Curves) -> int:
    """The epoch budget of a set: its longest recorded curve."""
    longest: dict = {}
    for k, e, _ in curves.rows:
        longest[k] = max(longest.get(k, 0), e + 1)
    return max(longest.values())


def stamp() -> str:
    """Machine and date for a committed report's header."""
    return (
        f"{platform.node() or 'vm'} {platform.machine()}, Python {platform.python_version()}, "
        f"{time.strftime('%Y-%m-%d')}"
    )


def reading(md: Path) -> str:
    """The hand-written `## Reading` section of a report (from its heading on), or ""."""
    if not md.is_file():
        return ""
    text = md.read_text()
    return text[text.index("\n## Reading") :] if "\n## Reading" in text else ""
