"""Rebuild any model of a run at any epoch, in one call.

The network is rebuilt from its genome and the run's config (never unpickled), then the
epoch's checkpoint is verified against its recorded SHA-256 and loaded with
`torch.load(weights_only=True)`.
"""

from __future__ import annotations

from pathlib import Path

import pandas as pd
import yaml
from torch import nn

from a4nn.config import config_from_dict
from adapters.nsganet.model import build_model
from adapters.nsganet.space import nodes_for_bits
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
    cfg = config_from_dict(yaml.safe_load((run.root / "config.yaml").read_text()))
    shape = meta["input_shape"]
    genome = meta["candidate"]["genome"]
    model = build_model(
        genome,
        in_channels=int(shape[0]),
        num_classes=int(meta["num_classes"]),
        channels=cfg.search.resolved_channels(),
        nodes_per_phase=nodes_for_bits(len(genome[0])),
    )
    state = load_checkpoint(md.root / row["checkpoint"], row["checkpoint_sha256"])
    model.load_state_dict(state["model"])
    model.eval()
    return model
