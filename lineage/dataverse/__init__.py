"""Publish run bundles to a Dataverse data commons and fetch datasets back (via pyDataverse).

    publish_bundle(bundle_dir, server=..., collection=..., metadata=...) -> PublishReport
    fetch_dataset(pid, server=..., out=...) -> Path
    resolve_token(source) -> str  # a token, a token lookup, else $DATAVERSE_API_TOKEN

See docs/dataverse.md.
"""

from lineage.dataverse.client import (
    DataverseAuthError,
    DataverseClient,
    DataverseError,
    DataverseNotFoundError,
    DataverseRequestError,
    DataverseUnavailableError,
    RetryPolicy,
    TokenError,
    resolve_token,
)
from lineage.dataverse.fetch import ChecksumError, fetch_dataset
from lineage.dataverse.files import BundleError
from lineage.dataverse.metadata import (
    A4NN_PAPER,
    Author,
    Contact,
    DatasetMetadata,
    MetadataError,
    RelatedPublication,
    load_metadata,
)
from lineage.dataverse.publish import PublishReport, publish_bundle

__all__ = [
    "A4NN_PAPER",
    "Author",
    "BundleError",
    "ChecksumError",
    "Contact",
    "DatasetMetadata",
    "DataverseAuthError",
    "DataverseClient",
    "DataverseError",
    "DataverseNotFoundError",
    "DataverseRequestError",
    "DataverseUnavailableError",
    "MetadataError",
    "PublishReport",
    "RelatedPublication",
    "RetryPolicy",
    "TokenError",
    "fetch_dataset",
    "load_metadata",
    "publish_bundle",
    "resolve_token",
]
