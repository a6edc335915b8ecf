"""NSGA-Net's macro search space: a genome is one bit-string per phase.

A phase of n nodes has n(n-1)/2 connection bits (bit for "node j feeds node i", j < i,
grouped by the receiving node: [2<-1], [3<-1, 3<-2], [4<-1, 4<-2, 4<-3], ...) followed by
one skip bit. The paper uses 3 phases of 4 nodes, i.e. 7 bits per phase and 21 in all.
This module only handles bits (validation, sampling, flattening for the GA); `decode`
turns them into a graph and `model` into a network.
"""

from __future__ import annotations

import json
import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from a4nn.space import ArchError

Genome = list[list[int]]
"""NSGA-Net macro genome: one bit-list per phase (n(n-1)/2 connection bits + 1 skip bit)."""


class GenomeError(ArchError):
    """A genome that does not belong to the search space (says where and what is expected)."""


def bits_per_phase(nodes_per_phase: int) -> int:
    """n(n-1)/2 connection bits plus one skip bit."""
    if not isinstance(nodes_per_phase, int | np.integer) or nodes_per_phase < 2:
        raise GenomeError(f"nodes_per_phase must be an integer >= 2, got {nodes_per_phase!r}")
    n = int(nodes_per_phase)
    return n * (n - 1) // 2 + 1


def nodes_for_bits(length: int) -> int:
    """The node count n whose phases have `length` = n(n-1)/2 + 1 bits (inverse of above)."""
    n = int(round((1 + math.sqrt(1 + 8 * (length - 1))) / 2)) if length >= 2 else 0
    if n < 2 or bits_per_phase(n) != length:
        valid = ", ".join(f"{bits_per_phase(k)} ({k} nodes)" for k in range(2, 7))
        raise GenomeError(
            f"a phase of {length} bits does not match any node count; "
            f"valid lengths are n(n-1)/2 + 1: {valid}, ..."
        )
    return n


def _is_bit(v: Any) -> bool:
    if isinstance(v, bool | np.bool_):
        return True
    return isinstance(v, int | np.integer) and int(v) in (0, 1)


@dataclass(frozen=True)
class MacroSpace:
    """The bit-string search space: `phases` phases of `nodes_per_phase` nodes each."""

    phases: int = 3
    nodes_per_phase: int = 4

    def __post_init__(self) -> None:
        if not isinstance(self.phases, int | np.integer) or self.phases < 1:
            raise GenomeError(f"phases must be an integer >= 1, got {self.phases!r}")
        bits_per_phase(self.nodes_per_phase)  # validates nodes_per_phase

    @property
    def bits_per_phase(self) -> int:
        return bits_per_phase(self.nodes_per_phase)

    @property
    def n_bits(self) -> int:
        return self.phases * self.bits_per_phase

    @property
    def size(self) -> int:
        """Number of distinct genomes (bit-strings) in the space."""
        return 2**self.n_bits

    def describe_shape(self) -> str:
        n = self.nodes_per_phase
        return (
            f"{self.phases} phases x {self.bits_per_phase} bits "
            f"({n} nodes: {n * (n - 1) // 2} connection bits + 1 skip bit)"
        )

    def validate(self, genome: Any, *, where: str = "genome") -> Genome:
        """Check `genome` and return it as a plain list of lists of 0/1 ints.

        `where` names the genome's origin in error messages (a file, a model id...).
        """
        if isinstance(genome, str | bytes) or not isinstance(genome, Sequence | np.ndarray):
            raise GenomeError(
                f"{where}: expected a list of {self.phases} phases (lists of 0/1), "
                f"got {type(genome).__name__} {genome!r:.80}"
            )
        if len(genome) != self.phases:
            raise GenomeError(
                f"{where}: has {len(genome)} phases, expected {self.describe_shape()}"
            )
        out: Genome = []
        for p, phase in enumerate(genome):
            if isinstance(phase, str | bytes) or not isinstance(phase, Sequence | np.ndarray):
                raise GenomeError(
                    f"{where}: phase {p} is {type(phase).__name__} {phase!r:.60}, expected a "
                    f"list of {self.bits_per_phase} bits"
                )
            if len(phase) != self.bits_per_phase:
                raise GenomeError(
                    f"{where}: phase {p} has {len(phase)} bits, expected {self.bits_per_phase} "
                    f"({self.describe_shape()})"
                )
            for i, v in enumerate(phase):
                if not _is_bit(v):
                    raise GenomeError(f"{where}: phase {p}, position {i} is {v!r}; expected 0 or 1")
            out.append([int(v) for v in phase])
        return out

    def random(self, rng: np.random.Generator) -> Genome:
        """A uniformly random genome (each bit 0 or 1 with probability 1/2)."""
        return self.unflatten(rng.integers(0, 2, size=self.n_bits))

    def flatten(self, genome: Any) -> np.ndarray:
        """The genome as one bool vector of `n_bits` (phase 0 first), for the GA."""
        g = self.validate(genome)
        return np.array([b for phase in g for b in phase], dtype=bool)

    def unflatten(self, bits: Any) -> Genome:
        """Inverse of `flatten`: a vector of `n_bits` 0/1 values into phases."""
        arr = np.asarray(bits)
        if arr.ndim != 1 or arr.shape[0] != self.n_bits:
            raise GenomeError(
                f"flat genome has shape {arr.shape}, expected ({self.n_bits},) "
                f"for {self.describe_shape()}"
            )
        k = self.bits_per_phase
        return self.validate(
            [arr[i * k : (i + 1) * k].tolist() for i in range(self.phases)], where="flat genome"
        )

    def key(self, genome: Any) -> str:
        """A compact hashable identity of the bit-string (e.g. '0000111-0000000-0100001')."""
        return "-".join("".join(str(b) for b in phase) for phase in self.validate(genome))


def infer_space(genome: Any, *, where: str = "genome") -> MacroSpace:
    """The space a genome's own shape implies: its phase count and its first phase's nodes."""
    if (
        isinstance(genome, str | bytes)
        or not isinstance(genome, Sequence | np.ndarray)
        or len(genome) == 0
        or isinstance(genome[0], str | bytes)
        or not isinstance(genome[0], Sequence | np.ndarray)
    ):
        raise GenomeError(
            f"{where}: expected a non-empty list of phases (lists of 0/1 bits), got {genome!r:.80}"
        )
    try:
        nodes = nodes_for_bits(len(genome[0]))
    except GenomeError as err:
        raise GenomeError(f"{where}: phase 0: {err}") from None
    return MacroSpace(phases=len(genome), nodes_per_phase=nodes)


def parse_genome(text: str, space: MacroSpace | None = None, *, where: str = "genome") -> Genome:
    """Parse a genome written as JSON text (the commons' `genome` column) and validate it.

    Without `space`, the phase count and node count are inferred from the text.
    """
    try:
        raw = json.loads(text)
    except (TypeError, json.JSONDecodeError) as err:
        raise GenomeError(
            f"{where}: {text!r:.80} is not a genome; write it as JSON, "
            "e.g. [[0, 0, 0, 0, 1, 1, 1], [0, 0, 0, 0, 0, 0, 0], [0, 1, 0, 0, 0, 0, 1]]"
        ) from err
    if space is None:
        space = infer_space(raw, where=where)
    return space.validate(raw, where=where)
