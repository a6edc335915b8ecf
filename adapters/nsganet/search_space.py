"""NSGA-Net's macro space as a registered `SearchSpace` ("nsganet-macro").

The architecture is the macro genome (one bit-list per phase, `space.MacroSpace`); its
choice vector is the genome's bits, phase 0 first, each with 2 options. Options:

    search:
      space: nsganet-macro
      space_options: {phases: 3, nodes_per_phase: 4, channels: [24, 48, 96]}

`channels` gives each phase's width (or one int c for c, 2c, 4c, ...); the defaults are
the A4NN paper's (24, 48, 96 reproduce the A4NN commons' FLOPs).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
from pydantic import BaseModel, ConfigDict, Field, StrictInt, ValidationInfo, field_validator

from a4nn.registry import validate_options
from a4nn.space import check_vector
from adapters.nsganet.decode import describe
from adapters.nsganet.space import Genome, MacroSpace

NAME = "nsganet-macro"


class MacroOptions(BaseModel):
    """`search.space_options` of the nsganet-macro space.

    `channels`: one width per phase, or one int c for c, 2c, 4c, ...; unset, the paper's
    24, 48, 96 for 3 phases (24 doubled per phase for other phase counts).
    """

    model_config = ConfigDict(extra="forbid")

    phases: StrictInt = Field(3, ge=1)
    nodes_per_phase: StrictInt = Field(4, ge=2)
    channels: list[StrictInt] | StrictInt | None = None

    @field_validator("channels")
    @classmethod
    def _channels_fit(cls, v: list[int] | int | None, info: ValidationInfo) -> Any:
        phases = info.data.get("phases", 3)
        if isinstance(v, int) and v < 1:
            raise ValueError(f"must be >= 1, got {v}")
        if isinstance(v, list) and (len(v) != phases or any(c < 1 for c in v)):
            raise ValueError(
                f"{v} must be {phases} positive ints (one per phase) or one int c (c, 2c, 4c, ...)"
            )
        return v

    def widths(self) -> list[int] | int:
        """The channel widths the network is built with."""
        if self.channels is not None:
            return self.channels
        return [24, 48, 96] if self.phases == 3 else 24


class NSGANetMacroSpace:
    """The bit-string macro space (see the module docstring)."""

    name = NAME

    def __init__(self, options: MacroOptions | None = None) -> None:
        self.options = options or MacroOptions()
        self.genomes = MacroSpace(self.options.phases, self.options.nodes_per_phase)

    def choices(self) -> list[int]:
        return [2] * self.genomes.n_bits

    def sample(self, rng: np.random.Generator) -> Genome:
        return self.genomes.random(rng)

    def encode(self, arch: Any) -> list[int]:
        return [int(b) for b in self.genomes.flatten(arch)]

    def decode(self, vector: Sequence[int]) -> Genome:
        return self.genomes.unflatten(check_vector(vector, self.choices(), self.name))

    def build(self, arch: Any, input_shape: Sequence[int], num_classes: int) -> Any:
        from adapters.nsganet.model import build_model

        return build_model(
            self.genomes.validate(arch),
            in_channels=int(input_shape[0]),
            num_classes=num_classes,
            channels=self.options.widths(),
            nodes_per_phase=self.options.nodes_per_phase,
        )

    def cost(
        self, arch: Any, input_shape: Sequence[int], num_classes: int, model: Any = None
    ) -> tuple[float, int]:
        from a4nn.cost import space_cost

        return space_cost(self, arch, input_shape, num_classes, model)

    def describe(self, arch: Any) -> dict[str, Any]:
        desc = describe(arch, self.genomes)
        desc["graph"] = macro_graph(desc)
        return desc


def macro_graph(desc: dict[str, Any]) -> dict[str, Any]:
    """The whole network as one node/edge graph (for drawings), from `describe`'s phases."""
    nodes = [{"id": "input", "label": "input"}]
    edges: list[list[str]] = []
    last = "input"
    for phase in desc["phase_graphs"]:
        if not phase["active"]:
            continue
        i = phase["index"]
        out = phase["output"]

        def vid(v: int, i: int = i, out: int = out) -> str:
            return f"p{i}.in" if v == 0 else f"p{i}.out" if v == out else f"p{i}.n{v}"

        nodes.append({"id": vid(0), "label": f"phase {i} in"})
        nodes += [{"id": vid(n), "label": f"conv3x3 {n}"} for n in phase["nodes"]]
        nodes.append({"id": vid(out), "label": f"phase {i} out"})
        edges.append([last, vid(0)])
        edges += [[vid(e["src"]), vid(e["dst"])] for e in phase["edges"]]
        last = vid(out)
    nodes.append({"id": "head", "label": "avgpool + linear"})
    edges.append([last, "head"])
    return {"nodes": nodes, "edges": edges}


def make_space(options: Mapping[str, Any]) -> NSGANetMacroSpace:
    """The registry's factory (entry point `a4nn.spaces: nsganet-macro`)."""
    return NSGANetMacroSpace(validate_options(MacroOptions, options, "search.space_options"))
