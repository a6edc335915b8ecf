"""Dataset citation metadata: Dataverse's JSON shape and every refusal named by field."""

from __future__ import annotations

from pathlib import Path

import pytest

from lineage.dataverse.metadata import (
    A4NN_PAPER,
    Author,
    Contact,
    DatasetMetadata,
    MetadataError,
    dataset_json,
    load_metadata,
)

BASE = {
    "title": "A4NN run",
    "authors": [{"name": "Doe, Jane", "affiliation": "UTK", "orcid": "0000-0002-1825-0097"}],
    "contact": {"name": "Jane Doe", "email": "jane@example.org"},
    "description": "Lineage of a search.",
}


def fields_by_name(body: dict) -> dict:
    fields = body["datasetVersion"]["metadataBlocks"]["citation"]["fields"]
    return {f["typeName"]: f for f in fields}


def test_dataverse_json_shape_and_defaults() -> None:
    md = DatasetMetadata.from_dict(BASE)
    f = fields_by_name(md.to_dataverse_json())
    assert f["title"] == {"typeName": "title", "multiple": False, "typeClass": "primitive", "value": "A4NN run"}  # fmt: skip
    author = f["author"]["value"][0]
    assert author["authorName"]["value"] == "Doe, Jane"
    assert author["authorIdentifierScheme"]["typeClass"] == "controlledVocabulary"
    assert author["authorIdentifier"]["value"] == "0000-0002-1825-0097"
    assert f["datasetContact"]["value"][0]["datasetContactEmail"]["value"] == "jane@example.org"
    assert f["dsDescription"]["value"][0]["dsDescriptionValue"]["value"] == "Lineage of a search."
    assert f["subject"]["value"] == ["Computer and Information Science"]
    assert f["subject"]["typeClass"] == "controlledVocabulary"
    assert "neural architecture search" in [
        k["keywordValue"]["value"] for k in f["keyword"]["value"]
    ]
    pub = f["publication"]["value"][0]
    assert pub["publicationIDNumber"]["value"] == "10.1145/3605573.3605636"
    assert pub["publicationIDType"]["value"] == "doi"
    assert "Composable Workflow" in pub["publicationCitation"]["value"]
    assert md.related_publications == [A4NN_PAPER]


@pytest.mark.parametrize(
    ("change", "match"),
    [
        ({"title": ""}, "'title' is required"),
        ({"authors": []}, "'authors' is required"),
        ({"contact": None}, "'contact' is required"),
        ({"contact": "Jane"}, "contact 'Jane' needs both 'name' and 'email'"),
        ({"contact": {"name": "J", "email": "nope"}}, r"'contacts\[0\].email' = 'nope' is not an e-mail"),
        ({"contact": {"name": "J"}}, "email"),
        ({"description": "  "}, "'description' is required"),
        ({"subjects": ["Deep Learning"]}, "subject 'Deep Learning' is not in Dataverse's controlled vocabulary"),
        ({"titel": "typo"}, "unknown field 'titel'"),
        ({"license": "WTFPL"}, "license 'WTFPL' is unknown"),
        ({"related_publications": [{"citation": "x", "id_type": "DOI"}]}, "id_type' = 'DOI'"),
    ],
)  # fmt: skip
def test_refusals_name_the_field(change: dict, match: str) -> None:
    with pytest.raises(MetadataError, match=match):
        DatasetMetadata.from_dict({**BASE, **change})


def test_license_and_aliases() -> None:
    md = DatasetMetadata.from_dict(
        {**BASE, "subject": "Physics", "keyword": ["xfel"], "license": "CC BY 4.0"}
    )
    body = md.to_dataverse_json()
    assert body["datasetVersion"]["license"]["name"] == "CC BY 4.0"
    assert fields_by_name(body)["subject"]["value"] == ["Physics"]


def test_load_metadata_file(tmp_path: Path) -> None:
    path = tmp_path / "dataset.yaml"
    path.write_text(
        'title: From YAML\nauthors: ["Doe, Jane"]\n'
        "contact: {name: Jane, email: jane@example.org}\ndescription: d\n"
    )
    md = load_metadata(path)
    assert md.title == "From YAML" and md.authors == [Author("Doe, Jane")]
    assert md.contacts == [Contact("Jane", "jane@example.org")]
    path.write_text("title: x\nauthors: [a]\n")
    with pytest.raises(MetadataError, match=r"dataset.yaml: field 'contact' is required"):
        load_metadata(path)
    with pytest.raises(MetadataError, match="metadata file not found"):
        load_metadata(tmp_path / "missing.yaml")


def test_native_json_passes_through() -> None:
    native = DatasetMetadata.from_dict(BASE).to_dataverse_json()
    assert dataset_json(native) is native
    assert dataset_json(BASE) == native
