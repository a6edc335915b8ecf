"""The run bundle: what of a run goes to a data commons, in a documented layout.

    BUNDLE/
      README.md                 what this is and how to load it (one pandas call)
      MANIFEST.json             every file with its size and SHA-256, the schema version
      run.json  config.yaml  adapter_state.json  adapter_state.npz, .log.jsonl (if any)
      models.parquet  epochs.parquet  models.csv  epochs.csv
      models/<id>/model.json
      models/<id>/epochs.csv                    the model's epochs with checkpoint SHA-256s
      models/<id>/checkpoints/epoch_NNN.pt     only with checkpoints=True
      ro-crate-metadata.json    the run as a Workflow Run RO-Crate (lineage/provenance.py)
      workflow/search_flow.py   the workflow the crate names (A4NN's Prefect flow)

The bundle mirrors the run directory, so `analyzer.load_run(BUNDLE)`,
`analyzer.load_commons(DOWNLOAD)` and, with checkpoints,
`a4nn.reload.load_model(BUNDLE, model_id, epoch)` read it like a run. Files are
hard-linked where the file system allows (no copy of large checkpoints), copied otherwise.
"""

from __future__ import annotations

import os
import shutil
from dataclasses import dataclass
from pathlib import Path

from lineage.atomic import atomic_write_json, atomic_write_text, read_json
from lineage.checkpoints import sha256_file
from lineage.provenance import write_crate
from lineage.schema import SCHEMA_VERSION
from lineage.sizes import human_size

TOP_FILES = (
    "run.json",
    "config.yaml",
    "adapter_state.json",
    "adapter_state.npz",
    "adapter_state.log.jsonl",
    "models.parquet",
    "epochs.parquet",
    "models.csv",
    "epochs.csv",
)

README = """# A4NN run bundle: {name}

Lineage of one neural architecture search run by A4NN (schema {schema}): every model's
genome, decoded architecture, FLOPs and parameters, and every epoch's accuracy, loss,
time and prediction-engine output{ckpt_note}.

Load it in one call:

```python
from analyzer import load_run          # pip install a4nn
tables = load_run("path/to/this/folder")   # tables.models, tables.epochs (pandas DataFrames)
```

or with pandas alone:

```python
import pandas as pd
models = pd.read_parquet("models.parquet")   # one row per model
epochs = pd.read_parquet("epochs.parquet")   # one row per trained epoch
```

`MANIFEST.json` lists every file with its SHA-256. `ro-crate-metadata.json` describes the
run as a Workflow Run RO-Crate (https://w3id.org/ro/wfrun/workflow/0.5): the workflow and
its version, the config, the input dataset's fingerprint, every output file with its
SHA-256, the settings and software versions, start and end times. The columns are
documented in A4NN's `docs/lineage.md`.
{reload_note}"""

RELOAD_WITH_CHECKPOINTS = """
Any model at any epoch comes back as a PyTorch module, rebuilt by the run's search space
from `config.yaml` and `models/<id>/model.json`, with the weights of the checkpoint that
`models/<id>/epochs.csv` records for that epoch (its SHA-256 is checked first):

```python
from a4nn.reload import load_model     # pip install a4nn
model = load_model("path/to/this/folder", model_id=3, epoch=5)   # epoch=None: its last
```

Checkpoints hold state dicts only (`torch.load(path, weights_only=True)`).
"""

RELOAD_WITHOUT_CHECKPOINTS = """
This bundle holds no checkpoints (published without `--checkpoints`): the architectures
(`models/<id>/model.json`) can be rebuilt, but not their trained weights.
"""


@dataclass
class BundleInfo:
    path: Path
    files: int
    size_bytes: int

    def human_size(self) -> str:
        return human_size(self.size_bytes)


def _place(src: Path, dst: Path) -> None:
    dst.parent.mkdir(parents=True, exist_ok=True)
    if dst.exists():
        dst.unlink()
    try:
        os.link(src, dst)
    except OSError:
        shutil.copy2(src, dst)


def make_bundle(run_dir: Path, out: Path | None = None, checkpoints: bool = False) -> BundleInfo:
    """Assemble the bundle of `run_dir` (default: RUN_DIR/bundle) and report its size."""
    run_dir = Path(run_dir)
    if not (run_dir / "run.json").exists():
        raise FileNotFoundError(f"{run_dir} is not an A4NN run directory (no run.json)")
    if not (run_dir / "models.parquet").exists():
        raise FileNotFoundError(f"{run_dir} has no models.parquet: no model finished yet")
    out = Path(out) if out is not None else run_dir / "bundle"
    if out.exists():
        shutil.rmtree(out)
    sources: list[Path] = [run_dir / f for f in TOP_FILES if (run_dir / f).exists()]
    models = run_dir / "models"
    if models.is_dir():
        sources += sorted(models.glob("*/model.json"))
        sources += sorted(models.glob("*/epochs.csv"))  # what load_model reads (small)
        if checkpoints:
            sources += sorted(models.glob("*/checkpoints/*.pt"))
    manifest = []
    for src in sources:
        rel = src.relative_to(run_dir)
        _place(src, out / rel)
        manifest.append(
            {"path": rel.as_posix(), "bytes": src.stat().st_size, "sha256": sha256_file(src)}
        )
    sources.sort(key=lambda p: p.relative_to(run_dir).as_posix())
    name = read_json(run_dir / "run.json").get("name", run_dir.name)
    atomic_write_text(
        out / "README.md",
        README.format(
            name=name,
            schema=SCHEMA_VERSION,
            ckpt_note=", and a checkpoint per epoch" if checkpoints else "",
            reload_note=RELOAD_WITH_CHECKPOINTS if checkpoints else RELOAD_WITHOUT_CHECKPOINTS,
        ),
    )
    atomic_write_json(out / "MANIFEST.json", {"schema_version": SCHEMA_VERSION, "files": manifest})
    write_crate(out)  # ro-crate-metadata.json (Workflow Run Crate), validated as written
    total = sum(p.stat().st_size for p in out.rglob("*") if p.is_file())
    return BundleInfo(out, sum(1 for p in out.rglob("*") if p.is_file()), total)
