"""A small image space for A4NN's XFEL diffraction patterns ("xfel-image").

Inputs are one-channel patterns of about 32 x 32 pixels with 2 classes (two
conformations). For `cells` = n (default 3) and `base_filters` = f (default 8), cell i
(i = 0..n-1, width w = f * 2**i) has two blocks whose outputs are added (the merge rule):

    conv block: conv (Identity, Conv2D 3x3 w, Conv2D 3x3 2w, Conv2D 5x5 w, Conv2D 5x5 2w)
                -> BatchNorm (constant; left out with batchnorm: false)
                -> act (Identity, relu, elu, tanh)
                -> pool (Identity, MaxPool2D(2), AvgPool2D(2))
    skip block: skip (Connect(Null), Connect(x), Connect(c0), ..., Connect(c{i-1}))

and a head cell: GlobalAvgPool (constant) -> dense (Identity, Dense(32, relu),
Dense(64, relu)) -> drop (Identity, Dropout(0.25)), then Dense(num_classes).

Choices: per cell 5, 4, 3 and i + 2 (skip), then 3 and 2: 3 cells give
(5*4*3)^3 * (2*3*4) * (3*2) = 31,104,000 architectures.

Why this space: the patterns are small, noisy (photon counts) and centred, and the
classes differ in the speckle layout, so the space searches what matters there at a
cost that an A4NN search affords: the receptive field (3x3 or 5x5, and when to
downsample: max pooling keeps bright speckles, average pooling smooths shot noise), the
width (w or 2w), and skips from the input or any earlier cell (a residual path when
the conv block is Identity-heavy). BatchNorm keeps every choice trainable from scratch
with A4NN's short SGD budgets. At most one 2x pooling per cell keeps 32 x 32 inputs at
>= 4 x 4 after 3 cells; the head's global average pooling makes the head independent of
the image size. On 32 x 32 with the defaults, costs run from almost nothing (all
Identity: a linear classifier on the mean pixel) to 66 MFLOPs and 69k parameters (5x5
convs of width 2w, no pooling), so the FLOPs objective has a real range to trade
against accuracy.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, StrictBool, StrictInt

from a4nn.registry import validate_options
from adapters.spaces.ops import (
    Activation,
    AvgPool2D,
    BatchNorm,
    Connect,
    Conv2D,
    Dense,
    Dropout,
    GlobalAvgPool,
    Identity,
    MaxPool2D,
)
from adapters.spaces.structure import (
    Block,
    Cell,
    ConstantNode,
    Input,
    LanguageSpace,
    Structure,
    VariableNode,
)

NAME = "xfel-image"

ACT = (Identity(), Activation("relu"), Activation("elu"), Activation("tanh"))
POOL = (Identity(), MaxPool2D(2), AvgPool2D(2))
HEAD_DENSE = (Identity(), Dense(32, "relu"), Dense(64, "relu"))
HEAD_DROP = (Identity(), Dropout(0.25))


class XFELImageOptions(BaseModel):
    """`search.space_options` of the xfel-image space."""

    model_config = ConfigDict(extra="forbid")

    cells: StrictInt = Field(3, ge=1, le=5)
    base_filters: StrictInt = Field(8, ge=1, le=256)
    batchnorm: StrictBool = True


def xfel_structure(options: XFELImageOptions | None = None) -> Structure:
    o = options or XFELImageOptions()
    cells: list[Cell] = []
    earlier = ["x"]
    for i in range(o.cells):
        w = o.base_filters * 2**i
        bias = not o.batchnorm
        conv = tuple(Conv2D(k, f, bias=bias) for k in (3, 5) for f in (w, 2 * w))
        nodes = [VariableNode("conv", (Identity(), conv[0], conv[1], conv[2], conv[3]))]
        if o.batchnorm:
            nodes.append(ConstantNode("bn", BatchNorm()))
        nodes += [VariableNode("act", ACT), VariableNode("pool", POOL)]
        skip = VariableNode("skip", (Connect(), *(Connect(src) for src in earlier)))
        blocks = (Block("conv", tuple(nodes)), Block("skip", (skip,)))
        cells.append(Cell(f"c{i}", blocks, output="add"))
        earlier.append(f"c{i}")
    head = (
        ConstantNode("gap", GlobalAvgPool()),
        VariableNode("dense", HEAD_DENSE),
        VariableNode("drop", HEAD_DROP),
    )
    cells.append(Cell("head", (Block("b0", head),)))
    return Structure(inputs=(Input("x"),), cells=tuple(cells))


def make_xfel_image_space(options: Mapping[str, Any]) -> LanguageSpace:
    """The registry's factory (entry point `a4nn.spaces: xfel-image`)."""
    opts = validate_options(XFELImageOptions, options, "search.space_options")
    return LanguageSpace(NAME, xfel_structure(opts))
