"""The `SearchSpace` protocol: what every search space offers the core and the adapters.

A search space owns its architectures. The core never looks inside one: it asks the
space (by the name a `Candidate` carries) to build the torch model, count its cost and
describe it, and adapters search it through its fixed-length integer choice vector:

    vector = space.encode(arch)          # one int per decision, 0 <= v < space.choices()[i]
    arch = space.decode(vector)          # the architecture, in the space's JSON form
    model = space.build(arch, (1, 32, 32), num_classes=2)

This module imports no training code and no adapter; torch only for type hints.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, Any, Protocol, runtime_checkable

import numpy as np

from a4nn.types import Arch

if TYPE_CHECKING:
    from torch import nn


class ArchError(ValueError):
    """An architecture (or choice vector) outside its space; the message names what is wrong."""


@runtime_checkable
class SearchSpace(Protocol):
    """A family of architectures (see the module docstring).

    `describe(arch)` returns JSON for drawings and the analyzer; it holds at least
    `graph`: {"nodes": [{"id": str, "label": str}, ...], "edges": [[from_id, to_id], ...]}.
    """

    name: str

    def choices(self) -> list[int]:
        """How many options each position of the choice vector has (all >= 1)."""
        ...

    def sample(self, rng: np.random.Generator) -> Arch:
        """A random architecture (uniform over the choice vector unless documented)."""
        ...

    def encode(self, arch: Arch) -> list[int]:
        """The architecture's choice vector; raises ArchError for one outside the space."""
        ...

    def decode(self, vector: Sequence[int]) -> Arch:
        """Inverse of `encode`; raises ArchError for a vector outside `choices()`."""
        ...

    def build(self, arch: Arch, input_shape: Sequence[int], num_classes: int) -> nn.Module:
        """The torch model for one sample's (channels, height, width) and `num_classes`."""
        ...

    def cost(
        self, arch: Arch, input_shape: Sequence[int], num_classes: int, model: Any = None
    ) -> tuple[float, int]:
        """(MFLOPs of one sample's forward pass, trainable parameters); `model`, when
        given, is the already built network (spares building it twice)."""
        ...

    def describe(self, arch: Arch) -> dict[str, Any]:
        """JSON description of the architecture (see the class docstring)."""
        ...


def check_vector(vector: Sequence[int], choices: Sequence[int], space: str) -> list[int]:
    """`vector` as a list of ints within `choices`, or an ArchError naming the position."""
    arr = np.asarray(vector)
    if arr.ndim != 1 or arr.shape[0] != len(choices):
        raise ArchError(
            f"{space}: a choice vector has {len(choices)} positions, got shape {arr.shape}"
        )
    out = []
    for i, (v, n) in enumerate(zip(arr.tolist(), choices, strict=True)):
        if isinstance(v, bool) or not float(v).is_integer() or not 0 <= int(v) < n:
            raise ArchError(f"{space}: position {i} is {v!r}; expected an int in 0..{n - 1}")
        out.append(int(v))
    return out


def sample_vector(choices: Sequence[int], rng: np.random.Generator) -> list[int]:
    """A uniformly random choice vector."""
    return [int(rng.integers(0, n)) for n in choices]


def space_size(choices: Sequence[int]) -> int:
    """How many distinct choice vectors the space has."""
    size = 1
    for n in choices:
        size *= int(n)
    return size


def vector_key(vector: Sequence[int]) -> str:
    """A compact, hashable identity of a choice vector (for seen-sets in adapter state)."""
    return ",".join(str(int(v)) for v in vector)
