"""Publish a run directory: assemble its bundle, then send it to a Dataverse collection.

Metadata comes from `--metadata FILE`, else `RUN_DIR/dataverse.yaml` (YAML with the
fields of `DatasetMetadata`: title, authors, contacts, description, subjects, keywords,
related_publications). A missing title or description is filled from the run.
"""

from __future__ import annotations

import shutil
import tempfile
from collections.abc import Callable
from pathlib import Path

import yaml

from lineage.atomic import read_json
from lineage.bundle import make_bundle
from lineage.dataverse import (
    DatasetMetadata,
    MetadataError,
    PublishReport,
    publish_bundle,
    resolve_token,
)

METADATA_TEMPLATE = """\
title: "A4NN search: <what you searched for>"
authors: [{name: "Last, First", affiliation: "Your institution"}]
contacts: [{name: "Last, First", email: "you@example.org"}]
description: "Every model and epoch of an A4NN neural architecture search."
keywords: [neural architecture search, XFEL, learning curves]
"""


def run_metadata(run_dir: Path, metadata_file: Path | None = None) -> DatasetMetadata:
    """Dataset metadata for `run_dir`, with title/description defaulted from the run."""
    path = Path(metadata_file) if metadata_file else Path(run_dir) / "dataverse.yaml"
    if not path.exists():
        raise MetadataError(
            f"no dataset metadata: {path} does not exist. Write it (or pass --metadata FILE), "
            f"for example:\n{METADATA_TEMPLATE}"
        )
    try:
        raw = yaml.safe_load(path.read_text()) or {}
    except yaml.YAMLError as err:
        raise MetadataError(f"{path}: not valid YAML: {err}") from None
    if not isinstance(raw, dict):
        raise MetadataError(f"{path}: must be a mapping of metadata fields")
    run = read_json(Path(run_dir) / "run.json")
    raw.setdefault("title", f"A4NN neural architecture search: {run.get('name', 'run')}")
    raw.setdefault(
        "description",
        f"Lineage of the A4NN search '{run.get('name')}' (started {run.get('started')}): "
        "genomes, architectures, FLOPs and every epoch's accuracy, loss and prediction.",
    )
    return DatasetMetadata.from_dict(raw, source=str(path))


def publish_run(
    run_dir: Path,
    *,
    server: str,
    collection: str,
    metadata_file: Path | None = None,
    release: str | None = None,
    checkpoints: bool = False,
    token: str | Callable[[], str] | None = None,
) -> PublishReport:
    """Bundle `run_dir` and publish it; rerunning resumes and never duplicates the dataset.

    `token`: the API token, or a callable that looks it up (the command line and the publish
    flow pass `flows.dataverse_secret.dataverse_token`); None means $DATAVERSE_API_TOKEN. It is
    resolved after the metadata check and before the bundle is assembled, so that a missing
    token is reported before anything slow starts.
    """
    run_dir = Path(run_dir)
    if not (run_dir / "run.json").exists():
        raise FileNotFoundError(f"{run_dir} is not an A4NN run directory (no run.json)")
    metadata = run_metadata(run_dir, metadata_file)
    metadata.validate()
    token = resolve_token(token)
    # The bundle is staged in a hidden folder of the run (hard links need the same file
    # system) and removed afterwards: a published run keeps no second run.json inside it,
    # which `analyzer.load_commons` would otherwise load as another run.
    staging = Path(tempfile.mkdtemp(prefix=".a4nn-bundle-", dir=run_dir))
    try:
        bundle = make_bundle(run_dir, out=staging / "bundle", checkpoints=checkpoints)
        return publish_bundle(
            bundle.path,
            server=server,
            collection=collection,
            metadata=metadata,
            token=token,
            release=release,
            state_file=run_dir / "publish.json",
            label=str(run_dir),
        )
    finally:
        shutil.rmtree(staging, ignore_errors=True)
