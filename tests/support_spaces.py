"""A toy search space for the adapter tests (and benchmarks/adapters/bench.py): integer
choices and nothing else."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

from a4nn.space import check_vector, sample_vector


class VectorSpace:
    """A search space of integer choices (not bits): the arch is {"v": [...]}."""

    def __init__(self, name: str, choices: Sequence[int]) -> None:
        self.name = name
        self._choices = [int(c) for c in choices]

    def choices(self) -> list[int]:
        return list(self._choices)

    def sample(self, rng: np.random.Generator) -> dict[str, list[int]]:
        return {"v": sample_vector(self._choices, rng)}

    def encode(self, arch: Any) -> list[int]:
        return check_vector(arch["v"], self._choices, self.name)

    def decode(self, vector: Sequence[int]) -> dict[str, list[int]]:
        return {"v": check_vector(vector, self._choices, self.name)}

    def build(self, arch, input_shape, num_classes):  # never trained in the tests
        raise NotImplementedError

    def cost(self, arch, input_shape, num_classes, model=None):
        raise NotImplementedError

    def describe(self, arch: Any) -> dict[str, Any]:
        return {"graph": {"nodes": [{"id": "v", "label": str(arch["v"])}], "edges": []}}
