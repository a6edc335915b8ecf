"""Load runs and commons downloads into pandas, in one call.

`load_run(RUN_DIR)` reads one of our run directories (or a bundle of one);
`load_commons(DIR)` reads everything under a folder fetched from a data commons: our run
bundles (found by their `run.json`) and the A4NN ICPP'23 commons CSVs (rows are epochs, a
new model where `epoch` is 0). Both return the same two tables, `models` and `epochs`,
with a `run` column saying where each row came from.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pandas as pd

from lineage.schema import read_table

A4NN_CSV_COLUMNS = {"epoch", "val_accs", "genome"}


@dataclass
class Tables:
    """The lineage tables of one or more runs."""

    models: pd.DataFrame
    epochs: pd.DataFrame
    runs: dict[str, dict[str, Any]] = field(default_factory=dict)
    skipped: dict[str, str] = field(default_factory=dict)  # load_commons: folder -> why


def load_run(run_dir: str | Path, name: str | None = None) -> Tables:
    """One run directory's tables (schema-checked Parquet, CSV for older runs)."""
    run_dir = Path(run_dir)
    if not (run_dir / "run.json").exists():
        raise FileNotFoundError(f"{run_dir} is not an A4NN run directory (no run.json)")
    name = name or run_dir.name
    meta = json.loads((run_dir / "run.json").read_text())
    tables = {}
    for table in ("models", "epochs"):
        pq_path = run_dir / f"{table}.parquet"
        if pq_path.exists():
            df = read_table(pq_path, table)
        elif (run_dir / f"{table}.csv").exists():
            df = pd.read_csv(run_dir / f"{table}.csv")
        else:
            raise FileNotFoundError(f"{run_dir} has neither {table}.parquet nor {table}.csv")
        df.insert(0, "run", name)
        tables[table] = df
    return Tables(tables["models"], tables["epochs"], {name: meta})


def load_a4nn_csv(path: str | Path, name: str | None = None) -> Tables:
    """An A4NN ICPP'23 commons CSV as our two tables (models numbered as in the file)."""
    path = Path(path)
    raw = pd.read_csv(path)
    missing = A4NN_CSV_COLUMNS - set(raw.columns)
    if missing:
        raise ValueError(f"{path} is not an A4NN commons CSV: missing columns {sorted(missing)}")
    name = name or path.stem
    model_idx = (raw["epoch"] == 0).cumsum() - 1
    epochs = pd.DataFrame(
        {
            "run": name,
            "model_id": raw.get("arch", model_idx),
            "epoch": raw["epoch"],
            "train_acc": raw.get("train_accs"),
            "val_acc": raw["val_accs"],
            "epoch_seconds": raw.get("epoch_times"),
            "prediction": pd.to_numeric(raw.get("predictions"), errors="coerce").replace(
                [float("inf")], float("nan")
            ),
            "converged": raw.get("converged"),
        }
    )
    grouped = epochs.assign(_m=model_idx.to_numpy()).groupby("_m", sort=True)
    models = grouped.agg(
        model_id=("model_id", "first"),
        epochs_trained=("epoch", "size"),
        last_val_acc=("val_acc", "last"),
        best_val_acc=("val_acc", "max"),
    ).reset_index(drop=True)
    firsts = raw.groupby(model_idx).first()
    models["genome"] = firsts["genome"].to_numpy()
    if "flops" in raw:
        models["mflops"] = firsts["flops"].to_numpy()
    models.insert(0, "run", name)
    return Tables(models, epochs, {name: {"source": str(path)}})


def load_commons(root: str | Path) -> Tables:
    """Every run and A4NN commons CSV under `root`, each loaded once, concatenated.

    A run is a folder with a `run.json` (a run directory, or a bundle fetched from a
    commons); it is named by the name its `run.json` records (the folder, relative to
    `root`, when it records none), and a name shared by several runs gets its folder
    appended: `tiny (a/run)`. Folders that are not loaded are listed in `Tables.skipped`
    (folder -> why) and named in one warning: a run folder inside another run (for example
    the `bundle/` that `a4nn publish` left in a run before version 0.2: a copy of the
    run), hidden folders (`.name`: temporary or partial downloads), and run folders whose
    tables cannot be read.
    """
    import warnings

    root = Path(root)
    if not root.is_dir():
        raise FileNotFoundError(f"commons folder {root} does not exist")

    def rel(p: Path) -> str:
        return p.relative_to(root).as_posix()

    def hidden(p: Path) -> bool:
        return any(part.startswith(".") for part in p.relative_to(root).parts)

    skipped: dict[str, str] = {}
    run_dirs: list[Path] = []
    for d in sorted((p.parent for p in root.rglob("run.json")), key=lambda p: len(p.parts)):
        outer = next((r for r in run_dirs if r in d.parents), None)
        if outer is not None:
            skipped[rel(d)] = (
                f"inside the run folder {rel(outer)!r} (a copy of a run, not loaded twice)"
            )
        elif hidden(d):
            skipped[rel(d)] = "hidden folder (a temporary or partial copy)"
        else:
            run_dirs.append(d)
    run_dirs.sort()
    names: dict[Path, str] = {}
    for d in run_dirs:
        try:
            recorded = json.loads((d / "run.json").read_text()).get("name")
        except (OSError, ValueError, AttributeError):
            recorded = None
        names[d] = recorded if isinstance(recorded, str) and recorded else rel(d)
    counts: dict[str, int] = {}
    for n in names.values():
        counts[n] = counts.get(n, 0) + 1
    parts = []
    for d in run_dirs:
        name = names[d] if counts[names[d]] == 1 else f"{names[d]} ({rel(d)})"
        try:
            parts.append(load_run(d, name))
        except (OSError, ValueError, KeyError) as err:  # SchemaError is a ValueError
            skipped[rel(d)] = f"its tables cannot be read: {err}"
    for csv in sorted(root.rglob("*.csv")):
        if any(d in csv.parents for d in run_dirs) or any(
            (root / k) in csv.parents for k in skipped
        ):
            continue  # a run's own CSV tables (or a skipped copy's) are not commons CSVs
        if hidden(csv):
            continue
        head = pd.read_csv(csv, nrows=1)
        if set(head.columns) >= A4NN_CSV_COLUMNS:
            parts.append(load_a4nn_csv(csv, rel(csv)))
    if skipped:
        warnings.warn(
            f"load_commons({str(root)!r}) skipped {len(skipped)} folder(s): "
            + "; ".join(f"{k}: {v}" for k, v in sorted(skipped.items())),
            stacklevel=2,
        )
    if not parts:
        raise FileNotFoundError(f"no A4NN run (run.json) or A4NN commons CSV found under {root}")
    runs: dict[str, dict[str, Any]] = {}
    for p in parts:
        runs.update(p.runs)
    return Tables(
        pd.concat([p.models for p in parts], ignore_index=True),
        pd.concat([p.epochs for p in parts], ignore_index=True),
        runs,
        skipped,
    )
