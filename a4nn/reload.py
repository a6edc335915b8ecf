"""Rebuild any model of a run at any epoch, in one call.

The network is rebuilt by the run's search space from the recorded architecture and the
run's config (never unpickled; the config's `plugins:` are imported, so a space from a
plugin rebuilds too), then the epoch's checkpoint is verified against its recorded
SHA-256 and loaded with `torch.load(weights_only=True)`. A checkpoint path that points
outside the model's folder is refused.
"""

from __future__ import annotations

from pathlib import Path

import pandas as pd
import yaml
from torch import nn

from a4nn.config import config_from_dict
from a4nn.types import Candidate
from lineage.checkpoints import CheckpointError, load_checkpoint
from lineage.run_dir import RunDir


def load_model(run_dir: str | Path, model_id: int, epoch: int | None = None) -> nn.Module:
    """Model `model_id` of `run_dir` with the weights of `epoch` (default: its last one).

    Raises CheckpointError naming the file when the checkpoint is missing (dropped by the
    retention policy), corrupt or truncated.
    """
    run = RunDir.open(Path(run_dir))
    md = run.model(model_id)
    meta = md.read_meta()
    if not meta:
        raise FileNotFoundError(f"{run.root} has no model {model_id} (no {md.meta_path})")
    rows = pd.read_csv(md.epochs_path) if md.epochs_path.exists() else pd.DataFrame()
    if rows.empty:
        raise CheckpointError(f"model {model_id} of {run.root} has no trained epoch")
    if epoch is None:
        epoch = int(rows["epoch"].max())
    match = rows[rows["epoch"] == epoch]
    if match.empty:
        raise CheckpointError(
            f"model {model_id} of {run.root} was not trained to epoch {epoch} "
            f"(epochs 0..{int(rows['epoch'].max())})"
        )
    row = match.iloc[-1]
    if not isinstance(row["checkpoint"], str) or not row["checkpoint"]:
        raise CheckpointError(
            f"no checkpoint kept for model {model_id} epoch {epoch} in {run.root} "
            "(lineage.checkpoints retention dropped it)"
        )
    path = (md.root / row["checkpoint"]).resolve()
    if not path.is_relative_to(md.root.resolve()):
        raise CheckpointError(
            f"model {model_id} epoch {epoch} of {run.root}: checkpoint path "
            f"{row['checkpoint']!r} points outside the model's folder; refusing to read it"
        )
    config_path = run.root / "config.yaml"
    cfg = config_from_dict(yaml.safe_load(config_path.read_text()), str(config_path))
    cand = Candidate.from_dict(meta["candidate"])
    space = cfg.create_space()
    if cand.space != space.name:
        raise ValueError(
            f"model {model_id} of {run.root} was built in space {cand.space!r}, but the "
            f"run's config ({config_path}) names {space.name!r}"
        )
    model = space.build(
        cand.arch, tuple(int(d) for d in meta["input_shape"]), int(meta["num_classes"])
    )
    state = load_checkpoint(path, row["checkpoint_sha256"])
    model.load_state_dict(state["model"])
    model.eval()
    return model
