"""The bundle's Workflow Run RO-Crate (issue 19, item 3): written with `rocrate`, validated on
write and on fetch, and read back by the `rocrate` library."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import pytest
import yaml
from rocrate.rocrate import ROCrate

from lineage.bundle import make_bundle
from lineage.dataverse import fetch_dataset, publish_bundle
from lineage.provenance import CRATE_FILE, PROFILES, ProvenanceError, validate_crate
from tests.dataverse_standin import DataverseStandin
from tests.test_dataverse_publish import FAST, META, TOKEN

RUN = {
    "name": "tiny",
    "status": "finished",
    "schema_version": "1.1",
    "started": "2026-01-02T03:04:05+00:00",
    "finished": "2026-01-02T04:05:06+00:00",
    "wall_seconds": 3661.0,
    "versions": {"a4nn": "0.1.0", "python": "3.11.7", "torch": "2.13.0+cpu", "prefect": "3.8.8"},
    "hardware": {"host": "node7", "cpus": 16, "gpus": ["NVIDIA H100"]},
    "dataset": {"path": "/data/xfel", "files": 3, "sha256": "d" * 64},
}
CONFIG = {
    "name": "tiny",
    "seed": 0,
    "data": {"source": "xfel", "xfel": {"intensity": 1e15}, "cache_dir": "/data"},
    "train": {"epochs": 3, "lr": 0.05, "device": None},
    "search": {"adapter": "nsganet", "space": "nsganet-macro", "options": {"preset": "quickstart"}},
    "engine": {"preset": "paper"},
    "lineage": {"checkpoints": "every"},
}


def fake_run(root: Path) -> Path:
    """A run directory's files (contents are not parsed by the bundle or the crate)."""
    root.mkdir(parents=True)
    (root / "run.json").write_text(json.dumps(RUN))
    (root / "config.yaml").write_text(yaml.safe_dump(CONFIG))
    for name in ("models.parquet", "epochs.parquet", "adapter_state.npz"):
        (root / name).write_bytes(name.encode() * 10)
    (root / "models.csv").write_text("model_id\n0\n1\n")
    (root / "epochs.csv").write_text("model_id,epoch\n0,0\n1,0\n")
    (root / "adapter_state.json").write_text("{}")
    for m in (0, 1):
        md = root / "models" / f"{m:05d}"
        (md / "checkpoints").mkdir(parents=True)
        (md / "model.json").write_text(json.dumps({"candidate": {"model_id": m}}))
        (md / "epochs.csv").write_text("model_id,epoch,checkpoint\n")
        for e in (0, 1):
            (md / "checkpoints" / f"epoch_{e:03d}.pt").write_bytes(bytes([m, e]) * 100)
    return root


@pytest.fixture
def bundle(tmp_path: Path) -> Path:
    return make_bundle(fake_run(tmp_path / "run"), out=tmp_path / "bundle", checkpoints=True).path


def graph(bundle: Path) -> dict[str, dict]:
    return {e["@id"]: e for e in json.loads((bundle / CRATE_FILE).read_text())["@graph"]}


def ids(value) -> list[str]:
    return [v["@id"] for v in (value if isinstance(value, list) else [value])]


def test_crate_describes_the_run(bundle):
    g = graph(bundle)
    root = g["./"]
    assert ids(root["conformsTo"]) == list(PROFILES)
    workflow = g[root["mainEntity"]["@id"]]
    assert {"File", "SoftwareSourceCode", "ComputationalWorkflow"} <= set(workflow["@type"])
    assert workflow["version"] == "0.1.0" and (bundle / workflow["@id"]).is_file()
    assert g[workflow["programmingLanguage"]["@id"]]["version"] == "3.11.7"
    software = {g[i]["name"]: g[i]["version"] for i in ids(workflow["softwareRequirements"])}
    assert software == {"a4nn": "0.1.0", "torch": "2.13.0+cpu", "prefect": "3.8.8"}
    action = g["#a4nn-run"]
    assert action["@type"] == "CreateAction" and action["instrument"]["@id"] == workflow["@id"]
    assert (action["startTime"], action["endTime"]) == (RUN["started"], RUN["finished"])
    assert action["actionStatus"]["@id"] == "http://schema.org/CompletedActionStatus"
    objects = {g[i].get("name"): g[i] for i in ids(action["object"])}
    assert "config.yaml" in ids(action["object"])
    dataset = g["#input-dataset"]
    assert dataset["sha256"] == "d" * 64 and "#input-dataset" in ids(action["object"])
    assert objects["search.adapter"]["value"] == "nsganet"
    assert objects["search.options.preset"]["value"] == "quickstart"
    assert objects["engine.preset"]["value"] == "paper"
    assert "train.device" not in objects  # unset settings are not recorded
    results = set(ids(action["result"]))
    for rel in (
        "epochs.parquet",
        "models/00001/epochs.csv",
        "models/00001/checkpoints/epoch_001.pt",
    ):
        assert rel in results
        assert g[rel]["sha256"] == hashlib.sha256((bundle / rel).read_bytes()).hexdigest()
        assert g[rel]["contentSize"] == (bundle / rel).stat().st_size


def test_rocrate_reads_it_back(bundle):
    crate = ROCrate(bundle)
    assert crate.mainEntity.id == "workflow/search_flow.py"
    assert [a.id for a in crate.get_by_type("CreateAction")] == ["#a4nn-run"]
    assert {e.id for e in crate.data_entities} >= {"config.yaml", "models/00000/model.json"}


@pytest.mark.parametrize(
    "damage, message",
    [
        (lambda b: (b / "epochs.parquet").write_bytes(b"x"), "epochs.parquet: 1 bytes"),
        (
            lambda b: (b / "models.csv").write_text("model_id\n0\n2\n"),
            "models.csv: SHA-256 differs",
        ),
        (lambda b: (b / "models/00000/model.json").unlink(), "model.json: listed in the crate"),
        (lambda b: (b / "extra.txt").write_text("?"), "not described by the crate: extra.txt"),
    ],
)
def test_validation_names_what_does_not_match(bundle, damage, message):
    validate_crate(bundle)
    for p in bundle.rglob("*"):  # bundle files are hard links into the run: unlink first
        if p.is_file():
            data = p.read_bytes()
            p.unlink()
            p.write_bytes(data)
    damage(bundle)
    with pytest.raises(ProvenanceError, match=message.replace("(", r"\(")):
        validate_crate(bundle)


def test_profile_requirements_are_checked(bundle):
    path = bundle / CRATE_FILE
    doc = json.loads(path.read_text())
    for e in doc["@graph"]:
        if e["@id"] == "./":
            e["conformsTo"] = e["conformsTo"][:1]
            del e["mainEntity"]
        if e["@id"] == "#a4nn-run":
            e["startTime"] = "yesterday"
    path.write_text(json.dumps(doc))
    with pytest.raises(ProvenanceError) as err:
        validate_crate(bundle)
    text = str(err.value)
    assert "does not conform to https://w3id.org/ro/wfrun/workflow/0.5" in text
    assert "no mainEntity" in text and "'yesterday' is not an ISO 8601" in text


def test_fetch_validates_the_crate(bundle, tmp_path):
    with DataverseStandin(tokens={TOKEN: "@admin"}, collections=("a4nn",)) as dv:
        kw = dict(server=dv.url, collection="a4nn", metadata=META, token=TOKEN, retry=FAST)
        report = publish_bundle(bundle, progress=False, **kw)
        good = fetch_dataset(
            report.persistent_id, server=dv.url, out=tmp_path / "a", progress=False, token=TOKEN
        )
        validate_crate(good)
        # a file changed after the crate was written, then published: refused on fetch
        stale = bundle / "epochs.csv"
        stale.unlink()
        stale.write_text("model_id,epoch\n0,0\n")
        publish_bundle(bundle, progress=False, **kw)
        with pytest.raises(ProvenanceError, match="epochs.csv"):
            fetch_dataset(
                report.persistent_id, server=dv.url, out=tmp_path / "b", progress=False, token=TOKEN
            )
