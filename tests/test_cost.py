"""a4nn.cost.count_cost: MFLOPs per sample (torch.utils.flop_counter) and parameters,
and `SearchSpace.cost`, which the core calls with a candidate's architecture."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from a4nn.cost import count_cost
from a4nn.registry import create_space
from adapters.nsganet.model import build_model
from adapters.nsganet.search_space import MacroOptions, NSGANetMacroSpace

GENOME_27 = [[0, 0, 0, 0, 1, 1, 1], [0, 0, 0, 0, 0, 0, 0], [0, 1, 0, 0, 0, 0, 1]]


def test_single_conv_matches_hand_count():
    conv = nn.Conv2d(3, 8, kernel_size=3, padding=1, bias=False)
    macs = 16 * 16 * 8 * 3 * 3 * 3  # output pixels x out channels x (in channels x kernel)
    mflops, params = count_cost(conv, (3, 16, 16))
    assert mflops == pytest.approx(macs / 1e6)
    assert params == 8 * 3 * 3 * 3
    mflops2, _ = count_cost(conv, (3, 16, 16), flops_per_mac=2)
    assert mflops2 == pytest.approx(2 * macs / 1e6)


def test_hand_counted_nsganet_network():
    """1 phase of 2 nodes [1, 0], 4 channels, 10x10 input: 3x3 input conv (no padding,
    8x8 out), two 3x3 4->4 node convs, linear 4->2."""
    model = build_model([[1, 0]], channels=(4,), nodes_per_phase=2)
    mflops, params = count_cost(model, (1, 10, 10))
    macs = 64 * 4 * 9 + 2 * (64 * 4 * 4 * 9) + 4 * 2
    assert mflops == pytest.approx(macs / 1e6)
    assert params == 36 + 2 * (144 + 8) + 8 + 10


def test_paper_network_is_within_the_commons_convention():
    """Commons `flops` of model 27 is 470.655 MFLOPs (multiply-adds + BN/ReLU/pool)."""
    mflops, params = count_cost(build_model(GENOME_27, channels=(24, 48, 96)), (1, 127, 127))
    assert 0.97 * 470.655 < mflops < 470.655
    # phase 0 (24 ch): 3x3 input conv 216 + 3 nodes x (5184 + BN 48) + 2 merges x 1152 + BN 48
    # phase 2 (48 ch): 1x1 input conv 1152 + 2 nodes x (20736 + 96) + merge 4608 + BN 96
    assert params == (216 + 3 * 5232 + 2 * 1152 + 48) + (1152 + 2 * 20832 + 4608 + 96) + 98


def test_cost_grows_with_channels_and_is_positive():
    costs = [count_cost(build_model(GENOME_27, channels=c), (1, 32, 32)) for c in (4, 8, 16)]
    assert all(f > 0 and p > 0 for f, p in costs)
    assert costs[0][0] < costs[1][0] < costs[2][0]
    assert costs[0][1] < costs[1][1] < costs[2][1]
    # convolution work is quadratic in width: doubling channels roughly quadruples it
    assert 3.0 < costs[2][0] / costs[1][0] < 4.1


def test_counts_only_trainable_parameters_and_restores_training_mode():
    model = build_model(GENOME_27, channels=4)
    model.train()
    _, all_params = count_cost(model, (1, 16, 16))
    assert model.training
    model.classifier.weight.requires_grad_(False)
    _, trainable = count_cost(model, (1, 16, 16))
    assert trainable == all_params - model.classifier.weight.numel()
    model.eval()
    count_cost(model, (1, 16, 16))
    assert not model.training


def test_batchnorm_statistics_untouched():
    model = build_model(GENOME_27, channels=4)
    before = {k: v.clone() for k, v in model.state_dict().items()}
    count_cost(model, (1, 16, 16))
    after = model.state_dict()
    assert all(torch.equal(before[k], after[k]) for k in before)


@pytest.mark.parametrize(
    ("shape", "message"),
    [
        (
            (127, 127),
            "input_shape must be one sample's (channels, height, width) as 3 positive ints, got (127, 127)",
        ),
        ((1, 0, 127), "got (1, 0, 127)"),
        ((1, 127.0, 127), "got (1, 127.0, 127)"),
    ],
)
def test_bad_input_shape(shape, message):
    with pytest.raises(ValueError) as err:
        count_cost(nn.Linear(2, 2), shape)
    assert message in str(err.value)


def test_bad_flops_per_mac():
    with pytest.raises(ValueError, match="flops_per_mac must be 1 or 2, got 3"):
        count_cost(nn.Conv2d(1, 1, 1), (1, 4, 4), flops_per_mac=3)


def test_forward_failure_names_the_shape():
    model = build_model(GENOME_27, channels=4, in_channels=1)
    with pytest.raises(
        ValueError,
        match=r"cannot count the cost of MacroNet on input shape \(3, 16, 16\): the forward pass fails",
    ):
        count_cost(model, (3, 16, 16))


# -- through the search space ---------------------------------------------------------------
def test_space_cost_of_a_hand_counted_network():
    """The same network as above, reached through the space's options and architecture."""
    space = NSGANetMacroSpace(MacroOptions(phases=1, nodes_per_phase=2, channels=[4]))
    mflops, params = space.cost([[1, 0]], (1, 10, 10), num_classes=2)
    macs = 64 * 4 * 9 + 2 * (64 * 4 * 4 * 9) + 4 * 2
    assert mflops == pytest.approx(macs / 1e6)
    assert params == 36 + 2 * (144 + 8) + 8 + 10
    # more classes: a wider linear layer (4 inputs, 5 outputs + bias)
    assert space.cost([[1, 0]], (1, 10, 10), num_classes=5)[1] == params - 10 + 25


def test_space_cost_of_the_paper_network():
    space = create_space("nsganet-macro", {})  # the paper's channels 24, 48, 96
    mflops, params = space.cost(GENOME_27, (1, 127, 127), 2)
    assert 0.97 * 470.655 < mflops < 470.655
    assert (mflops, params) == count_cost(
        build_model(GENOME_27, channels=(24, 48, 96)), (1, 127, 127)
    )


def test_space_cost_counts_the_model_it_is_given():
    """`model=` spares building the network twice: the given model is what is counted."""
    space = NSGANetMacroSpace()
    conv = nn.Conv2d(1, 8, kernel_size=3, padding=1, bias=False)
    assert space.cost(GENOME_27, (1, 16, 16), 2, model=conv) == count_cost(conv, (1, 16, 16))
    model = space.build(GENOME_27, (1, 16, 16), 2)
    assert space.cost(GENOME_27, (1, 16, 16), 2, model=model) == space.cost(
        GENOME_27, (1, 16, 16), 2
    )


def test_space_cost_rejects_a_bad_input_shape():
    with pytest.raises(ValueError, match="input_shape must be one sample's"):
        NSGANetMacroSpace().cost(GENOME_27, (1, 0, 127), 2)
