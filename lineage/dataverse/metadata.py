"""Dataset metadata in Dataverse's citation block, built with pyDataverse's `models.Dataset`.

Dataverse refuses a dataset without title, author, contact e-mail, description and subject
(the citation block's required fields), and checks subjects against a controlled vocabulary.
We check the same before sending anything, so a missing field is reported by name locally
instead of as a server-side "Validation Failed" after the upload has started.
"""

from __future__ import annotations

import contextlib
import hashlib
import io
import json
import re
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import yaml
from pyDataverse.models import Dataset

__all__ = [
    "A4NN_PAPER",
    "SUBJECTS",
    "Author",
    "Contact",
    "DatasetMetadata",
    "MetadataError",
    "RelatedPublication",
    "dataset_json",
    "load_metadata",
    "metadata_digest",
]

SUBJECTS = (
    "Agricultural Sciences",
    "Arts and Humanities",
    "Astronomy and Astrophysics",
    "Business and Management",
    "Chemistry",
    "Computer and Information Science",
    "Earth and Environmental Sciences",
    "Engineering",
    "Law",
    "Mathematical Sciences",
    "Medicine, Health and Life Sciences",
    "Physics",
    "Social Sciences",
    "Other",
)
"""The citation block's `subject` vocabulary (Dataverse's citation.tsv)."""

PUBLICATION_ID_TYPES = (
    "ark", "arXiv", "bibcode", "cstr", "doi", "ean13", "eissn", "handle", "isbn", "issn",
    "istc", "lissn", "lsid", "pmid", "purl", "upc", "url", "urn", "DASH-NRS",
)  # fmt: skip
"""The citation block's `publicationIDType` vocabulary."""

LICENSES = {
    "CC0 1.0": "http://creativecommons.org/publicdomain/zero/1.0",
    "CC BY 4.0": "http://creativecommons.org/licenses/by/4.0",
}
"""Licenses a default Dataverse installation offers (name -> URI)."""

_EMAIL = re.compile(r"^[^@\s]+@[^@\s]+\.[^@\s]+$")


class MetadataError(ValueError):
    """Dataset metadata that Dataverse would refuse; the message names the field."""


@dataclass(frozen=True)
class Author:
    name: str  # "Family, Given" is Dataverse's convention
    affiliation: str | None = None
    orcid: str | None = None


@dataclass(frozen=True)
class Contact:
    name: str
    email: str
    affiliation: str | None = None


@dataclass(frozen=True)
class RelatedPublication:
    citation: str
    id_type: str | None = "doi"
    id_number: str | None = None
    url: str | None = None


A4NN_PAPER = RelatedPublication(
    citation=(
        "Georgia Channing, Ria Patel, Paula Olaya, Ariel Keller Rorabaugh, Osamu Miyashita, "
        "Silvina Caino-Lores, Catherine Schuman, Florence Tama, and Michela Taufer. 2023. "
        "Composable Workflow for Accelerating Neural Architecture Search Using In Situ "
        "Analytics for Protein Classification. In 52nd International Conference on Parallel "
        "Processing (ICPP 2023). ACM. https://doi.org/10.1145/3605573.3605636"
    ),
    id_type="doi",
    id_number="10.1145/3605573.3605636",
    url="https://doi.org/10.1145/3605573.3605636",
)

DEFAULT_KEYWORDS = (
    "neural architecture search",
    "learning curve prediction",
    "early termination",
    "in situ analytics",
    "lineage",
    "A4NN",
)


@dataclass
class DatasetMetadata:
    """What a published A4NN run says about itself (Dataverse citation metadata)."""

    title: str
    authors: list[Author]
    contacts: list[Contact]
    description: str
    subjects: list[str] = field(default_factory=lambda: ["Computer and Information Science"])
    keywords: list[str] = field(default_factory=lambda: list(DEFAULT_KEYWORDS))
    related_publications: list[RelatedPublication] = field(default_factory=lambda: [A4NN_PAPER])
    license: str | None = None  # None: the installation's default (CC0 1.0 on most)

    def validate(self) -> None:
        """Raise MetadataError naming the first field Dataverse would refuse."""
        if not isinstance(self.title, str) or not self.title.strip():
            raise MetadataError("dataset metadata: 'title' is required and must be non-empty")
        if not self.authors:
            raise MetadataError("dataset metadata: 'authors' needs at least one author")
        for i, a in enumerate(self.authors):
            if not a.name or not a.name.strip():
                raise MetadataError(f"dataset metadata: 'authors[{i}].name' is empty")
        if not self.contacts:
            raise MetadataError(
                "dataset metadata: 'contact' is required (name and email of who answers "
                "questions about the data)"
            )
        for i, c in enumerate(self.contacts):
            if not c.name or not c.name.strip():
                raise MetadataError(f"dataset metadata: 'contacts[{i}].name' is empty")
            if not c.email or not _EMAIL.match(c.email):
                raise MetadataError(
                    f"dataset metadata: 'contacts[{i}].email' = {c.email!r} is not an e-mail "
                    "address; Dataverse requires a valid contact e-mail"
                )
        if not isinstance(self.description, str) or not self.description.strip():
            raise MetadataError("dataset metadata: 'description' is required and must be non-empty")
        if not self.subjects:
            raise MetadataError(
                f"dataset metadata: 'subjects' needs at least one of {', '.join(SUBJECTS)}"
            )
        for s in self.subjects:
            if s not in SUBJECTS:
                raise MetadataError(
                    f"dataset metadata: subject {s!r} is not in Dataverse's controlled "
                    f"vocabulary; use one of: {', '.join(SUBJECTS)}"
                )
        for i, k in enumerate(self.keywords):
            if not isinstance(k, str) or not k.strip():
                raise MetadataError(f"dataset metadata: 'keywords[{i}]' is empty")
        for i, p in enumerate(self.related_publications):
            if not p.citation or not p.citation.strip():
                raise MetadataError(
                    f"dataset metadata: 'related_publications[{i}].citation' is empty"
                )
            if p.id_type is not None and p.id_type not in PUBLICATION_ID_TYPES:
                raise MetadataError(
                    f"dataset metadata: 'related_publications[{i}].id_type' = {p.id_type!r} is "
                    f"not one of {', '.join(PUBLICATION_ID_TYPES)}"
                )
        if self.license is not None and self.license not in LICENSES:
            raise MetadataError(
                f"dataset metadata: license {self.license!r} is unknown; use one of "
                f"{', '.join(LICENSES)} or leave it out for the server's default"
            )

    def _flat(self) -> dict[str, Any]:
        """pyDataverse's flat attribute dict for `models.Dataset.set`."""
        authors = []
        for a in self.authors:
            d: dict[str, Any] = {"authorName": a.name}
            if a.affiliation:
                d["authorAffiliation"] = a.affiliation
            if a.orcid:
                d["authorIdentifierScheme"] = "ORCID"
                d["authorIdentifier"] = a.orcid
            authors.append(d)
        contacts = []
        for c in self.contacts:
            d = {"datasetContactName": c.name, "datasetContactEmail": c.email}
            if c.affiliation:
                d["datasetContactAffiliation"] = c.affiliation
            contacts.append(d)
        flat: dict[str, Any] = {
            "title": self.title,
            "author": authors,
            "datasetContact": contacts,
            "dsDescription": [{"dsDescriptionValue": self.description}],
            "subject": list(self.subjects),
        }
        if self.keywords:
            flat["keyword"] = [{"keywordValue": k} for k in self.keywords]
        pubs = []
        for p in self.related_publications:
            d = {"publicationCitation": p.citation}
            if p.id_type:
                d["publicationIDType"] = p.id_type
            if p.id_number:
                d["publicationIDNumber"] = p.id_number
            if p.url:
                d["publicationURL"] = p.url
            pubs.append(d)
        if pubs:
            flat["publication"] = pubs
        return flat

    def to_dataverse_json(self) -> dict[str, Any]:
        """The body of `POST /api/dataverses/{alias}/datasets` (Dataverse's native JSON)."""
        self.validate()
        ds = Dataset()
        with contextlib.redirect_stdout(io.StringIO()) as chatter:  # pyDataverse prints
            ds.set(self._flat())
            try:
                ok = ds.validate_json()
            except Exception as err:  # jsonschema.ValidationError
                raise MetadataError(
                    f"dataset metadata failed pyDataverse's schema: {err}"
                ) from None
            body = json.loads(ds.json(validate=False))
        if not ok:
            raise MetadataError(
                f"dataset metadata failed pyDataverse's checks: {chatter.getvalue()}"
            )
        body["datasetVersion"]["metadataBlocks"]["citation"]["displayName"] = "Citation Metadata"
        if self.license:
            body["datasetVersion"]["license"] = {
                "name": self.license,
                "uri": LICENSES[self.license],
            }
        return body

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, d: dict[str, Any], *, source: str = "dataset metadata") -> DatasetMetadata:
        """Build from a plain dict (a YAML file, a config section); unknown keys are errors."""
        if not isinstance(d, dict):
            raise MetadataError(f"{source}: expected a mapping, got {type(d).__name__}")
        aliases = {
            "author": "authors",
            "contact": "contacts",
            "subject": "subjects",
            "keyword": "keywords",
            "related_publication": "related_publications",
        }
        known = {"title", "authors", "contacts", "description", "subjects", "keywords",
                 "related_publications", "license"}  # fmt: skip
        data: dict[str, Any] = {}
        for key, value in d.items():
            name = aliases.get(key, key)
            if name not in known:
                raise MetadataError(
                    f"{source}: unknown field {key!r}; known fields: {', '.join(sorted(known))}"
                )
            data[name] = value
        for req in ("title", "authors", "contacts", "description"):
            if req not in data or data[req] in (None, "", []):
                shown = "contact" if req == "contacts" else req
                raise MetadataError(f"{source}: field {shown!r} is required")

        def listify(v: Any) -> list[Any]:
            return list(v) if isinstance(v, list | tuple) else [v]

        def build(klass: type, v: Any, fieldname: str, first: str) -> Any:
            if isinstance(v, klass):
                return v
            if isinstance(v, str):
                return klass(**{first: v})
            if isinstance(v, dict):
                try:
                    return klass(**v)
                except TypeError as err:
                    raise MetadataError(f"{source}: {fieldname}: {err}") from None
            raise MetadataError(f"{source}: {fieldname}: expected a mapping, got {v!r}")

        if "contacts" in data:
            for c in listify(data["contacts"]):
                if isinstance(c, str):
                    raise MetadataError(f"{source}: contact {c!r} needs both 'name' and 'email'")
        out = cls(
            title=data["title"],
            authors=[build(Author, a, "authors", "name") for a in listify(data["authors"])],
            contacts=[build(Contact, c, "contact", "name") for c in listify(data["contacts"])],
            description=data["description"],
        )
        if "subjects" in data:
            out.subjects = [str(s) for s in listify(data["subjects"])]
        if "keywords" in data:
            out.keywords = [str(k) for k in listify(data["keywords"] or [])]
        if "related_publications" in data:
            out.related_publications = [
                build(RelatedPublication, p, "related_publications", "citation")
                for p in listify(data["related_publications"] or [])
            ]
        if "license" in data:
            out.license = data["license"]
        out.validate()
        return out


def load_metadata(path: Path) -> DatasetMetadata:
    """Read dataset metadata from a YAML or JSON file (same fields as DatasetMetadata)."""
    path = Path(path)
    try:
        data = yaml.safe_load(path.read_text())
    except FileNotFoundError:
        raise MetadataError(f"{path}: metadata file not found") from None
    except yaml.YAMLError as err:
        raise MetadataError(f"{path}: not valid YAML/JSON: {err}") from None
    return DatasetMetadata.from_dict(data, source=str(path))


def dataset_json(metadata: DatasetMetadata | dict[str, Any]) -> dict[str, Any]:
    """Dataverse JSON for `metadata`: a DatasetMetadata, its dict form, or native JSON as-is."""
    if isinstance(metadata, DatasetMetadata):
        return metadata.to_dataverse_json()
    if isinstance(metadata, dict) and "datasetVersion" in metadata:
        return metadata  # already Dataverse's native format; the server validates it
    return DatasetMetadata.from_dict(metadata).to_dataverse_json()


def metadata_digest(body: dict[str, Any]) -> str:
    """SHA-256 of the canonical JSON, to notice metadata changes between publishes."""
    return hashlib.sha256(json.dumps(body, sort_keys=True).encode()).hexdigest()
