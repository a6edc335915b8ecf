"""DeepHyper's small NT3 search space ("nt3"), Balaprakash et al. SC 2019, section 3.1.3.

Four cells of one block each, three sequential VariableNodes per block:

    c0, c1: conv (Identity, Conv1D(3..6), 8 filters, stride 1)
            -> act (Identity, relu, tanh, sigmoid)
            -> pool (Identity, MaxPooling1D(3..6))
    c2, c3: dense (Identity, Dense 10, 50, 100, 200, 250, 500, 750, 1000)
            -> act (the same 4)
            -> drop (Identity, Dropout 0.5, 0.4, 0.3, 0.2, 0.1, 0.05)

then Dense(num_classes) on the flattened output (logits). Size, counted as the paper
counts (the product of the VariableNodes' option counts): (5*4*5)^2 * (9*4*7)^2 =
635,040,000 = 6.3504e8. The paper's Dense list prints "500" twice; 750 is taken for the
second (the count, 9 options, is the paper's). c2 starts with a ConstantNode Flatten
(NT3's reference network flattens there), which adds no position.

NT3 is 1-D (gene expression). It takes A4NN's sample `(C, H, W)` as a sequence of
length H*W with C channels (`Input(layout="1d")`); a data set of vectors is stored as
`(1, 1, L)`.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from pydantic import BaseModel, ConfigDict

from a4nn.registry import validate_options
from adapters.spaces.ops import (
    Activation,
    Conv1D,
    Dense,
    Dropout,
    Flatten,
    Identity,
    MaxPool1D,
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

NAME = "nt3"
PAPER_SIZE = 635_040_000  # 6.3504e8, section 3.1.3

CONV = (Identity(), *(Conv1D(k, 8) for k in (3, 4, 5, 6)))
ACT = (Identity(), Activation("relu"), Activation("tanh"), Activation("sigmoid"))
POOL = (Identity(), *(MaxPool1D(k) for k in (3, 4, 5, 6)))
DENSE = (Identity(), *(Dense(u) for u in (10, 50, 100, 200, 250, 500, 750, 1000)))
DROP = (Identity(), *(Dropout(r) for r in (0.5, 0.4, 0.3, 0.2, 0.1, 0.05)))


class NT3Options(BaseModel):
    """The NT3 space has no options; any given is an error."""

    model_config = ConfigDict(extra="forbid")


def nt3_structure() -> Structure:
    def conv_cell(name: str) -> Cell:
        nodes = (VariableNode("conv", CONV), VariableNode("act", ACT), VariableNode("pool", POOL))
        return Cell(name, (Block("b0", nodes),))

    def dense_cell(name: str, flatten: bool) -> Cell:
        head = (ConstantNode("flatten", Flatten()),) if flatten else ()
        nodes = (
            *head,
            VariableNode("dense", DENSE),
            VariableNode("act", ACT),
            VariableNode("drop", DROP),
        )
        return Cell(name, (Block("b0", nodes),))

    return Structure(
        inputs=(Input("x", layout="1d"),),
        cells=(conv_cell("c0"), conv_cell("c1"), dense_cell("c2", True), dense_cell("c3", False)),
    )


def make_nt3_space(options: Mapping[str, Any]) -> LanguageSpace:
    """The registry's factory (entry point `a4nn.spaces: nt3`)."""
    validate_options(NT3Options, options, "search.space_options")
    return LanguageSpace(NAME, nt3_structure())
