"""Recorded learning curves read from disk: an A4NN commons CSV or one of our run directories
(see `engine.replay` for the formats). Kept apart from the replay so that `Engine.seed_from`
can read curves without importing the replay (which imports the engine).
"""

from __future__ import annotations

import csv
import json
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
    # architecture choice vectors per model key, where the recording has them
    features: dict[Any, list[float]] = field(default_factory=dict)

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
        ig = header.index("genome") if "genome" in header else None
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
                    feats = _choices(row[ig]) if ig is not None else None
                    if feats is not None:
                        out.features[n_model] = feats
                key: Any = n_model
            else:
                key = row[ik].strip()
                if key == "":
                    raise CurveFormatError(f"{p}: line {line}: column 'model_id' is empty")
                out.labels.setdefault(key, key)
            out.rows.append((key, epoch, value))
    if not out.rows:
        raise CurveFormatError(f"{p}: no data rows after the header")
    if fmt == "run":
        out.features.update(_run_features(p))
    return out


def _choices(text: str) -> list[float] | None:
    """A choice vector from a JSON list (nested lists, e.g. an NSGA-Net genome, are
    flattened); None when the text is not one."""
    try:
        v = json.loads(text)
    except (TypeError, ValueError):
        return None
    flat: list[float] = []

    def walk(o: Any) -> bool:
        if isinstance(o, list):
            return all(walk(i) for i in o)
        if isinstance(o, int | float) and not isinstance(o, bool):
            flat.append(float(o))
            return True
        return False

    return flat if walk(v) and flat else None


def _run_features(epochs_csv: Path) -> dict[str, list[float]]:
    """Choice vectors of a run's models, where the run recorded them: `models/<id>/model.json`
    ("choices") in a run directory, else the `choices` or `genome` column of the models
    table beside the epochs table (`models.csv`, or `X_models.csv` beside `X_epochs.csv`)."""
    out: dict[str, list[float]] = {}
    run = epochs_csv.parent
    if (run / "models").is_dir():
        for meta in sorted((run / "models").glob("*/model.json")):
            try:
                choices = json.loads(meta.read_text()).get("choices")
            except (OSError, ValueError):
                continue
            feats = _choices(json.dumps(choices)) if choices is not None else None
            if feats is not None:
                d = meta.parent.name
                out[str(int(d)) if d.isdigit() else d] = feats
    name = epochs_csv.name
    table = (
        run / (name[: -len("epochs.csv")] + "models.csv") if name.endswith("epochs.csv") else None
    )
    if out or table is None or not table.is_file():
        return out
    try:
        with table.open(newline="") as fh:
            for row in csv.DictReader(fh):
                key = (row.get("model_id") or "").strip()
                text = row.get("choices") or row.get("genome")
                feats = _choices(text) if text else None
                if key and feats is not None:
                    out[key] = feats
    except (OSError, csv.Error, UnicodeDecodeError):
        return {}
    return out
