"""Operations of the space language (what a node does) and the merge rule.

Shapes here are one sample's, without the batch: `(features,)`, `(channels, length)` or
`(channels, height, width)`. A unary op's `build(shape)` returns the torch module for an
input of that shape; the network (`structure.Network`) builds each module once, from the
shape that actually reaches it, so no op needs to be told its input size.

Merging several tensors (`merge`, used by `Add`, `Concatenate`, `Connect` with several
sources, a node with several inputs, a block with several inputs and a cell's output
rule) is parameter-free:

1. `None` values (from a `Connect()` "Null" choice) are dropped; nothing left gives None,
   one tensor is returned as it is.
2. Tensors of different rank are each flattened to `(features,)`.
3. Spatial sizes (rank 2 and 3) are made equal by adaptive average pooling of each
   spatial axis to the smallest size among the tensors.
4. `add`: channels (or features) are zero-padded at the end to the largest count, then
   summed (ResNet's parameter-free "option A" shortcut). `concat`: channels (or features)
   are concatenated.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Literal

import torch
import torch.nn.functional as F
from torch import nn

from a4nn.space import ArchError

Shape = tuple[int, ...]
MergeRule = Literal["add", "concat"]
MERGE_RULES = ("add", "concat")

ACTIVATIONS = {
    "relu": nn.ReLU,
    "tanh": nn.Tanh,
    "sigmoid": nn.Sigmoid,
    "elu": nn.ELU,
    "gelu": nn.GELU,
    "leaky_relu": nn.LeakyReLU,
}


class Op:
    """Base of all operations. `kind` is "unary" (one input, a module), "merge" (several
    inputs, no parameters) or "connect" (reads other outputs, not its own inputs)."""

    kind = "unary"

    @property
    def label(self) -> str:
        return type(self).__name__

    def build(self, shape: Shape) -> nn.Module:
        raise NotImplementedError


def _need_rank(op: Op, shape: Shape, ranks: tuple[int, ...]) -> None:
    if len(shape) not in ranks:
        raise ArchError(
            f"{op.label} needs an input of rank {' or '.join(map(str, ranks))} "
            f"(one sample's shape), got {shape}"
        )


class _To1D(nn.Module):
    """(N, F) -> (N, 1, F); (N, C, H, W) -> (N, C, H*W); (N, C, L) unchanged."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if x.dim() == 2:
            return x.unsqueeze(1)
        return x.flatten(2) if x.dim() > 3 else x


def _as_1d(shape: Shape) -> Shape:
    if len(shape) == 1:
        return (1, shape[0])
    return (shape[0], math.prod(shape[1:]))


def _same(size: int, kernel: int, stride: int) -> tuple[int, int]:
    """Keras's 'same' padding of one axis: output ceil(size / stride); an odd total puts
    the extra zero at the end."""
    out = -(-size // stride)
    total = max((out - 1) * stride + kernel - size, 0)
    return (total // 2, total - total // 2)


# -- unary ops ---------------------------------------------------------------------------
@dataclass(frozen=True)
class Identity(Op):
    def build(self, shape: Shape) -> nn.Module:
        return nn.Identity()


@dataclass(frozen=True)
class Activation(Op):
    name: str

    def __post_init__(self) -> None:
        if self.name not in ACTIVATIONS:
            raise ValueError(f"unknown activation {self.name!r}; one of {sorted(ACTIVATIONS)}")

    @property
    def label(self) -> str:
        return f"Activation({self.name})"

    def build(self, shape: Shape) -> nn.Module:
        return ACTIVATIONS[self.name]()


@dataclass(frozen=True)
class Dense(Op):
    """A fully connected layer; an input of rank > 1 is flattened first."""

    units: int
    activation: str | None = None

    @property
    def label(self) -> str:
        return f"Dense({self.units}{', ' + self.activation if self.activation else ''})"

    def build(self, shape: Shape) -> nn.Module:
        layers: list[nn.Module] = [nn.Flatten()] if len(shape) > 1 else []
        layers.append(nn.Linear(math.prod(shape), self.units))
        if self.activation:
            layers.append(Activation(self.activation).build((self.units,)))
        return nn.Sequential(*layers)


@dataclass(frozen=True)
class Dropout(Op):
    rate: float

    @property
    def label(self) -> str:
        return f"Dropout({self.rate:g})"

    def build(self, shape: Shape) -> nn.Module:
        return nn.Dropout(self.rate)


@dataclass(frozen=True)
class BatchNorm(Op):
    """Batch normalization over the channels (features for a rank-1 input)."""

    def build(self, shape: Shape) -> nn.Module:
        return nn.BatchNorm2d(shape[0]) if len(shape) == 3 else nn.BatchNorm1d(shape[0])


@dataclass(frozen=True)
class Flatten(Op):
    def build(self, shape: Shape) -> nn.Module:
        return nn.Flatten()


@dataclass(frozen=True)
class GlobalAvgPool(Op):
    """The mean over the spatial axes: (C, ...) -> (C,); a rank-1 input is unchanged."""

    def build(self, shape: Shape) -> nn.Module:
        if len(shape) == 1:
            return nn.Identity()
        return nn.Sequential(nn.Flatten(2), _Mean())


class _Mean(nn.Module):
    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x.mean(dim=2)


@dataclass(frozen=True)
class _Conv(Op):
    """A convolution of `dims` spatial axes, `filters` outputs, Keras's 'same' padding."""

    kernel: int
    filters: int
    stride: int = 1
    bias: bool = True
    dims = 1

    @property
    def label(self) -> str:
        k = "x".join([str(self.kernel)] * self.dims)
        s = f", stride {self.stride}" if self.stride != 1 else ""
        return f"{type(self).__name__}({k}, {self.filters}{s})"


@dataclass(frozen=True)
class Conv1D(_Conv):
    """1-D convolution, `filters` outputs, Keras's 'same' padding. Input (F,) is taken as (1, F)
    and (C, H, W) as (C, H*W)."""

    def build(self, shape: Shape) -> nn.Module:
        c, length = _as_1d(shape)
        pad = nn.ConstantPad1d(_same(length, self.kernel, self.stride), 0.0)
        conv = nn.Conv1d(c, self.filters, self.kernel, self.stride, bias=self.bias)
        return nn.Sequential(_To1D(), pad, conv)


@dataclass(frozen=True)
class Conv2D(_Conv):
    """2-D convolution, `filters` outputs, Keras's 'same' padding; needs a (C, H, W) input."""

    dims = 2

    def build(self, shape: Shape) -> nn.Module:
        _need_rank(self, shape, (3,))
        pad = _same(shape[2], self.kernel, self.stride) + _same(shape[1], self.kernel, self.stride)
        conv = nn.Conv2d(shape[0], self.filters, self.kernel, self.stride, bias=self.bias)
        return nn.Sequential(nn.ZeroPad2d(pad), conv)


@dataclass(frozen=True)
class _Pool(Op):
    """Pooling with stride = size (Keras's default) and ceil mode; a window larger than
    the input is shrunk to the input, so an axis never drops below 1."""

    size: int
    dims = 1
    mode = "max"

    @property
    def label(self) -> str:
        return f"{type(self).__name__}({self.size})"

    def build(self, shape: Shape) -> nn.Module:
        if self.dims == 1:
            spatial = _as_1d(shape)[1:]
            k = min(self.size, spatial[0])
            cls = nn.MaxPool1d if self.mode == "max" else nn.AvgPool1d
            return nn.Sequential(_To1D(), cls(k, k, ceil_mode=True))
        _need_rank(self, shape, (3,))
        k = tuple(min(self.size, d) for d in shape[1:])
        cls = nn.MaxPool2d if self.mode == "max" else nn.AvgPool2d
        return cls(k, k, ceil_mode=True)


@dataclass(frozen=True)
class MaxPool1D(_Pool):
    pass


@dataclass(frozen=True)
class AvgPool1D(_Pool):
    mode = "avg"


@dataclass(frozen=True)
class MaxPool2D(_Pool):
    dims = 2


@dataclass(frozen=True)
class AvgPool2D(_Pool):
    dims = 2
    mode = "avg"


# -- merges and skips ----------------------------------------------------------------------
@dataclass(frozen=True)
class Add(Op):
    """Sum of the node's inputs by the merge rule (module docstring)."""

    kind = "merge"
    rule = "add"


@dataclass(frozen=True)
class Concatenate(Op):
    """Channel (feature) concatenation of the node's inputs by the merge rule."""

    kind = "merge"
    rule = "concat"


@dataclass(frozen=True, init=False)
class Connect(Op):
    """A skip: the node's value is the output of `sources` (earlier inputs, cells or
    nodes, by reference), merged by `merge` when several; the node's own inputs are not
    used. `Connect()` is "Null": no value, which every consumer drops."""

    kind = "connect"
    sources: tuple[str, ...]
    merge: MergeRule

    def __init__(self, *sources: str, merge: MergeRule = "add") -> None:
        if merge not in MERGE_RULES:
            raise ValueError(f"Connect: merge must be one of {MERGE_RULES}, got {merge!r}")
        object.__setattr__(self, "sources", tuple(sources))
        object.__setattr__(self, "merge", merge)

    @property
    def label(self) -> str:
        if not self.sources:
            return "Connect(Null)"
        extra = f", {self.merge}" if len(self.sources) > 1 else ""
        return f"Connect({', '.join(self.sources)}{extra})"


# -- the merge rule -------------------------------------------------------------------------
def merge(tensors: list[torch.Tensor | None], rule: str) -> torch.Tensor | None:
    """Merge batched tensors by `rule` ("add" or "concat"), as the module docstring says."""
    ts = [t for t in tensors if t is not None]
    if len(ts) <= 1:
        return ts[0] if ts else None
    if len({t.dim() for t in ts}) > 1:
        ts = [t.flatten(1) for t in ts]
    rank = ts[0].dim()
    if rank > 2:
        smallest = tuple(min(t.shape[d] for t in ts) for d in range(2, rank))
        ts = [_pool_to(t, smallest) for t in ts]
    if rule == "concat":
        return torch.cat(ts, dim=1)
    width = max(t.shape[1] for t in ts)
    out = None
    for t in ts:
        if t.shape[1] < width:
            t = F.pad(t, (0, 0) * (rank - 2) + (0, width - t.shape[1]))
        out = t if out is None else out + t
    return out


def _pool_to(t: torch.Tensor, size: tuple[int, ...]) -> torch.Tensor:
    if tuple(t.shape[2:]) == size:
        return t
    if t.dim() == 3:
        return F.adaptive_avg_pool1d(t, size)
    if t.dim() == 4:
        return F.adaptive_avg_pool2d(t, size)
    raise ArchError(f"cannot merge tensors of shape {tuple(t.shape)}: rank above 4")
