"""Cost of a network: FLOPs per sample (torch.utils.flop_counter) and trainable parameters.

Convention: by default one multiply-add counts as ONE FLOP, i.e. `FlopCounterMode`'s
total (which counts 2 per multiply-add) halved. That is the convention of the A4NN
commons' `flops` column (NSGA-Net's counter counts a convolution as its multiply-adds):
for the paper's networks our value is 97.8-99.1% of that column (median 98.9%); the
rest is BatchNorm/ReLU/pooling element-wise work that NSGA-Net's counter adds and
`FlopCounterMode` does not count. Pass `flops_per_mac=2` for the 2-FLOP convention.
"""

from __future__ import annotations

from collections.abc import Sequence
from numbers import Integral
from typing import Any

import torch
from torch import nn
from torch.utils.flop_counter import FlopCounterMode


def count_cost(
    model: nn.Module,
    input_shape: Sequence[int] = (1, 127, 127),
    *,
    flops_per_mac: int = 1,
) -> tuple[float, int]:
    """(MFLOPs of one forward pass of one sample, trainable parameter count).

    `input_shape` is one sample's (channels, height, width). The model runs in eval mode
    on a zero batch of 1 without gradients, on the device and dtype of its parameters;
    its training mode is restored afterwards.
    """
    shape = tuple(input_shape)
    if len(shape) != 3 or not all(
        isinstance(d, Integral) and not isinstance(d, bool) and d > 0 for d in shape
    ):
        raise ValueError(
            f"input_shape must be one sample's (channels, height, width) as 3 positive ints, "
            f"got {input_shape!r}"
        )
    shape = tuple(int(d) for d in shape)
    if flops_per_mac not in (1, 2):
        raise ValueError(f"flops_per_mac must be 1 or 2, got {flops_per_mac!r}")
    param = next(model.parameters(), None)
    device = param.device if param is not None else torch.device("cpu")
    dtype = param.dtype if param is not None else torch.float32
    x = torch.zeros((1, *shape), device=device, dtype=dtype)
    was_training = model.training
    model.eval()
    try:
        with torch.no_grad(), FlopCounterMode(display=False) as counter:
            model(x)
    except RuntimeError as err:
        raise ValueError(
            f"cannot count the cost of {type(model).__name__} on input shape {shape}: the "
            f"forward pass fails ({err}); check the image size and in_channels"
        ) from err
    finally:
        model.train(was_training)
    flops = counter.get_total_flops() * flops_per_mac / 2
    params = sum(p.numel() for p in model.parameters() if p.requires_grad)
    return flops / 1e6, int(params)


def space_cost(
    space: Any, arch: Any, input_shape: Sequence[int], num_classes: int, model: Any = None
) -> tuple[float, int]:
    """A search space's default `cost`: count the built model (built here unless given)."""
    if model is None:
        model = space.build(arch, input_shape, num_classes)
    return count_cost(model, tuple(input_shape))
