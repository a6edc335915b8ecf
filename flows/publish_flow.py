"""The `publish` Prefect flow: bundle a finished run and publish it to Dataverse.

Meant to run as a deployment after a search (see prefect.yaml). The API token is never a
flow parameter (Prefect would store it with the flow run): the task reads it from
`DATAVERSE_API_TOKEN` or the Prefect Secret block `dataverse-api-token`
(`flows.dataverse_secret.dataverse_token`). Publishing is idempotent, so the task can retry.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from prefect import flow, get_run_logger, task

from flows.dataverse_secret import dataverse_token
from lineage.publish_run import publish_run


@task(name="publish-bundle", retries=2, retry_delay_seconds=10)
def publish_task(
    run_dir: str,
    server: str,
    collection: str,
    metadata_file: str | None,
    release: str | None,
    checkpoints: bool,
) -> dict[str, Any]:
    report = publish_run(
        Path(run_dir),
        server=server,
        collection=collection,
        metadata_file=Path(metadata_file) if metadata_file else None,
        release=release,
        checkpoints=checkpoints,
        token=dataverse_token,
    )
    return {
        "persistent_id": report.persistent_id,
        "dataset_url": report.dataset_url,
        "version": report.version,
        "uploaded": len(report.uploaded),
        "replaced": len(report.replaced),
        "skipped": len(report.skipped),
        "size_bytes": report.size_bytes,
    }


@flow(name="a4nn-publish")
def publish_flow(
    run_dir: str,
    server: str,
    collection: str,
    metadata_file: str | None = None,
    release: str | None = None,
    checkpoints: bool = False,
) -> dict[str, Any]:
    """Publish `run_dir` to `collection` on `server`; returns the dataset's id and counts."""
    out = publish_task(run_dir, server, collection, metadata_file, release, checkpoints)
    get_run_logger().info(
        "published %s (%s): %d uploaded, %d already there",
        out["persistent_id"],
        out["version"],
        out["uploaded"],
        out["skipped"],
    )
    return out
