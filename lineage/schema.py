"""The lineage's versioned table schemas, checked when tables are written and read.

`SCHEMA_VERSION` goes into `run.json` and into each Parquet file's metadata; readers
refuse a major version they do not know, and name the file and column that break the
schema. Documented in docs/lineage.md.
"""

from __future__ import annotations

import functools
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    import pandas as pd
    import pyarrow as pa

SCHEMA_VERSION = "1.1"
SCHEMA_KEY = b"a4nn_lineage_schema"


class SchemaError(ValueError):
    """A lineage table that does not match the documented schema."""


EPOCH_FIELDS: tuple[tuple[str, str], ...] = (
    ("model_id", "int64"),
    ("epoch", "int64"),
    ("train_acc", "float64"),
    ("val_acc", "float64"),
    ("train_loss", "float64"),
    ("val_loss", "float64"),
    ("epoch_seconds", "float64"),
    ("prediction", "float64"),
    ("converged", "bool_"),
    ("engine_family", "string"),
    ("engine_params", "string"),  # JSON object of the fitted parameters
    ("checkpoint", "string"),
    ("checkpoint_sha256", "string"),
    ("checkpoint_wait_seconds", "float64"),  # training's wait for the background writer
)

MODEL_FIELDS: tuple[tuple[str, str], ...] = (
    ("model_id", "int64"),
    ("generation", "int64"),
    ("parents", "string"),  # JSON list
    ("proposer", "string"),
    ("space", "string"),  # the search space's registered name (schema 1.1)
    ("arch", "string"),  # JSON: the architecture in its space's form (schema 1.1)
    ("choices", "string"),  # JSON list of ints: its choice vector (schema 1.1)
    ("genome", "string"),  # schema 1.0's name for `arch` (same JSON), kept for readers
    ("architecture", "string"),  # JSON decoded graph
    ("seed", "int64"),
    ("mflops", "float64"),
    ("params", "int64"),
    ("status", "string"),  # converged | budget | failed
    ("reason", "string"),
    ("fitness", "float64"),
    ("epochs_trained", "int64"),
    ("termination_epoch", "int64"),  # e_t: 0-based index of the last trained epoch
    ("last_val_acc", "float64"),
    ("best_val_acc", "float64"),
    ("train_seconds", "float64"),
)

EPOCH_COLUMNS = [name for name, _ in EPOCH_FIELDS]
MODEL_COLUMNS = [name for name, _ in MODEL_FIELDS]
_FIELDS = {"epochs": EPOCH_FIELDS, "models": MODEL_FIELDS}
_CONSTANTS = {"EPOCHS": "epochs", "MODELS": "models"}


@functools.cache
def table_schema(name: str) -> pa.Schema:
    """The Arrow schema of lineage table `name` ("epochs" or "models"), built once.

    pandas and pyarrow cost about 0.3 s of CPU to import; building the schemas on first
    use keeps them out of what `a4nn run` imports to start (its first table is written
    once a model has finished).
    """
    import pyarrow as pa

    return pa.schema([(col, getattr(pa, kind)()) for col, kind in _FIELDS[name]])


def __getattr__(name: str) -> Any:
    """`EPOCHS`, `MODELS` and `TABLES` (name -> schema), built on first use."""
    if name == "TABLES":
        return {table: table_schema(table) for table in _FIELDS}
    if name in _CONSTANTS:
        return table_schema(_CONSTANTS[name])
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def to_table(rows: list[dict[str, Any]], schema: pa.Schema, where: str) -> pa.Table:
    """Rows as an Arrow table of `schema`; a missing column or wrong type is a SchemaError."""
    import pandas as pd
    import pyarrow as pa

    df = pd.DataFrame(rows, columns=schema.names)
    try:
        table = pa.Table.from_pandas(df, schema=schema, preserve_index=False)
    except (pa.ArrowInvalid, pa.ArrowTypeError, TypeError, ValueError) as err:
        raise SchemaError(
            f"{where}: rows do not match lineage schema {SCHEMA_VERSION}: {err}"
        ) from None
    return table.replace_schema_metadata({SCHEMA_KEY: SCHEMA_VERSION.encode()})


def rows_table(rows: list[dict[str, Any]], name: str, where: str) -> pa.Table:
    """Rows as an Arrow table of lineage table `name`, as `to_table` makes it (NaN and
    missing values are nulls) but built straight from the rows, without pandas (a few
    ms less per finished model); rows Arrow does not take as they are (an int column
    holding 3.0, say) go through `to_table`."""
    import pyarrow as pa

    schema = table_schema(name)
    clean = [
        {k: (None if isinstance(v, float) and v != v else v) for k, v in row.items()}
        for row in rows
    ]
    try:
        table = pa.Table.from_pylist(clean, schema=schema)
    except (pa.ArrowInvalid, pa.ArrowTypeError, TypeError, ValueError):
        return to_table(rows, schema, where)
    return table.replace_schema_metadata({SCHEMA_KEY: SCHEMA_VERSION.encode()})


def table_bytes(table: pa.Table) -> bytes:
    import pyarrow as pa
    import pyarrow.parquet as pq

    sink = pa.BufferOutputStream()
    pq.write_table(table, sink)
    return sink.getvalue().to_pybytes()


def read_table(path: Path, name: str) -> pd.DataFrame:
    """Read a lineage Parquet table, checking its schema version and columns."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    schema = table_schema(name)
    try:
        table = pq.read_table(path)
    except (OSError, pa.ArrowInvalid) as err:
        raise SchemaError(f"{path}: not a readable Parquet file: {err}") from None
    meta = table.schema.metadata or {}
    version = meta.get(SCHEMA_KEY, b"").decode() or "unknown"
    if version.split(".")[0] != SCHEMA_VERSION.split(".")[0]:
        raise SchemaError(
            f"{path}: lineage schema {version}, this A4NN reads {SCHEMA_VERSION}; "
            "upgrade A4NN to read it"
        )
    missing: list[str] = []
    for field in schema:
        if field.name not in table.schema.names:
            if field.name in ADDED_IN_1_1 and version == "1.0":
                missing.append(field.name)
                continue
            raise SchemaError(f"{path}: column '{field.name}' is missing")
        got = table.schema.field(field.name).type
        if got != field.type and not pa.types.is_null(got):
            raise SchemaError(f"{path}: column '{field.name}' is {got}, expected {field.type}")
    df = table.to_pandas()
    if missing:  # a 1.0 table: every model was NSGA-Net's macro genome
        df["space"] = "nsganet-macro"
        df["arch"] = df["genome"]
        df["choices"] = None
    return df


ADDED_IN_1_1 = ("space", "arch", "choices")
"""Columns schema 1.1 added; a 1.0 table is read with them filled in."""
