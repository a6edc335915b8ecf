"""Curve sets that look like noisier searches, made from the published 1e15 set.

The issue's held-back published set (another beam intensity) has finals spread about
three times wider than at 1e15 and curves noisier from epoch to epoch. Until such curves
are in benchmarks/data, these transforms of the 1e15 set stand in for it:

1. stretch every model's distance from the population: at each epoch e,
   y'(e) = m(e) + s * (y(e) - m(e)), with m(e) the median over the models at that epoch,
   so that the finals spread s times wider and the order of the models at every epoch is
   kept; then shift all values down so that the best final is `top` (accuracy stays below
   100) and clip at 50 (chance level of the two-class problem);
2. add independent epoch-to-epoch noise N(0, sigma(e)), largest early and falling linearly
   to sigma at the last epoch (sigma(0) = 4 sigma: with a decaying learning rate the last
   epochs move least), rounded to the validation step (0.05 points: 2,000 images). The
   published 1e15 curves move by a median 0.02 points between their last epochs; sigma 0.1
   to 0.15 makes them move 5 to 8 times as much while leaving the finals' order readable
   one epoch before the end (the oracle rows of RESULTS.md);
3. keep the order of training (rows stay in the published order).

`widened(...)` returns a `Curves`; `python benchmarks/engine/noisy_sets.py OUT_DIR` writes
them as commons CSVs. Seeds are fixed, so every benchmark sees the same curves.
"""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parents[1]))

from engine.records import Curves  # noqa: E402

# name: (stretch s, noise sigma (points), rounding step (points), seed)
WIDENED = {
    "a4nn-1e15-wide2": (2.0, 0.1, 0.05, 2),
    "a4nn-1e15-wide3": (3.0, 0.15, 0.05, 3),
}
TOP = 99.5  # the best model's final value after the shift


def widened(curves: Curves, stretch: float, sigma: float, step: float, seed: int) -> Curves:
    """The transform of the module docstring (`curves` in training order)."""
    rng = np.random.default_rng(seed)
    by_epoch: dict[int, list[float]] = {}
    for _, e, v in curves.rows:
        if np.isfinite(v):
            by_epoch.setdefault(e, []).append(v)
    med = {e: float(np.median(vs)) for e, vs in by_epoch.items()}
    stretched = [(k, e, med[e] + stretch * (v - med[e])) for k, e, v in curves.rows]
    last: dict = {}
    for k, _e, v in stretched:
        last[k] = v
    t_last = max(by_epoch)
    shift = max(last.values()) - TOP
    out = Curves(source=f"{curves.source} widened x{stretch:g}, noise {sigma:g}")
    out.labels = dict(curves.labels)
    out.features = dict(curves.features)
    for k, e, v in stretched:
        s_e = sigma * (1.0 + 3.0 * (1.0 - e / t_last)) if t_last else sigma
        y = v - shift + rng.normal(0.0, s_e)
        y = min(max(y, 50.0), 100.0)
        out.rows.append((k, e, round(round(y / step) * step, 4)))
    return out


def noisy_sets(base: Curves) -> dict[str, Curves]:
    return {name: widened(base, *args) for name, args in WIDENED.items()}


def write_csv(curves: Curves, path: Path) -> None:
    """As an A4NN commons CSV (epoch, val_accs, arch)."""
    lines = ["epoch,val_accs,arch"]
    lines += [f"{e},{v},{curves.labels.get(k, k)}" for k, e, v in curves.rows]
    path.write_text("\n".join(lines) + "\n")


if __name__ == "__main__":
    from curve_sets import DATA  # noqa: E402

    from engine import read_curves  # noqa: E402

    base = read_curves(DATA / "a4nn-icpp23" / "1gpu_1e15_training_data.csv")
    out_dir = Path(sys.argv[1])
    out_dir.mkdir(parents=True, exist_ok=True)
    for name, c in noisy_sets(base).items():
        write_csv(c, out_dir / f"{name}.csv")
        print(out_dir / f"{name}.csv")
