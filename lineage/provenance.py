"""The run bundle as a Workflow Run RO-Crate: `ro-crate-metadata.json`, for tools other than A4NN.

Profile: **Workflow Run Crate 0.5** (https://w3id.org/ro/wfrun/workflow/0.5), which builds on
Process Run Crate 0.5 and Workflow RO-Crate 1.0, over RO-Crate 1.1. The crate is written with
the `rocrate` library (`ROCrate(version="1.1")`) and describes, with schema.org terms:

- the workflow: `workflow/search_flow.py`, the Prefect flow that drives A4NN's search (a copy of
  the file that ran, `ComputationalWorkflow` + `SoftwareSourceCode` + `File`), with A4NN's
  version, the Python version as its language, and each recorded package version as a
  `SoftwareApplication` in `softwareRequirements`;
- one `CreateAction` (the run): `startTime`, `endTime`, `actionStatus`, the host as a
  description, `instrument` the workflow; its `object` the config (`config.yaml`), the input
  dataset (a `Dataset` with its SHA-256 fingerprint over names and contents, file count and
  path; the data itself is not in the bundle) and one `PropertyValue` per training, search
  (adapter, space, options) and engine setting; its `result` the tables, the adapter state,
  every model's `model.json` and `epochs.csv`, and the checkpoints;
- every file of the bundle as a `File` with `contentSize`, `encodingFormat` and `sha256`
  (the Workflow Run terms' `https://w3id.org/ro/terms/workflow-run#sha256`).

`validate_crate(folder)` checks what the profile requires and what A4NN promises (see its
docstring). `make_bundle` validates the crate it writes; `fetch_dataset` validates a fetched
bundle that has one, so a file changed or missing since publication is reported by name.
"""

from __future__ import annotations

import hashlib
import json
import mimetypes
import platform
import re
from collections.abc import Iterable
from datetime import UTC, datetime
from pathlib import Path, PurePosixPath
from typing import Any

import yaml
from rocrate.model.computerlanguage import ComputerLanguage
from rocrate.model.contextentity import ContextEntity
from rocrate.model.softwareapplication import SoftwareApplication
from rocrate.rocrate import ROCrate

__all__ = [
    "CRATE_FILE",
    "PROFILES",
    "ProvenanceError",
    "validate_crate",
    "write_crate",
]

CRATE_FILE = "ro-crate-metadata.json"
RO_CRATE = "https://w3id.org/ro/crate/1.1"
PROCESS_RUN = "https://w3id.org/ro/wfrun/process/0.5"
WORKFLOW_RUN = "https://w3id.org/ro/wfrun/workflow/0.5"
WORKFLOW_RO_CRATE = "https://w3id.org/workflowhub/workflow-ro-crate/1.0"
PROFILES = (PROCESS_RUN, WORKFLOW_RUN, WORKFLOW_RO_CRATE)
"""The profiles the crate conforms to (the root's `conformsTo`)."""
WFRUN_CONTEXT = "https://w3id.org/ro/terms/workflow-run/context"
SHA256_TERM = "https://w3id.org/ro/terms/workflow-run#sha256"
WORKFLOW_PATH = "workflow/search_flow.py"
ACTION_ID = "#a4nn-run"
ACTION_STATUS = {
    "finished": "http://schema.org/CompletedActionStatus",
    "failed": "http://schema.org/FailedActionStatus",
    "running": "http://schema.org/ActiveActionStatus",
    "stopped": "http://schema.org/FailedActionStatus",
}
_SETTING_SECTIONS = ("train", "search", "engine", "lineage")
_FORMATS = {
    ".parquet": "application/vnd.apache.parquet",
    ".csv": "text/csv",
    ".json": "application/json",
    ".yaml": "application/yaml",
    ".md": "text/markdown",
    ".pt": "application/octet-stream",
    ".npz": "application/octet-stream",
    ".py": "text/x-python",
}


class ProvenanceError(ValueError):
    """The RO-Crate of a bundle is missing, malformed, or does not match the bundle's files."""


def _sha256(path: Path) -> str:
    with open(path, "rb") as fh:
        return hashlib.file_digest(fh, "sha256").hexdigest()


def _format(rel: str) -> str:
    suffix = PurePosixPath(rel).suffix.lower()
    return _FORMATS.get(suffix) or mimetypes.guess_type(rel)[0] or "application/octet-stream"


def _flatten(prefix: str, value: Any) -> Iterable[tuple[str, Any]]:
    if isinstance(value, dict) and value:
        for key in sorted(value):
            yield from _flatten(f"{prefix}.{key}", value[key])
    else:
        yield prefix, value


def _describe(rel: str) -> str:
    parts = PurePosixPath(rel).parts
    name = parts[-1]
    if parts[0] == "models" and len(parts) >= 3:
        model = int(parts[1]) if parts[1].isdigit() else parts[1]
        if name == "model.json":
            return f"model {model}: candidate architecture, its description, cost and result"
        if name == "epochs.csv":
            return f"model {model}: one row per trained epoch, with each checkpoint's SHA-256"
        if parts[2] == "checkpoints":
            return f"model {model}: model, optimizer and LR-scheduler state dicts after {name}"
    return {
        "run.json": "run record: name, status, start and end times, versions, hardware, dataset",
        "config.yaml": "the validated run config: data, training, search (NAS) and engine",
        "adapter_state.json": "the NAS adapter's state after its last tell (resumes the search)",
        "adapter_state.npz": "the arrays of the NAS adapter's state (loaded without pickle)",
        "adapter_state.log.jsonl": "the append-only part of the NAS adapter's state",
        "models.parquet": "one row per model (schema in A4NN's docs/lineage.md)",
        "epochs.parquet": "one row per trained epoch of every model",
        "models.csv": "one row per model (CSV copy of models.parquet)",
        "epochs.csv": "one row per trained epoch of every model (CSV copy of epochs.parquet)",
        "README.md": "how to load this bundle",
        "MANIFEST.json": "every file of the bundle with its size and SHA-256",
    }.get(name, name)


def _value(v: Any) -> Any:
    """A PropertyValue's value: scalars as they are, anything else as JSON text."""
    if v is None or isinstance(v, bool | int | float | str):
        return v
    return json.dumps(v, sort_keys=True)


def write_crate(bundle: Path, workflow_source: Path | None = None) -> Path:
    """Describe the bundle folder `bundle` (its files already in place) in
    `bundle/ro-crate-metadata.json`, copying `workflow_source` (default: A4NN's
    `flows/search_flow.py`) to `workflow/search_flow.py`; validate it; return its path."""
    bundle = Path(bundle)
    run = json.loads((bundle / "run.json").read_text())
    config = yaml.safe_load((bundle / "config.yaml").read_text()) or {}
    versions: dict[str, str] = dict(run.get("versions") or {})

    src = workflow_source or _default_workflow_source()
    wf_target = bundle / WORKFLOW_PATH
    wf_target.parent.mkdir(parents=True, exist_ok=True)
    wf_target.write_bytes(src.read_bytes())

    crate = ROCrate(version="1.1")
    crate.metadata.extra_contexts.append(WFRUN_CONTEXT)
    crate.metadata.extra_terms["sha256"] = SHA256_TERM
    name = run.get("name") or bundle.name
    root = crate.root_dataset
    root["name"] = f"A4NN neural architecture search run: {name}"
    root["description"] = (
        "Lineage of one A4NN neural architecture search: every model's architecture, cost "
        "and per-epoch metrics, the prediction engine's output, and (if included) a checkpoint "
        "per epoch. Load it with analyzer.load_run or pandas; see README.md."
    )
    root["datePublished"] = datetime.now(UTC).isoformat(timespec="seconds")
    license_entity = crate.add(
        ContextEntity(
            crate,
            "#license",
            properties={
                "@type": "CreativeWork",
                "name": "License of the data commons dataset holding this bundle",
                "description": "The license is set where the bundle is published (for "
                "Dataverse, the dataset's license, CC0 1.0 unless chosen otherwise).",
            },
        )
    )
    root["license"] = license_entity
    profiles = [
        crate.add(ContextEntity(crate, uri, properties={"@type": "CreativeWork", "name": label}))
        for uri, label in (
            (PROCESS_RUN, "Process Run Crate 0.5"),
            (WORKFLOW_RUN, "Workflow Run Crate 0.5"),
            (WORKFLOW_RO_CRATE, "Workflow RO-Crate 1.0"),
        )
    ]
    root["conformsTo"] = profiles

    python = crate.add(
        ComputerLanguage(
            crate,
            "https://w3id.org/workflowhub/workflow-ro-crate#python",
            properties={
                "name": "Python",
                "identifier": {"@id": "https://www.python.org/"},
                "url": {"@id": "https://www.python.org/"},
                "version": versions.get("python", platform.python_version()),
            },
        )
    )
    software = [
        crate.add(
            SoftwareApplication(
                crate, f"#software-{pkg}", properties={"name": pkg, "version": str(ver)}
            )
        )
        for pkg, ver in sorted(versions.items())
        if pkg != "python"
    ]

    # formal parameters (the workflow's inputs and outputs) and the values this run had
    def formal(ident: str, name: str, kind: str, description: str) -> ContextEntity:
        return crate.add(
            ContextEntity(
                crate,
                f"#param-{ident}",
                properties={
                    "@type": "FormalParameter",
                    "name": name,
                    "additionalType": kind,
                    "description": description,
                    "conformsTo": {
                        "@id": "https://bioschemas.org/profiles/FormalParameter/1.0-RELEASE"
                    },
                },
            )
        )

    p_config = formal("config", "config", "File", "the run config (YAML)")
    p_data = formal("dataset", "dataset", "Dataset", "the training and validation data")
    inputs = [p_config, p_data]
    settings = []
    for section in _SETTING_SECTIONS:
        for key, value in _flatten(section, config.get(section, {})):
            if value is None:
                continue  # unset (the default applies); nothing to record
            kind = (
                "Boolean"
                if isinstance(value, bool)
                else "Integer"
                if isinstance(value, int)
                else "Float"
                if isinstance(value, float)
                else "Text"
            )
            param = formal(key, key, kind, f"config setting {key}")
            inputs.append(param)
            settings.append(
                crate.add(
                    ContextEntity(
                        crate,
                        f"#pv-{key}",
                        properties={
                            "@type": "PropertyValue",
                            "name": key,
                            "value": _value(value),
                            "exampleOfWork": {"@id": param.id},
                        },
                    )
                )
            )
    p_tables = formal("tables", "tables", "File", "models and epochs tables (Parquet, CSV)")
    p_models = formal("models", "models", "Dataset", "per-model records and checkpoints")
    p_state = formal("adapter-state", "adapter_state", "File", "the NAS adapter's state")

    # the bundle's files
    files: dict[str, Any] = {}
    for path in sorted(p for p in bundle.rglob("*") if p.is_file()):
        rel = path.relative_to(bundle).as_posix()
        if rel in (CRATE_FILE, WORKFLOW_PATH):
            continue
        files[rel] = crate.add_file(
            dest_path=rel,
            properties={
                "name": _describe(rel),
                "contentSize": path.stat().st_size,
                "encodingFormat": _format(rel),
                "sha256": _sha256(path),
            },
        )
    workflow = crate.add_workflow(
        dest_path=WORKFLOW_PATH,
        main=True,
        lang=python,
        properties={
            "name": "A4NN search (Prefect flow a4nn-search)",
            "description": "A4NN's search: a NAS adapter proposes architectures, each is trained "
            "as one task on a Dask worker while a prediction engine decides when to stop it. "
            "This file is the Prefect flow of the A4NN version named; the `runner: plain` "
            "setting runs the same scheduler in one process.",
            "version": versions.get("a4nn", "unknown"),
            "contentSize": wf_target.stat().st_size,
            "encodingFormat": "text/x-python",
            "sha256": _sha256(wf_target),
            "softwareRequirements": software,
            "input": inputs,
            "output": [p_tables, p_models, p_state],
        },
    )
    # add_workflow(main=True) made the descriptor and the root conform to Workflow RO-Crate
    # (1.0 for RO-Crate 1.1); the root conforms to the three profiles, each listed once
    root["conformsTo"] = profiles

    # folders of the bundle
    dirs: dict[str, Any] = {}
    for rel in sorted({str(PurePosixPath(r).parent) for r in files} - {"."}):
        for i in range(1, len(PurePosixPath(rel).parts) + 1):
            d = "/".join(PurePosixPath(rel).parts[:i])
            if d not in dirs and d != "workflow":
                dirs[d] = crate.add_dataset(dest_path=d, properties={"name": f"{d}/"})
    for rel, entity in files.items():
        parent = str(PurePosixPath(rel).parent)
        if parent in dirs:
            dirs[parent].append_to("hasPart", entity)
    for d, entity in dirs.items():
        parent = str(PurePosixPath(d).parent)
        if parent in dirs:
            dirs[parent].append_to("hasPart", entity)

    for rel in ("models.parquet", "epochs.parquet", "models.csv", "epochs.csv"):
        if rel in files:
            files[rel]["exampleOfWork"] = p_tables
    for rel in ("adapter_state.json", "adapter_state.npz", "adapter_state.log.jsonl"):
        if rel in files:
            files[rel]["exampleOfWork"] = p_state
    if "models" in dirs:
        dirs["models"]["exampleOfWork"] = p_models
    if "config.yaml" in files:
        files["config.yaml"]["exampleOfWork"] = p_config

    dataset_record = run.get("dataset") or {}
    data_cfg = config.get("data", {})
    dataset = crate.add(
        ContextEntity(
            crate,
            "#input-dataset",
            properties={
                "@type": "Dataset",
                "name": f"input data ({data_cfg.get('source', 'unknown')})",
                "description": "The training and validation data the run read (not part of this "
                "bundle). sha256 is A4NN's fingerprint over the files' relative names and "
                "contents (a4nn.dataset.dataset_fingerprint).",
                "identifier": str(dataset_record.get("path", data_cfg.get("path", ""))),
                **({"sha256": dataset_record["sha256"]} if dataset_record.get("sha256") else {}),
                "exampleOfWork": {"@id": p_data.id},
                "additionalProperty": [
                    crate.add(
                        ContextEntity(
                            crate,
                            f"#dataset-{key}",
                            properties={
                                "@type": "PropertyValue",
                                "name": key,
                                "value": _value(value),
                            },
                        )
                    )
                    for key, value in [
                        ("files", dataset_record.get("files")),
                        *_flatten("data", data_cfg),
                    ]
                    if value is not None
                ],
            },
        )
    )

    status = run.get("status", "unknown")
    hardware = run.get("hardware") or {}
    results = [files[r] for r in files if r not in ("config.yaml", "README.md", "MANIFEST.json")]
    action = crate.add_action(
        workflow,
        identifier=ACTION_ID,
        object=[files["config.yaml"], dataset, *settings],
        result=results,
        properties={
            "@type": "CreateAction",
            "name": f"A4NN search run {name}",
            "description": f"status {status}; host {hardware.get('host', '?')}, "
            f"{hardware.get('cpus', '?')} CPUs"
            + (f", GPUs {hardware['gpus']}" if hardware.get("gpus") else "")
            + f"; wall time {run.get('wall_seconds', '?')} s",
            "actionStatus": {"@id": ACTION_STATUS.get(status, ACTION_STATUS["running"])},
        },
    )
    if run.get("started"):
        action["startTime"] = run["started"]
    if run.get("finished"):
        action["endTime"] = run["finished"]
    root["mentions"] = [action]
    root["mainEntity"] = workflow

    crate.metadata.write(bundle)
    validate_crate(bundle)
    return bundle / CRATE_FILE


def _default_workflow_source() -> Path:
    """flows/search_flow.py beside the installed `a4nn` package (read, never imported)."""
    import a4nn

    path = Path(a4nn.__file__).resolve().parent.parent / "flows" / "search_flow.py"
    if not path.is_file():
        raise ProvenanceError(f"cannot find A4NN's flow definition at {path}")
    return path


# -- validation --------------------------------------------------------------------------------
_ISO = re.compile(r"^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}(:\d{2}(\.\d+)?)?(Z|[+-]\d{2}:\d{2})?$")


def _ids(value: Any) -> list[str]:
    values = value if isinstance(value, list) else [value] if value is not None else []
    return [v["@id"] if isinstance(v, dict) else getattr(v, "id", v) for v in values]


def _types(props: dict[str, Any]) -> set[str]:
    t = props.get("@type", [])
    return set(t if isinstance(t, list) else [t])


def validate_crate(bundle: Path, *, check_files: bool = True, only: set[str] | None = None) -> None:
    """Check `bundle/ro-crate-metadata.json`; ProvenanceError listing every problem.

    RO-Crate 1.1: the metadata descriptor and the root dataset (name, description,
    datePublished, license). Workflow Run Crate 0.5 (with Process Run Crate and Workflow
    RO-Crate 1.0): the root conforms to the three profiles; its mainEntity is a
    File + SoftwareSourceCode + ComputationalWorkflow with a programmingLanguage; a
    CreateAction has the workflow as instrument, ISO-8601 start and end times and an
    actionStatus; every object and result it names is an entity of the crate. A4NN: every
    file of the bundle is listed, and (`check_files`) each listed file exists with its
    recorded contentSize and SHA-256. `only` (relative POSIX paths): the files to hold
    against the crate, for a folder that may hold other files too (a fetch target).
    """
    bundle = Path(bundle)
    meta_path = bundle / CRATE_FILE
    if not meta_path.is_file():
        raise ProvenanceError(f"{bundle} has no {CRATE_FILE}")
    problems: list[str] = []
    try:
        raw = json.loads(meta_path.read_text())
        crate = ROCrate(bundle)
    except Exception as err:  # a crate rocrate cannot read: nothing more to check
        raise ProvenanceError(f"{meta_path}: not a readable RO-Crate ({err})") from None
    graph = {e["@id"]: e for e in raw.get("@graph", []) if isinstance(e, dict) and "@id" in e}
    context = raw.get("@context")
    contexts = context if isinstance(context, list) else [context]
    if f"{RO_CRATE}/context" not in contexts:
        problems.append(f"@context does not include {RO_CRATE}/context")
    descriptor = graph.get(CRATE_FILE, {})
    if RO_CRATE not in _ids(descriptor.get("conformsTo")):
        problems.append(f"the metadata descriptor does not conform to {RO_CRATE}")
    root = graph.get("./", {})
    for prop in ("name", "description", "datePublished", "license"):
        if not root.get(prop):
            problems.append(f"the root dataset has no {prop}")
    missing = [p for p in PROFILES if p not in _ids(root.get("conformsTo"))]
    if missing:
        problems.append(f"the root dataset does not conform to {', '.join(missing)}")
    main_ids = _ids(root.get("mainEntity"))
    main = graph.get(main_ids[0], {}) if main_ids else {}
    if not main:
        problems.append("the root dataset has no mainEntity (the workflow)")
    else:
        lacking = {"File", "SoftwareSourceCode", "ComputationalWorkflow"} - _types(main)
        if lacking:
            problems.append(
                f"the workflow {main['@id']} is not of type {', '.join(sorted(lacking))}"
            )
        if not main.get("programmingLanguage"):
            problems.append(f"the workflow {main['@id']} has no programmingLanguage")
    actions = [e for e in graph.values() if "CreateAction" in _types(e)]
    if not actions:
        problems.append("no CreateAction describes the run")
    for action in actions:
        aid = action["@id"]
        if main_ids and main_ids[0] not in _ids(action.get("instrument")):
            problems.append(f"{aid}: its instrument is not the workflow")
        for prop in ("startTime", "endTime"):
            value = action.get(prop)
            if value is not None and not _ISO.match(str(value)):
                problems.append(f"{aid}: {prop} {value!r} is not an ISO 8601 date-time")
        if not action.get("startTime"):
            problems.append(f"{aid}: no startTime")
        if not action.get("actionStatus"):
            problems.append(f"{aid}: no actionStatus")
        for prop in ("object", "result"):
            for ref in _ids(action.get(prop)):
                if ref not in graph:
                    problems.append(f"{aid}: its {prop} {ref} is not an entity of the crate")
    listed = {
        e["@id"]: e
        for e in graph.values()
        if "File" in _types(e) and not re.match(r"^[a-z][a-z0-9+.-]*:", e["@id"])
    }
    present = {
        p.relative_to(bundle).as_posix()
        for p in bundle.rglob("*")
        if p.is_file() and p.name != CRATE_FILE and not p.name.endswith(".tmp")
    }
    if only is not None:
        present &= set(only)
    unlisted = sorted(present - set(listed) - {"publish.json"})
    if unlisted:
        problems.append(f"files not described by the crate: {', '.join(unlisted[:10])}")
    if check_files:
        for rel, entity in sorted(listed.items()):
            path = bundle / rel
            if not path.is_file():
                problems.append(f"{rel}: listed in the crate but missing")
                continue
            size = entity.get("contentSize")
            if size is not None and int(size) != path.stat().st_size:
                problems.append(f"{rel}: {path.stat().st_size} bytes, the crate records {size}")
            elif entity.get("sha256") and entity["sha256"] != _sha256(path):
                problems.append(f"{rel}: SHA-256 differs from the one the crate records")
    del crate
    if problems:
        raise ProvenanceError(
            f"{meta_path} is not a valid Workflow Run RO-Crate of this bundle: "
            + "; ".join(problems)
        )
