"""The run directory: everything one search wrote, in a layout documented in docs/run_dir.md.

    RUN_DIR/
      config.yaml              the validated config the run used
      run.json                 run metadata: name, status, start/end, versions, summary
      adapter_state.json       the NAS adapter's state after its last `tell` (for --resume)
      adapter_state.npz        its arrays, if it holds any (loaded without pickle)
      adapter_state.log.jsonl  its append-only logs, if it keeps any (`lineage.adapter_state`)
      in_flight.json           a steady-state search's candidates in training (for --resume)
      completion_order.txt     finished model ids, one a line, in completion order (while
                               the run goes; `completion_order` in run.json once it ends)
      models.csv               one row per finished model (run-level table)
      epochs.csv               one row per epoch of every finished model (run-level table)
      models.parquet, epochs.parquet   the same tables, typed (joined from tables/ parts)
      tables/<name>/<id>.parquet       each finished model's rows, written as it finishes
      models/<id>/model.json   candidate (space, arch), choice vector, description, cost, result
      models/<id>/epochs.csv   that model's per-epoch rows, rewritten after every epoch
      models/<id>/checkpoints/epoch_NNN.pt

Workers write only inside their own `models/<id>/`; the driver alone writes the run-level
files, so concurrent workers never contend for a file. Every write is atomic. Workers
fsync their files (the model folders are the source of truth `--resume` reconciles
from); the driver's per-model run-level files are not fsynced one by one but in groups
(`RunDir.sync`; docs/run_dir.md, "Durability").
"""

from __future__ import annotations

import csv
import io
import json
import math
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from a4nn.types import LEGACY_SPACE, Candidate, Result
from lineage.adapter_state import StateStore
from lineage.atomic import (
    atomic_write_bytes,
    atomic_write_json,
    atomic_write_text,
    fsync_path,
    read_json,
)
from lineage.schema import (
    EPOCH_COLUMNS,
    EPOCH_FIELDS,
    MODEL_COLUMNS,
    SCHEMA_KEY,
    SCHEMA_VERSION,
    rows_table,
    table_bytes,
    table_schema,
)


def _csv_cell(value: Any) -> str:
    """One CSV cell as pandas' `to_csv` writes it (missing and NaN empty, floats by repr)."""
    if value is None:
        return ""
    kind = getattr(getattr(value, "dtype", None), "kind", "")  # numpy scalars
    if isinstance(value, bool) or kind == "b":
        return "True" if value else "False"
    if isinstance(value, float) or kind == "f":
        number = float(value)
        return "" if math.isnan(number) else repr(number)
    if isinstance(value, int) or kind in ("i", "u"):
        return str(int(value))
    return str(value)


def _csv_bytes(rows: list[dict[str, Any]], columns: list[str]) -> str:
    """Rows as CSV text, one column per name (missing keys empty).

    The standard library's writer, not pandas: a worker writes its model's epochs.csv after
    every epoch and would otherwise import pandas (0.2-0.3 s of CPU) before its first
    model. Cells are written as pandas writes them, so either reads the other's files.
    """
    buf = io.StringIO()
    writer = csv.writer(buf, lineterminator="\n")
    writer.writerow(columns)
    writer.writerows([_csv_cell(row.get(name)) for name in columns] for row in rows)
    return buf.getvalue()


def _float(cell: str) -> float | None:
    value = float(cell)
    return None if math.isnan(value) else value  # a null, as pandas would give Arrow


def _bool(cell: str) -> bool:
    if cell in ("True", "False"):
        return cell == "True"
    raise ValueError(f"not a boolean: {cell!r}")


_CELL = {"int64": lambda c: int(float(c)), "float64": _float, "bool_": _bool, "string": str}


@dataclass
class ModelDir:
    """One model's folder; written by the worker that trains it."""

    root: Path
    model_id: int

    @property
    def epochs_path(self) -> Path:
        return self.root / "epochs.csv"

    @property
    def meta_path(self) -> Path:
        return self.root / "model.json"

    def checkpoint_path(self, epoch: int) -> Path:
        return self.root / "checkpoints" / f"epoch_{epoch:03d}.pt"

    def write_meta(self, meta: dict[str, Any]) -> None:
        atomic_write_json(self.meta_path, meta)

    def read_meta(self) -> dict[str, Any]:
        return read_json(self.meta_path) if self.meta_path.exists() else {}

    def write_epochs(self, rows: list[dict[str, Any]]) -> None:
        atomic_write_text(self.epochs_path, _csv_bytes(rows, EPOCH_COLUMNS))

    def read_epochs(self) -> list[dict[str, Any]]:
        if not self.epochs_path.exists():
            return []
        import pandas as pd

        df = pd.read_csv(self.epochs_path)
        return df.to_dict("records")

    def epoch_rows(self) -> list[dict[str, Any]]:
        """The epochs table's rows of this model, typed by the lineage schema (an empty
        cell is None), read without pandas: what `RunDir.append_model` writes."""
        if not self.epochs_path.exists():
            return []
        with open(self.epochs_path, newline="", encoding="utf-8") as fh:
            reader = csv.reader(fh)
            header = next(reader, [])
            rows = list(reader)
        parse = [_CELL.get(dict(EPOCH_FIELDS).get(name, "string"), str) for name in header]
        return [
            {
                name: (fn(cell) if cell != "" else None)
                for name, fn, cell in zip(header, parse, row, strict=False)
            }
            for row in rows
        ]

    def result(self) -> Result | None:
        """The finished model's result, if the worker got as far as recording one."""
        meta = self.read_meta()
        return Result.from_dict(meta["result"]) if "result" in meta else None


class RunDir:
    """Create, reopen and summarise a run directory."""

    def __init__(self, root: Path):
        self.root = Path(root)
        self._state = StateStore(self.adapter_state_path)
        self._in_flight_json: dict[int, str | None] = {}  # model id -> its candidate's JSON

    # -- layout -----------------------------------------------------------------
    @property
    def run_json(self) -> Path:
        return self.root / "run.json"

    @property
    def adapter_state_path(self) -> Path:
        return self.root / "adapter_state.json"

    def model(self, model_id: int) -> ModelDir:
        return ModelDir(self.root / "models" / f"{model_id:05d}", model_id)

    # -- lifecycle --------------------------------------------------------------
    @classmethod
    def create(cls, root: Path, config_yaml: str, meta: dict[str, Any]) -> RunDir:
        """Start a new run; refuses a folder that already holds one (use --resume)."""
        run = cls(root)
        if run.run_json.exists():
            raise FileExistsError(
                f"{root} already holds a run; pass --resume to continue it, "
                "or choose another --out folder"
            )
        run.root.mkdir(parents=True, exist_ok=True)
        atomic_write_text(run.root / "config.yaml", config_yaml)
        atomic_write_json(
            run.run_json, {"status": "running", "schema_version": SCHEMA_VERSION, **meta}
        )
        return run

    @classmethod
    def open(cls, root: Path) -> RunDir:
        run = cls(root)
        if not run.run_json.exists():
            raise FileNotFoundError(
                f"{root} holds no run (no run.json); start one with `a4nn run CONFIG --out {root}`"
            )
        return run

    def read_meta(self) -> dict[str, Any]:
        return read_json(self.run_json)

    def remove_temp_files(self) -> int:
        """Delete the temporary files of atomic writes a killed run left (`.NAME.*.tmp`).

        Only the holder of the run's lock may call it: a live writer's temp file would
        go too. Returns how many were removed."""
        removed = 0
        for tmp in self.root.rglob(".*.tmp"):
            if tmp.is_file():
                tmp.unlink(missing_ok=True)
                removed += 1
        return removed

    def update_meta(self, **fields: Any) -> None:
        meta = self.read_meta()
        meta.update(fields)
        atomic_write_json(self.run_json, meta)

    # -- candidates in flight (steady state) -------------------------------------
    def save_in_flight(self, cands: list[dict[str, Any]]) -> None:
        """The candidates a steady-state search has in flight (compact JSON, atomic; synced
        by `sync`). Each candidate's JSON is encoded once (a model id's candidate never
        changes), so a write costs a join of the texts, whatever the number in flight."""
        cache = self._in_flight_json
        texts = {int(d["model_id"]): cache.get(int(d["model_id"])) for d in cands}
        for d in cands:
            if texts[int(d["model_id"])] is None:
                texts[int(d["model_id"])] = json.dumps(d, separators=(",", ":"))
        self._in_flight_json = texts
        text = "[" + ",".join(texts.values()) + "]"
        atomic_write_text(self.root / "in_flight.json", text, durable=False)

    def load_in_flight(self) -> list[dict[str, Any]]:
        path = self.root / "in_flight.json"
        if path.exists():
            return list(read_json(path))
        return list(self.read_meta().get("in_flight", []))  # runs from before in_flight.json

    # -- adapter state ----------------------------------------------------------
    def save_adapter_state(
        self, state: dict[str, Any], logs: Mapping[str, Sequence[Any]] | None = None
    ) -> None:
        """JSON, with any numpy arrays in `adapter_state.npz` and the append-only `logs`
        (an adapter's `state_parts()`) in `adapter_state.log.jsonl`, of which each save
        appends only the new items (`lineage.adapter_state.StateStore`). Synced by `sync`."""
        self._state.save(state, logs)

    def load_adapter_state(self) -> dict[str, Any] | None:
        """The saved state, logs joined in; later saves append to the log from there."""
        return self._state.load()

    # -- completion order -------------------------------------------------------
    @property
    def completion_order_path(self) -> Path:
        return self.root / "completion_order.txt"

    def append_completed(self, model_id: int) -> None:
        """One finished model at the end of `completion_order.txt` (an append; synced
        by `sync`)."""
        with open(self.completion_order_path, "a", encoding="utf-8") as fh:
            fh.write(f"{int(model_id)}\n")

    def completion_order(self) -> list[int]:
        """Finished models in completion order: run.json's `completion_order` (written
        when a run ends), then `completion_order.txt` (a line cut by a kill is skipped)."""
        order = [int(m) for m in self.read_meta().get("completion_order", [])]
        seen = set(order)
        if self.completion_order_path.exists():
            text = self.completion_order_path.read_text(encoding="utf-8")
            for line in text.split("\n")[:-1]:  # the last is empty, or cut by a kill
                if line.strip().isdigit() and int(line) not in seen:
                    order.append(int(line))
                    seen.add(int(line))
        return order

    def write_completion_order(self, order: list[int]) -> None:
        """`order` into run.json (readers: the analyzer), and as the whole of
        `completion_order.txt`."""
        text = "".join(f"{int(m)}\n" for m in order)
        atomic_write_text(self.completion_order_path, text)
        self.update_meta(completion_order=list(order))

    # -- durability -------------------------------------------------------------
    def sync(self) -> None:
        """fsync the driver's per-model files (the adapter's state and its log, the
        candidates in flight, the completion order), then the run folder's entries: what
        is written before a sync survives an OS crash or a power loss. The run-level
        tables are not synced: `--resume` rebuilds them from the model folders."""
        paths = [*self._state.files(), self.root / "in_flight.json", self.completion_order_path]
        for path in paths:
            if path.exists():
                fsync_path(path)
        fsync_path(self.root)

    # -- finished models --------------------------------------------------------
    def model_dirs(self) -> list[ModelDir]:
        """Every model folder of the run, by model id."""
        models = self.root / "models"
        if not models.is_dir():
            return []
        dirs = [d for d in models.iterdir() if d.is_dir() and d.name.isdigit()]
        return [ModelDir(d, int(d.name)) for d in sorted(dirs, key=lambda d: int(d.name))]

    def finished_results(self) -> dict[int, Result]:
        """Results of every model whose worker recorded one (used by --resume)."""
        out: dict[int, Result] = {}
        for md in self.model_dirs():
            res = md.result()
            if res is not None:
                out[res.model_id] = res
        return out

    def table_part(self, name: str, model_id: int) -> Path:
        """One finished model's rows of table `name`, as a Parquet part."""
        return self.root / "tables" / name / f"{model_id:05d}.parquet"

    def _model_rows(self, model_id: int) -> dict[str, list[dict[str, Any]]] | None:
        md = self.model(model_id)
        meta = md.read_meta()
        if "result" not in meta:
            return None
        return {"models": [model_row(meta)], "epochs": md.epoch_rows()}

    def _write_parts(self, model_id: int, rows: dict[str, list[dict[str, Any]]]) -> None:
        """Not fsynced: `--resume` rewrites every part from the model folders."""
        for name in TABLES:
            path = self.table_part(name, model_id)
            table = rows_table(rows[name], name, str(path))
            atomic_write_bytes(path, table_bytes(table), durable=False)

    def append_model(self, model_id: int) -> None:
        """Add one finished model to the run-level tables, at a cost that does not grow
        with the models already held: its rows become Parquet parts
        (`tables/<name>/<id>.parquet`, written atomically) and lines appended to
        `models.csv` / `epochs.csv`. `compact_tables` joins the parts into
        `models.parquet` / `epochs.parquet` (at the end of a run, or on demand)."""
        rows = self._model_rows(model_id)
        if rows is None:
            return
        self._write_parts(model_id, rows)
        for name in TABLES:
            columns = table_schema(name).names
            path = self.root / f"{name}.csv"
            text = _csv_bytes(rows[name], columns)
            if path.exists() and path.stat().st_size > 0:
                text = text.split("\n", 1)[1]  # the header is there already
            with open(path, "a", encoding="utf-8") as fh:
                fh.write(text)

    def compact_tables(self, order: Iterable[int]) -> None:
        """Join the parts of the models in `order` into the run-level Parquet tables and
        rewrite the CSVs from them (the tables readers load: analyzer, publish)."""
        import pyarrow as pa
        import pyarrow.parquet as pq

        order = list(order)
        for name in TABLES:
            schema = table_schema(name)
            parts = [
                pq.read_table(self.table_part(name, mid)).cast(schema)
                for mid in order
                if self.table_part(name, mid).exists()
            ]
            table = pa.concat_tables(parts) if parts else schema.empty_table()
            # the cast dropped the parts' schema version; readers (read_table) need it
            table = table.replace_schema_metadata({SCHEMA_KEY: SCHEMA_VERSION.encode()})
            atomic_write_bytes(self.root / f"{name}.parquet", table_bytes(table))
            atomic_write_text(
                self.root / f"{name}.csv", _csv_bytes(table.to_pylist(), schema.names)
            )

    def write_tables(self, order: Iterable[int]) -> None:
        """Rebuild the run-level tables from the model folders, in completion order.

        Every finished model's parts are (re)written from its folder, then compacted:
        what `--resume` does to reconcile tables with what the workers finished.
        Parquet (typed, schema-versioned) for the lineage, CSV beside it for people and
        for tools without Parquet; both are validated against `lineage.schema`.
        """
        order = list(order)
        done = []
        for mid in order:
            rows = self._model_rows(mid)
            if rows is not None:
                self._write_parts(mid, rows)
                done.append(mid)
        self.compact_tables(done)


TABLES = ("models", "epochs")


def model_row(meta: dict[str, Any]) -> dict[str, Any]:
    """One `models` table row from a model's model.json."""
    cand, res = meta["candidate"], meta["result"]
    epochs = int(res.get("epochs_trained", 0))
    return {
        "model_id": cand["model_id"],
        "generation": cand.get("generation", 0),
        "parents": json.dumps(cand.get("parents", [])),
        "proposer": cand.get("proposer", ""),
        "space": cand.get("space", LEGACY_SPACE),
        "arch": json.dumps(cand.get("arch", cand.get("genome"))),
        "choices": json.dumps(meta.get("choices")),
        "genome": json.dumps(cand.get("arch", cand.get("genome"))),  # schema 1.0's name
        "architecture": json.dumps(meta.get("architecture")),
        "seed": meta.get("seed"),
        "termination_epoch": epochs - 1 if epochs else None,
        **{k: res.get(k) for k in MODEL_COLUMNS if k in res},
    }


def load_candidate(meta: dict[str, Any]) -> Candidate:
    return Candidate.from_dict(meta["candidate"])
