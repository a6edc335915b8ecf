"""Recorded learning curves read from disk: an A4NN commons CSV or one of our run directories
(see `engine.replay` for the formats). Kept apart from the replay so that `Engine.seed_from`
can read curves without importing the replay (which imports the engine).
"""

from __future__ import annotations

import csv
import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any


class CurveFormatError(ValueError):
    """A curves file that cannot be read; the message names file, line and column."""


@dataclass
class Curves:
    """Recorded curves: the rows in training order and one label per model key."""

    source: str
    rows: list[tuple[Any, int, float]] = field(default_factory=list)  # (model key, epoch, value)
    labels: dict[Any, str] = field(default_factory=dict)

    def models(self) -> list[Any]:
        seen: dict[Any, None] = {}
        for key, _, _ in self.rows:
            seen.setdefault(key, None)
        return list(seen)

    def curve(self, key: Any) -> tuple[list[int], list[float]]:
        pts = [(e, v) for k, e, v in self.rows if k == key]
        return [e for e, _ in pts], [v for _, v in pts]


def _float(text: str, path: Path, line: int, col: str) -> float:
    t = text.strip()
    if t == "":
        return float("nan")
    try:
        return float(t)
    except ValueError:
        raise CurveFormatError(
            f"{path}: line {line}: column {col!r}: {text!r} is not a number"
        ) from None


def _int(text: str, path: Path, line: int, col: str) -> int:
    f = _float(text, path, line, col)
    if not math.isfinite(f) or f < 0 or f != int(f):
        raise CurveFormatError(
            f"{path}: line {line}: column {col!r}: {text!r} is not a whole number >= 0"
        )
    return int(f)


def read_curves(path: str | Path) -> Curves:
    """Read an A4NN commons CSV, a run's `epochs.csv`, or a run directory holding one."""
    p = Path(path)
    if p.is_dir():
        p = p / "epochs.csv"
    if not p.is_file():
        raise CurveFormatError(
            f"{p}: no such file; give an A4NN commons CSV, a run's epochs.csv or its run directory"
        )
    out = Curves(source=str(p))
    with p.open(newline="") as fh:
        reader = csv.reader(fh)
        try:
            header = [h.strip() for h in next(reader)]
        except StopIteration:
            raise CurveFormatError(f"{p}: line 1: empty file, expected a CSV header") from None
        if "val_accs" in header and "epoch" in header:
            fmt, vcol = "commons", "val_accs"
        elif {"model_id", "epoch", "val_acc"} <= set(header):
            fmt, vcol = "run", "val_acc"
        else:
            raise CurveFormatError(
                f"{p}: line 1: expected columns epoch,val_accs (A4NN commons CSV) or "
                f"model_id,epoch,val_acc (a4nn run epochs.csv); found {header}"
            )
        ie, iv = header.index("epoch"), header.index(vcol)
        ik = header.index("model_id") if fmt == "run" else None
        ia = header.index("arch") if "arch" in header else None
        n_model = -1
        for row in reader:
            line = reader.line_num
            if not row or all(not c.strip() for c in row):
                continue
            if len(row) != len(header):
                raise CurveFormatError(
                    f"{p}: line {line}: expected {len(header)} columns as in the header, "
                    f"found {len(row)}"
                )
            epoch = _int(row[ie], p, line, "epoch")
            value = _float(row[iv], p, line, vcol)
            if fmt == "commons":
                if epoch == 0 or n_model < 0:
                    n_model += 1
                    label = row[ia].strip() if ia is not None else str(n_model)
                    out.labels[n_model] = label
                key: Any = n_model
            else:
                key = row[ik].strip()
                if key == "":
                    raise CurveFormatError(f"{p}: line {line}: column 'model_id' is empty")
                out.labels.setdefault(key, key)
            out.rows.append((key, epoch, value))
    if not out.rows:
        raise CurveFormatError(f"{p}: no data rows after the header")
    return out
