"""Core records exchanged between a NAS adapter, the training loop and the run directory.

They are plain dataclasses of JSON-friendly values so that they cross process boundaries
(Dask workers, Prefect task results) and land in the lineage without custom encoders.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any

Genome = list[list[int]]
"""NSGA-Net macro genome: one bit-list per phase (n(n-1)/2 connection bits + 1 skip bit)."""


@dataclass(frozen=True)
class Candidate:
    """An architecture the adapter asks the workflow to train."""

    model_id: int
    genome: Genome
    generation: int = 0
    parents: tuple[int, ...] = ()
    proposer: str = "nsganet"

    def to_dict(self) -> dict[str, Any]:
        d = asdict(self)
        d["parents"] = list(self.parents)
        return d

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> Candidate:
        return cls(
            model_id=int(d["model_id"]),
            genome=[list(map(int, p)) for p in d["genome"]],
            generation=int(d.get("generation", 0)),
            parents=tuple(int(p) for p in d.get("parents", ())),
            proposer=str(d.get("proposer", "nsganet")),
        )


@dataclass
class Result:
    """What training one candidate produced; `fitness` is what the NAS maximizes.

    `fitness` is the engine's converged prediction (Algorithm 1: P[-1]) or, when the engine
    did not converge, the last validation accuracy. A failed model has `status="failed"`,
    `fitness=0.0` and the error in `reason`.
    """

    model_id: int
    fitness: float
    mflops: float
    params: int
    epochs_trained: int
    status: str = "budget"  # converged | budget | failed
    reason: str = ""
    last_val_acc: float = float("nan")
    best_val_acc: float = float("nan")
    train_seconds: float = 0.0
    extra: dict[str, Any] = field(default_factory=dict)

    @property
    def failed(self) -> bool:
        return self.status == "failed"

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> Result:
        known = {k: d[k] for k in cls.__dataclass_fields__ if k in d}
        return cls(**known)
