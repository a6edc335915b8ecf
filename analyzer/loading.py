"""Load runs and commons downloads into three tidy pandas tables, in one call.

* `load_run(RUN_DIR)`: one of our run directories (or the bundle of one);
* `load_a4nn_csv(PATH)`: an original A4NN ICPP'23 commons CSV (rows are epochs, a new
  model where `epoch` is 0, `arch` is the model id);
* `load_commons(DIR)`: everything under a folder fetched from a data commons (run
  bundles, found by their `run.json`, and A4NN commons CSVs);
* `load(PATH, ...)`: any of the above, guessed from what PATH is; several paths are
  concatenated (`load_many`).

Every loader returns `Tables`:

* `epochs`: one row per trained epoch, keyed by (`run`, `model_id`, `epoch`);
* `models`: one row per model, keyed by (`run`, `model_id`), with the same derived columns
  whatever the source (status, fitness, termination epoch, the engine's prediction at the
  stop, the choice vector of its architecture, ...);
* `runs`: one row per run (source, engine, adapter, epoch budget, wall time).

Columns a source lacks are added empty (NaN / None), so a query or figure works on any
mix of sources; the columns are listed in docs/analyzer.md. Nothing here trains or imports
torch, Prefect or Dask.
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from analyzer.architectures import choices_of, space_of

A4NN_CSV_COLUMNS = {"epoch", "val_accs", "genome"}
EPOCH_KEYS = ("model_id", "epoch", "val_acc")  # the epoch columns no analysis can do without
MODEL_KEYS = ("model_id",)

EPOCH_COLUMNS = [
    "run",
    "model_id",
    "epoch",
    "train_acc",
    "val_acc",
    "train_loss",
    "val_loss",
    "epoch_seconds",
    "prediction",
    "converged",
]
MODEL_COLUMNS = [
    "run",
    "model_id",
    "generation",
    "parents",
    "proposer",
    "space",
    "genome",
    "architecture",
    "arch",
    "choices",
    "mflops",
    "params",
    "status",
    "reason",
    "fitness",
    "epochs_trained",
    "termination_epoch",
    "budget",
    "stopped_early",
    "prediction_at_stop",
    "val_acc_at_stop",
    "first_converged_epoch",
    "last_val_acc",
    "best_val_acc",
    "train_seconds",
]
RUN_COLUMNS = [
    "run",
    "kind",
    "source",
    "name",
    "status",
    "engine",
    "adapter",
    "space",
    "budget",
    "models",
    "epochs_trained",
    "wall_seconds",
    "started",
]


class AnalyzerError(ValueError):
    """Data the analyzer cannot read; the message names the file and column at fault."""


@dataclass
class Tables:
    """The tables of one or more runs (see the module docstring)."""

    models: pd.DataFrame
    epochs: pd.DataFrame
    runs: pd.DataFrame = field(default_factory=lambda: pd.DataFrame(columns=RUN_COLUMNS))
    meta: dict[str, dict[str, Any]] = field(default_factory=dict)  # run -> run.json
    skipped: dict[str, str] = field(default_factory=dict)  # load_commons: folder -> why

    @property
    def run_names(self) -> list[str]:
        """The runs in load order."""
        if not self.runs.empty:
            return list(self.runs["run"])
        return list(dict.fromkeys(self.models["run"]))

    def run(self, name: str) -> Tables:
        """The tables of one run."""
        if name not in self.run_names:
            raise KeyError(f"no run {name!r}; runs: {self.run_names}")
        return Tables(
            self.models[self.models["run"] == name].reset_index(drop=True),
            self.epochs[self.epochs["run"] == name].reset_index(drop=True),
            self.runs[self.runs["run"] == name].reset_index(drop=True),
            {name: self.meta.get(name, {})},
        )

    def first_models(self, n: int | None) -> Tables:
        """The first `n` models of each run in training order (all with `n=None`): a quick
        look at a large run, or a fast engine replay."""
        if n is None:
            return self
        keep = set()
        for run, e in self.epochs.groupby("run", sort=False):
            keep |= {(run, m) for m in list(dict.fromkeys(e["model_id"]))[:n]}

        def sel(df: pd.DataFrame) -> pd.DataFrame:
            mask = [(r, m) in keep for r, m in zip(df["run"], df["model_id"], strict=True)]
            return df[mask].reset_index(drop=True)

        return Tables(sel(self.models), sel(self.epochs), self.runs, self.meta)

    def curve(self, model_id: int, run: str | None = None) -> pd.DataFrame:
        """One model's epochs, in epoch order."""
        run = run or self._only_run()
        e = self.epochs
        out = e[(e["run"] == run) & (e["model_id"] == model_id)]
        if out.empty:
            raise KeyError(f"run {run!r} has no model {model_id}")
        return out.sort_values("epoch")

    def _only_run(self) -> str:
        names = self.run_names
        if len(names) != 1:
            raise ValueError(f"these tables hold {len(names)} runs ({names}): name one with run=")
        return names[0]


# -- helpers ---------------------------------------------------------------------------------
def _conform(df: pd.DataFrame, columns: list[str]) -> pd.DataFrame:
    """`df` with `columns` first (missing ones added empty), other columns kept after."""
    for col in columns:
        if col not in df.columns:
            df[col] = np.nan
    rest = [c for c in df.columns if c not in columns]
    return df[columns + rest]


def _require(df: pd.DataFrame, cols: tuple[str, ...], where: Path) -> None:
    for col in cols:
        if col not in df.columns:
            raise AnalyzerError(f"{where}: column '{col}' is missing")


def _numeric(df: pd.DataFrame, cols: list[str], where: Path) -> None:
    for col in cols:
        if col not in df.columns:
            continue
        values = pd.to_numeric(df[col], errors="coerce")
        bad = values.isna() & df[col].notna() & (df[col].astype(str).str.strip() != "")
        if bad.any():
            i = int(np.flatnonzero(bad.to_numpy())[0])
            raise AnalyzerError(
                f"{where}: column '{col}' holds {df[col].iloc[i]!r} (row {i + 1}), not a number"
            )
        df[col] = values.replace([np.inf, -np.inf], np.nan) if col == "prediction" else values


def _as_bool(series: pd.Series) -> pd.Series:
    if series.dtype == bool:
        return series
    text = series.astype(str).str.strip().str.lower()
    return text.isin(["true", "1", "1.0", "yes"])


def _read_table(run_dir: Path, table: str) -> pd.DataFrame:
    """A run-level table: Parquet if there (schema version checked), else CSV."""
    pq_path = run_dir / f"{table}.parquet"
    csv_path = run_dir / f"{table}.csv"
    if pq_path.exists():
        import pyarrow as pa
        import pyarrow.parquet as pq

        from lineage.schema import SCHEMA_KEY, SCHEMA_VERSION

        try:
            arrow = pq.read_table(pq_path)
        except (OSError, pa.ArrowInvalid) as err:
            raise AnalyzerError(f"{pq_path}: not a readable Parquet file: {err}") from None
        version = (arrow.schema.metadata or {}).get(SCHEMA_KEY, b"").decode() or "unknown"
        if version.split(".")[0] != SCHEMA_VERSION.split(".")[0]:
            raise AnalyzerError(
                f"{pq_path}: lineage schema {version}, this A4NN reads {SCHEMA_VERSION}; "
                "upgrade A4NN to read it"
            )
        return arrow.to_pandas(), pq_path
    if csv_path.exists():
        try:
            return pd.read_csv(csv_path), csv_path
        except (pd.errors.ParserError, UnicodeDecodeError) as err:
            raise AnalyzerError(f"{csv_path}: not a readable CSV file: {err}") from None
    raise FileNotFoundError(f"{run_dir} has neither {table}.parquet nor {table}.csv")


def _normalize_epochs(df: pd.DataFrame, run: str, where: Path) -> pd.DataFrame:
    df = df.copy()
    _require(df, EPOCH_KEYS, where)
    _numeric(
        df,
        ["model_id", "epoch", "train_acc", "val_acc", "train_loss", "val_loss"]
        + ["epoch_seconds", "prediction"],
        where,
    )
    if df["model_id"].isna().any() or df["epoch"].isna().any():
        raise AnalyzerError(f"{where}: column 'model_id' or 'epoch' has empty cells")
    df["model_id"] = df["model_id"].astype("int64")
    df["epoch"] = df["epoch"].astype("int64")
    df["converged"] = _as_bool(df["converged"]) if "converged" in df else False
    df = df.drop(columns=[c for c in ("run",) if c in df.columns])
    df.insert(0, "run", run)
    return _conform(df, EPOCH_COLUMNS)


def _derive_models(
    models: pd.DataFrame,
    epochs: pd.DataFrame,
    budget: int | None,
    run: str,
    where: Path,
    engine_stops: bool = True,
) -> pd.DataFrame:
    """Fill the columns every source gets from the epochs (and check what is given)."""
    models = models.copy()
    _require(models, MODEL_KEYS, where)
    _numeric(
        models,
        ["model_id", "generation", "mflops", "params", "fitness", "epochs_trained"]
        + ["termination_epoch", "last_val_acc", "best_val_acc", "train_seconds"],
        where,
    )
    models["model_id"] = models["model_id"].astype("int64")
    if models["model_id"].duplicated().any():
        dup = int(models.loc[models["model_id"].duplicated(), "model_id"].iloc[0])
        raise AnalyzerError(f"{where}: column 'model_id' repeats model {dup}")
    models = models.drop(columns=[c for c in ("run",) if c in models.columns])
    by_model = epochs.sort_values(["model_id", "epoch"]).groupby("model_id", sort=False)
    last = by_model.tail(1).set_index("model_id")
    first_conv = epochs[epochs["converged"]].groupby("model_id")["epoch"].min()
    stats = pd.DataFrame(
        {
            "n_epochs": by_model.size(),
            "last_epoch": last["epoch"],
            "last_val": last["val_acc"],
            "last_pred": last["prediction"],
            "last_conv": last["converged"],
            "best_val": by_model["val_acc"].max(),
            "seconds": by_model["epoch_seconds"].sum(min_count=1),
        }
    )
    ids = models["model_id"]

    def from_epochs(col: str, stat: str) -> None:
        derived = ids.map(stats[stat])
        if col not in models.columns:
            models[col] = derived
        else:
            models[col] = models[col].where(models[col].notna(), derived)

    from_epochs("epochs_trained", "n_epochs")
    from_epochs("termination_epoch", "last_epoch")
    from_epochs("last_val_acc", "last_val")
    from_epochs("best_val_acc", "best_val")
    from_epochs("train_seconds", "seconds")
    models["epochs_trained"] = models["epochs_trained"].fillna(0).astype("int64")
    models["val_acc_at_stop"] = ids.map(stats["last_val"])
    models["prediction_at_stop"] = ids.map(stats["last_pred"])
    models["first_converged_epoch"] = ids.map(first_conv).astype("Int64")
    if "status" not in models.columns or models["status"].isna().all():
        # the engine stopped a model where its first `converged` row is its last row
        stopped = ids.map(stats["last_conv"]).fillna(False).astype(bool) & (
            models["first_converged_epoch"] == models["termination_epoch"]
        ).fillna(False).astype(bool)
        stopped &= engine_stops
        models["status"] = np.where(stopped, "converged", "budget")
    if "fitness" not in models.columns or models["fitness"].isna().all():
        conv = models["status"] == "converged"
        models["fitness"] = np.where(conv, models["prediction_at_stop"], models["last_val_acc"])
    models["budget"] = budget if budget is not None else np.nan
    models["stopped_early"] = (models["status"] == "converged") & (
        models["epochs_trained"] < models["budget"]
    )
    if "proposer" not in models.columns:
        models["proposer"] = None
    models["choices"] = [
        choices_of(row)
        for row in models.reindex(columns=["choices", "genome", "arch"]).to_dict("records")
    ]
    models["space"] = [
        space_of(row)
        for row in models.reindex(columns=["space", "architecture", "genome"]).to_dict("records")
    ]
    models.insert(0, "run", run)
    return _conform(models, MODEL_COLUMNS)


def _run_row(run: str, kind: str, source: Path, models: pd.DataFrame, **info: Any) -> dict:
    spaces = [s for s in dict.fromkeys(models["space"]) if isinstance(s, str)]
    row = {
        "run": run,
        "kind": kind,
        "source": str(source),
        "models": len(models),
        "epochs_trained": int(models["epochs_trained"].sum()),
        "space": ", ".join(spaces) if spaces else None,
    }
    row.update(info)
    return row


# -- our run directories ---------------------------------------------------------------------
def _read_config(run_dir: Path) -> dict[str, Any]:
    path = run_dir / "config.yaml"
    if not path.exists():
        return {}
    import yaml

    try:
        data = yaml.safe_load(path.read_text())
    except yaml.YAMLError as err:
        raise AnalyzerError(f"{path}: not valid YAML: {err}") from None
    return data if isinstance(data, dict) else {}


def load_run(run_dir: str | Path, name: str | None = None) -> Tables:
    """One run directory's tables (Parquet, CSV for older runs; missing columns tolerated)."""
    run_dir = Path(run_dir)
    if not (run_dir / "run.json").exists():
        raise FileNotFoundError(f"{run_dir} is not an A4NN run directory (no run.json)")
    name = name or run_dir.name
    try:
        meta = json.loads((run_dir / "run.json").read_text())
    except json.JSONDecodeError as err:
        raise AnalyzerError(f"{run_dir / 'run.json'}: not valid JSON: {err}") from None
    cfg = _read_config(run_dir)
    raw_epochs, epochs_path = _read_table(run_dir, "epochs")
    raw_models, models_path = _read_table(run_dir, "models")
    epochs = _normalize_epochs(raw_epochs, name, epochs_path)
    budget = (cfg.get("train") or {}).get("epochs")
    if budget is None and not epochs.empty:
        budget = int(epochs["epoch"].max()) + 1
    models = _derive_models(raw_models, epochs, budget, name, models_path)
    engine_cfg = cfg.get("engine") or {}
    search = cfg.get("search") or {}
    runs = pd.DataFrame(
        [
            _run_row(
                name,
                "run",
                run_dir,
                models,
                name=meta.get("name", name),
                status=meta.get("status"),
                engine=engine_cfg.get("preset") if engine_cfg else None,
                adapter=search.get("adapter") or _first(models["proposer"]),
                budget=budget,
                wall_seconds=meta.get("wall_seconds"),
                started=meta.get("started"),
            )
        ],
        columns=RUN_COLUMNS,
    )
    return Tables(models, epochs, runs, {name: meta})


def _first(series: pd.Series) -> Any:
    vals = series.dropna()
    return vals.iloc[0] if len(vals) else None


# -- the original A4NN commons CSVs ----------------------------------------------------------
def load_a4nn_csv(path: str | Path, name: str | None = None) -> Tables:
    """An A4NN ICPP'23 commons CSV as our tables (model ids from its `arch` column)."""
    path = Path(path)
    try:
        raw = pd.read_csv(path)
    except (pd.errors.ParserError, UnicodeDecodeError, pd.errors.EmptyDataError) as err:
        raise AnalyzerError(f"{path}: not a readable CSV file: {err}") from None
    missing = A4NN_CSV_COLUMNS - set(raw.columns)
    if missing:
        raise AnalyzerError(
            f"{path} is not an A4NN commons CSV: column '{sorted(missing)[0]}' is missing "
            f"(expected {sorted(A4NN_CSV_COLUMNS)})"
        )
    name = name or path.name
    _numeric(raw, ["epoch", "val_accs"], path)
    model_idx = (raw["epoch"] == 0).cumsum() - 1
    model_idx = model_idx.clip(lower=0)
    ids = (
        pd.to_numeric(raw["arch"], errors="coerce")
        if "arch" in raw
        else pd.Series(model_idx, index=raw.index, dtype=float)
    )
    if ids.isna().any():  # ids from the order in the file
        ids = pd.Series(model_idx, index=raw.index)
    epochs = pd.DataFrame(
        {
            "model_id": ids.astype("int64"),
            "epoch": raw["epoch"],
            "train_acc": raw.get("train_accs"),
            "val_acc": raw["val_accs"],
            "epoch_seconds": raw.get("epoch_times"),
            "prediction": raw.get("predictions"),
            "converged": raw.get("converged"),
        }
    )
    epochs = _normalize_epochs(epochs, name, path)
    firsts = raw.assign(model_id=ids.astype("int64")).groupby("model_id", sort=False).first()
    models = pd.DataFrame({"model_id": firsts.index.astype("int64")})
    models["genome"] = firsts["genome"].to_numpy()
    if "architecture" in firsts:
        models["architecture"] = firsts["architecture"].to_numpy()
    if "flops" in firsts:
        models["mflops"] = pd.to_numeric(firsts["flops"], errors="coerce").to_numpy()
    models["proposer"] = "nsganet"
    models["space"] = "nsganet-macro"
    # `params` in these files are the engine's fitted curve parameters, not the network's
    budget = int(epochs["epoch"].max()) + 1 if not epochs.empty else None
    # the engine was in charge unless a model trained on after its `converged` row (the
    # standalone NSGA-Net file records the engine's verdicts but never stopped)
    last = epochs.groupby("model_id")["epoch"].max()
    first_conv = epochs[epochs["converged"]].groupby("model_id")["epoch"].min()
    observed_only = bool((first_conv < last.reindex(first_conv.index)).any())
    models = _derive_models(models, epochs, budget, name, path, engine_stops=not observed_only)
    in_charge = not observed_only and bool(models["stopped_early"].any())
    wall = epochs["epoch_seconds"].sum(min_count=1)
    runs = pd.DataFrame(
        [
            _run_row(
                name,
                "a4nn-csv",
                path,
                models,
                name=path.stem,
                status="finished",
                engine="paper" if in_charge else "off",
                adapter="nsganet",
                budget=budget,
                wall_seconds=float(wall) if pd.notna(wall) else None,
                started=None,
            )
        ],
        columns=RUN_COLUMNS,
    )
    return Tables(models, epochs, runs, {name: {"source": str(path)}})


def is_a4nn_csv(path: Path) -> bool:
    try:
        head = pd.read_csv(path, nrows=0)
    except (pd.errors.ParserError, UnicodeDecodeError, pd.errors.EmptyDataError, OSError):
        return False
    return set(head.columns) >= A4NN_CSV_COLUMNS


# -- commons downloads and several sources ---------------------------------------------------
def concat(parts: list[Tables]) -> Tables:
    """Several `Tables` as one (run names must differ)."""
    if not parts:
        raise ValueError("nothing to concatenate")
    names = [n for p in parts for n in p.run_names]
    dup = sorted({n for n in names if names.count(n) > 1})
    if dup:
        raise ValueError(f"two sources are both named {dup[0]!r}: give them distinct names")
    meta: dict[str, dict[str, Any]] = {}
    for p in parts:
        meta.update(p.meta)
    nonempty = [p.runs for p in parts if not p.runs.empty]
    return Tables(
        pd.concat([p.models for p in parts], ignore_index=True),
        pd.concat([p.epochs for p in parts], ignore_index=True),
        pd.concat(nonempty, ignore_index=True) if nonempty else pd.DataFrame(columns=RUN_COLUMNS),
        meta,
    )


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
        return p.relative_to(root).as_posix() if p != root else root.resolve().name

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
        inside = any(d in csv.parents for d in run_dirs)
        if inside or hidden(csv) or any((root / k) in csv.parents for k in skipped):
            continue  # a run's own CSV tables (or a skipped copy's) are not commons CSVs
        if is_a4nn_csv(csv):
            parts.append(load_a4nn_csv(csv, rel(csv)))
    if skipped:
        warnings.warn(
            f"load_commons({str(root)!r}) skipped {len(skipped)} folder(s): "
            + "; ".join(f"{k}: {v}" for k, v in sorted(skipped.items())),
            stacklevel=2,
        )
    if not parts:
        raise FileNotFoundError(f"no A4NN run (run.json) or A4NN commons CSV found under {root}")
    tables = concat(parts)
    tables.skipped = skipped
    return tables


def load(*paths: str | Path, names: list[str] | None = None) -> Tables:
    """Runs, commons downloads or A4NN CSVs, whatever each path is, as one `Tables`.

    Run names are the folder or file names; where two coincide the parent folder is
    prepended (`a/run`, `b/run`), or pass `names`.
    """
    if not paths:
        raise ValueError("give at least one run directory, commons folder or A4NN CSV")
    paths_ = [Path(p) for p in paths]
    if names is not None and len(names) != len(paths_):
        raise ValueError(f"{len(names)} names for {len(paths_)} paths")
    labels = names or _distinct_names(paths_)
    parts = []
    for path, label in zip(paths_, labels, strict=True):
        if path.is_dir() and (path / "run.json").exists():
            parts.append(load_run(path, label))
        elif path.is_dir():
            t = load_commons(path)
            if len(t.run_names) == 1:  # name the only run after what the user named
                t = _rename(t, t.run_names[0], label)
            parts.append(t)
        elif path.is_file() and path.suffix.lower() == ".csv":
            if not is_a4nn_csv(path):
                raise AnalyzerError(
                    f"{path} is not an A4NN commons CSV (columns {sorted(A4NN_CSV_COLUMNS)} "
                    "expected); give a run directory, a commons folder or an A4NN CSV"
                )
            parts.append(load_a4nn_csv(path, label))
        elif not path.exists():
            raise FileNotFoundError(f"{path} does not exist")
        else:
            raise AnalyzerError(f"{path}: not a run directory, commons folder or A4NN commons CSV")
    return concat(parts)


load_many = load


def _distinct_names(paths: list[Path]) -> list[str]:
    names = [p.name for p in paths]
    for depth in range(1, 6):
        if len(set(names)) == len(names):
            return names
        names = [
            "/".join(p.resolve().parts[-depth - 1 :]) if names.count(n) > 1 else n
            for p, n in zip(paths, names, strict=True)
        ]
    return [f"{i}:{n}" for i, n in enumerate(names)]


def _rename(t: Tables, old: str, new: str) -> Tables:
    if old == new:
        return t
    models, epochs, runs = t.models.copy(), t.epochs.copy(), t.runs.copy()
    for df in (models, epochs, runs):
        df.loc[df["run"] == old, "run"] = new
    meta = {new if k == old else k: v for k, v in t.meta.items()}
    return Tables(models, epochs, runs, meta)


def finite(x: Any) -> bool:
    try:
        return math.isfinite(float(x))
    except (TypeError, ValueError):
        return False
