"""Genome -> torch network, following NSGA-Net's macro decoder (`ResidualGenomeDecoder`).

Per active phase (see `decode` for which phases are active and how nodes are wired):

- an input convolution to the phase's channels, only when the channel count changes:
  3x3 without padding for the first active phase, 1x1 for the others (NSGA-Net's
  `first_conv`; it builds that layer even when it skips it, we do not);
- nodes are conv3x3 (padding 1, no bias) - BatchNorm - ReLU at the phase's channels;
- a vertex with several inputs concatenates them along channels and mixes them back to
  the phase's channels with a 1x1 convolution (no bias);
- the phase output is BatchNorm - ReLU of its inputs: the sink nodes and, when the skip
  bit is set, the phase input (NSGA-Net's "residual" path is this concatenation + 1x1
  convolution, not an addition);
- 2x2 max pooling between active phases; global average pooling and a linear classifier
  at the end. A genome with no active phase is global average pooling + linear.

With channels (24, 48, 96) on 1x127x127 inputs this reproduces, for every one of the 182
distinct genomes in the A4NN ICPP'23 commons, the `flops` column to its 4 decimals (see
docs/search_space.md).
"""

from __future__ import annotations

from collections.abc import Sequence
from numbers import Integral
from typing import Any

import torch
from torch import nn

from adapters.nsganet.decode import dependency_graph, describe, phase_active
from adapters.nsganet.space import GenomeError, MacroSpace

__all__ = ["MacroNet", "Phase", "Node", "build_model", "describe", "resolve_channels"]


def resolve_channels(channels: int | Sequence[int], phases: int) -> list[int]:
    """Channels per phase: an int c means c, 2c, 4c, ... (NSGA-Net's doubling)."""
    if isinstance(channels, bool):
        raise ValueError(f"channels must be a positive int or a list of them, got {channels!r}")
    if isinstance(channels, Integral):
        if channels < 1:
            raise ValueError(f"channels must be >= 1, got {channels}")
        return [int(channels) * 2**i for i in range(phases)]
    chans = list(channels)
    if len(chans) != phases:
        raise ValueError(
            f"channels {chans} has {len(chans)} entries but the genome has {phases} phases; "
            "give one channel count per phase or a single int"
        )
    for i, c in enumerate(chans):
        if isinstance(c, bool) or not isinstance(c, Integral) or c < 1:
            raise ValueError(f"channels[{i}] = {c!r}; expected a positive int")
    return [int(c) for c in chans]


class Node(nn.Sequential):
    """NSGA-Net's node: conv3x3 - BatchNorm - ReLU, channels preserved."""

    def __init__(self, channels: int) -> None:
        super().__init__(
            nn.Conv2d(channels, channels, kernel_size=3, padding=1, bias=False),
            nn.BatchNorm2d(channels),
            nn.ReLU(inplace=True),
        )


class Phase(nn.Module):
    """One active phase: input conv, wired nodes, concat + 1x1 merges, BN - ReLU output."""

    def __init__(self, bits: list[int], in_channels: int, out_channels: int, first: bool) -> None:
        super().__init__()
        self.graph = dependency_graph(bits)
        self.n_nodes = len(self.graph) - 1
        if in_channels != out_channels:
            k = 3 if first else 1
            self.first_conv: nn.Module = nn.Conv2d(in_channels, out_channels, k, bias=False)
        else:
            self.first_conv = nn.Identity()
        self.nodes = nn.ModuleDict(
            {str(i): Node(out_channels) for i in range(1, self.n_nodes + 1) if self.graph[i]}
        )
        self.merges = nn.ModuleDict(
            {
                str(v): nn.Conv2d(len(deps) * out_channels, out_channels, 1, bias=False)
                for v, deps in self.graph.items()
                if len(deps) > 1
            }
        )
        self.out = nn.Sequential(nn.BatchNorm2d(out_channels), nn.ReLU(inplace=True))

    def _gather(self, v: int, outs: dict[int, torch.Tensor]) -> torch.Tensor:
        deps = self.graph[v]
        if len(deps) == 1:
            return outs[deps[0]]
        return self.merges[str(v)](torch.cat([outs[j] for j in deps], dim=1))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        outs = {0: self.first_conv(x)}
        for i in range(1, self.n_nodes + 1):
            if self.graph[i]:
                outs[i] = self.nodes[str(i)](self._gather(i, outs))
        return self.out(self._gather(self.n_nodes + 1, outs))


class MacroNet(nn.Module):
    """The decoded network: active phases with max pooling between, GAP, linear."""

    def __init__(
        self, genome: list[list[int]], in_channels: int, num_classes: int, channels: list[int]
    ) -> None:
        super().__init__()
        self.genome = [list(p) for p in genome]
        active = [bits for bits in genome if phase_active(bits)]
        layers: list[nn.Module] = []
        c_in = in_channels
        for k, (bits, c_out) in enumerate(zip(active, channels[: len(active)], strict=True)):
            if k > 0:
                layers.append(nn.MaxPool2d(kernel_size=2, stride=2))
            layers.append(Phase(bits, c_in, c_out, first=k == 0))
            c_in = c_out
        self.features = nn.Sequential(*layers)  # empty: identity (no active phase)
        self.pool = nn.AdaptiveAvgPool2d(1)
        self.classifier = nn.Linear(c_in, num_classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.classifier(torch.flatten(self.pool(self.features(x)), 1))


def build_model(
    genome: Any,
    *,
    in_channels: int = 1,
    num_classes: int = 2,
    channels: int | Sequence[int] = (16, 32, 64),
    nodes_per_phase: int = 4,
) -> MacroNet:
    """Build the network a macro genome encodes (deterministic under torch.manual_seed).

    `channels` gives each phase's width (one per phase) or a base width c for c, 2c, 4c...
    The A4NN paper's networks used 24 (24, 48, 96). Raises `GenomeError` for a genome
    outside the space and `ValueError` for bad sizes, naming the value at fault.
    """
    for name, v in (("in_channels", in_channels), ("num_classes", num_classes)):
        if isinstance(v, bool) or not isinstance(v, Integral) or v < 1:
            raise ValueError(f"{name} must be a positive int, got {v!r}")
    in_channels, num_classes = int(in_channels), int(num_classes)
    if isinstance(channels, Integral) and not isinstance(channels, bool):
        if isinstance(genome, str | bytes) or not isinstance(genome, Sequence) or not genome:
            raise GenomeError(f"genome: expected a non-empty list of phases, got {genome!r:.80}")
        phases = len(genome)
    elif isinstance(channels, Sequence) and not isinstance(channels, str | bytes):
        phases = len(channels)
        is_list = isinstance(genome, Sequence) and not isinstance(genome, str | bytes)
        if is_list and len(genome) != phases:
            raise GenomeError(
                f"genome has {len(genome)} phases but channels {list(channels)} gives "
                f"{phases}; give one channel count per phase (or a single int)"
            )
    else:
        raise ValueError(f"channels must be a positive int or a list of them, got {channels!r}")
    space = MacroSpace(phases=phases, nodes_per_phase=nodes_per_phase)
    g = space.validate(genome)
    return MacroNet(g, in_channels, num_classes, resolve_channels(channels, phases))
