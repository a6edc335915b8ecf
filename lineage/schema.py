"""The lineage's versioned table schemas, checked when tables are written and read.

`SCHEMA_VERSION` goes into `run.json` and into each Parquet file's metadata; readers
refuse a major version they do not know, and name the file and column that break the
schema. Documented in docs/lineage.md.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq

SCHEMA_VERSION = "1.0"
SCHEMA_KEY = b"a4nn_lineage_schema"


class SchemaError(ValueError):
    """A lineage table that does not match the documented schema."""


EPOCHS = pa.schema(
    [
        ("model_id", pa.int64()),
        ("epoch", pa.int64()),
        ("train_acc", pa.float64()),
        ("val_acc", pa.float64()),
        ("train_loss", pa.float64()),
        ("val_loss", pa.float64()),
        ("epoch_seconds", pa.float64()),
        ("prediction", pa.float64()),
        ("converged", pa.bool_()),
        ("engine_family", pa.string()),
        ("engine_params", pa.string()),  # JSON object of the fitted parameters
        ("checkpoint", pa.string()),
        ("checkpoint_sha256", pa.string()),
        ("checkpoint_wait_seconds", pa.float64()),  # training's wait for the background writer
    ]
)

MODELS = pa.schema(
    [
        ("model_id", pa.int64()),
        ("generation", pa.int64()),
        ("parents", pa.string()),  # JSON list
        ("proposer", pa.string()),
        ("genome", pa.string()),  # JSON list of phases of bits
        ("architecture", pa.string()),  # JSON decoded graph
        ("seed", pa.int64()),
        ("mflops", pa.float64()),
        ("params", pa.int64()),
        ("status", pa.string()),  # converged | budget | failed
        ("reason", pa.string()),
        ("fitness", pa.float64()),
        ("epochs_trained", pa.int64()),
        ("termination_epoch", pa.int64()),  # e_t: 0-based index of the last trained epoch
        ("last_val_acc", pa.float64()),
        ("best_val_acc", pa.float64()),
        ("train_seconds", pa.float64()),
    ]
)

TABLES = {"epochs": EPOCHS, "models": MODELS}


def to_table(rows: list[dict[str, Any]], schema: pa.Schema, where: str) -> pa.Table:
    """Rows as an Arrow table of `schema`; a missing column or wrong type is a SchemaError."""
    df = pd.DataFrame(rows, columns=schema.names)
    try:
        table = pa.Table.from_pandas(df, schema=schema, preserve_index=False)
    except (pa.ArrowInvalid, pa.ArrowTypeError, TypeError, ValueError) as err:
        raise SchemaError(
            f"{where}: rows do not match lineage schema {SCHEMA_VERSION}: {err}"
        ) from None
    return table.replace_schema_metadata({SCHEMA_KEY: SCHEMA_VERSION.encode()})


def table_bytes(table: pa.Table) -> bytes:
    sink = pa.BufferOutputStream()
    pq.write_table(table, sink)
    return sink.getvalue().to_pybytes()


def read_table(path: Path, name: str) -> pd.DataFrame:
    """Read a lineage Parquet table, checking its schema version and columns."""
    schema = TABLES[name]
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
    for field in schema:
        if field.name not in table.schema.names:
            raise SchemaError(f"{path}: column '{field.name}' is missing")
        got = table.schema.field(field.name).type
        if got != field.type and not pa.types.is_null(got):
            raise SchemaError(f"{path}: column '{field.name}' is {got}, expected {field.type}")
    return table.to_pandas()
