"""Core records exchanged between a NAS adapter, the training loop and the run directory.

They are plain dataclasses of JSON-friendly values so that they cross process boundaries
(Dask workers, Prefect task results) and land in the lineage without custom encoders.
Nothing here knows a particular search space: a candidate names its space and carries
that space's architecture as opaque JSON; the space (`a4nn.space`) builds it.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any, Literal

Arch = Any
"""An architecture in its search space's own JSON-serializable form (opaque to the core)."""

LEGACY_SPACE = "nsganet-macro"
"""The space of candidates recorded before candidates named one (they held a `genome`)."""


@dataclass(frozen=True)
class Candidate:
    """An architecture the adapter asks the workflow to train."""

    model_id: int
    space: str
    arch: Arch
    generation: int = 0
    parents: tuple[int, ...] = ()
    proposer: str = ""

    def to_dict(self) -> dict[str, Any]:
        d = asdict(self)
        d["parents"] = list(self.parents)
        return d

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> Candidate:
        """Inverse of `to_dict`; also reads candidates recorded with a `genome`."""
        if "arch" in d:
            space, arch = str(d["space"]), d["arch"]
        else:  # recorded before the generic form: NSGA-Net's macro genome
            space, arch = LEGACY_SPACE, d["genome"]
        return cls(
            model_id=int(d["model_id"]),
            space=space,
            arch=arch,
            generation=int(d.get("generation", 0)),
            parents=tuple(int(p) for p in d.get("parents", ())),
            proposer=str(d.get("proposer", "")),
        )


Direction = Literal["max", "min"]


@dataclass(frozen=True)
class Objective:
    """One objective an adapter optimizes: a `Result` metric's name and its direction."""

    name: str
    direction: Direction = "max"

    def __post_init__(self) -> None:
        if self.name not in Result.METRICS:
            raise ValueError(
                f"objective {self.name!r} is not a result metric; choose from {Result.METRICS}"
            )
        if self.direction not in ("max", "min"):
            raise ValueError(f"objective direction must be 'max' or 'min', got {self.direction!r}")

    def minimized(self, value: float) -> float:
        """`value` as a quantity to minimize (pymoo's convention)."""
        return -float(value) if self.direction == "max" else float(value)


@dataclass
class Result:
    """What training one candidate produced; `fitness` is what the NAS maximizes.

    `fitness` is the engine's converged prediction (Algorithm 1: P[-1]) or, when the engine
    did not converge, the last validation accuracy. A failed model has `status="failed"`,
    `fitness=0.0` and the error in `reason`. `metric(name)` reads any of `METRICS`, the
    values an adapter may declare as objectives.
    """

    METRICS = ("fitness", "mflops", "params", "epochs_trained", "train_seconds")

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

    def metric(self, name: str) -> float:
        if name not in self.METRICS:
            raise KeyError(f"unknown result metric {name!r}; known: {self.METRICS}")
        return float(getattr(self, name))

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> Result:
        known = {k: d[k] for k in cls.__dataclass_fields__ if k in d}
        return cls(**known)
