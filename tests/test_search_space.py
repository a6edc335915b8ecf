"""NSGA-Net macro search space: genome validation, decoding to graphs and to networks,
and the registered `SearchSpace` ("nsganet-macro") built on them.

The reference rows come from the A4NN ICPP'23 commons data
(1gpu_1e15_stopping_training_data.csv, published with the paper: `genome`,
`architecture`, `flops`, `arch` = model id), copied here so the test needs no data files.
"""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch
from torch import nn

from a4nn.cost import count_cost
from a4nn.registry import OptionsError, create_space
from a4nn.space import ArchError, SearchSpace, vector_key
from adapters.nsganet.decode import architecture, dependency_graph, describe, phase_active
from adapters.nsganet.model import MacroNet, Node, Phase, build_model
from adapters.nsganet.search_space import MacroOptions, NSGANetMacroSpace
from adapters.nsganet.space import (
    GenomeError,
    MacroSpace,
    bits_per_phase,
    infer_space,
    nodes_for_bits,
    parse_genome,
)

# (model id, genome, architecture column, flops column [MFLOPs]) from the commons
COMMONS = [
    (
        99,
        [[0, 0, 0, 0, 0, 0, 1], [0, 0, 0, 0, 0, 0, 0], [0, 0, 0, 0, 0, 0, 1]],
        [
            [[0], [0, 0], [0, 0, 0], [1]],
            [[0], [0, 0], [0, 0, 0], [0]],
            [[0], [0, 0], [0, 0, 0], [1]],
        ],
        0.0161,
    ),
    (
        50,
        [[0, 1, 0, 0, 0, 0, 1], [0, 0, 0, 0, 0, 0, 0], [0, 0, 0, 0, 0, 0, 1]],
        [
            [[0], [1, 0], [0, 0, 0], [1]],
            [[0], [0, 0], [0, 0, 0], [0]],
            [[0], [0, 0], [0, 0, 0], [1]],
        ],
        187.125,
    ),
    (
        27,
        [[0, 0, 0, 0, 1, 1, 1], [0, 0, 0, 0, 0, 0, 0], [0, 1, 0, 0, 0, 0, 1]],
        [
            [[0], [0, 0], [0, 1, 1], [1]],
            [[0], [0, 0], [0, 0, 0], [0]],
            [[0], [1, 0], [0, 0, 0], [1]],
        ],
        470.655,
    ),
    (
        92,
        [[0, 0, 0, 0, 0, 0, 1], [0, 0, 0, 0, 1, 0, 0], [0, 1, 1, 0, 0, 0, 0]],
        [
            [[0], [0, 0], [0, 0, 0], [1]],
            [[0], [0, 0], [0, 1, 0], [0]],
            [[0], [1, 1], [0, 0, 0], [0]],
        ],
        432.7927,
    ),
    (
        6,
        [[0, 1, 0, 1, 0, 1, 0], [0, 1, 1, 0, 1, 1, 1], [1, 0, 0, 0, 0, 1, 0]],
        [
            [[0], [1, 0], [1, 0, 1], [0]],
            [[0], [1, 1], [0, 1, 1], [1]],
            [[1], [0, 0], [0, 0, 1], [0]],
        ],
        991.0611,
    ),
    (
        98,
        [[1, 0, 1, 1, 1, 0, 1], [0, 1, 0, 0, 1, 0, 0], [1, 1, 1, 0, 1, 1, 1]],
        [
            [[1], [0, 1], [1, 1, 0], [1]],
            [[0], [1, 0], [0, 1, 0], [0]],
            [[1], [1, 1], [0, 1, 1], [1]],
        ],
        1100.1861,
    ),
]
PAPER_CHANNELS = (24, 48, 96)
XFEL_SHAPE = (1, 127, 127)


def nsganet_counter_mflops(model: nn.Module, shape: tuple[int, int, int]) -> float:
    """Oracle: NSGA-Net's misc/flops_counter.py conventions (the commons' `flops`).

    Conv: multiply-adds; Linear: in*out; BatchNorm (affine): 2 per element; ReLU and
    pooling: 1 per input element.
    """
    total = 0

    def hook(m: nn.Module, inp: tuple[torch.Tensor, ...], out: torch.Tensor) -> None:
        nonlocal total
        x = inp[0]
        if isinstance(m, nn.Conv2d):
            kh, kw = m.kernel_size
            total += kh * kw * m.in_channels * m.out_channels * out.shape[2] * out.shape[3]
        elif isinstance(m, nn.Linear):
            total += m.in_features * m.out_features
        elif isinstance(m, nn.BatchNorm2d):
            total += 2 * x.numel()
        elif isinstance(m, nn.ReLU | nn.MaxPool2d | nn.AvgPool2d | nn.AdaptiveAvgPool2d):
            total += x.numel()

    handles = [m.register_forward_hook(hook) for m in model.modules()]
    model.eval()
    with torch.no_grad():
        model(torch.zeros(1, *shape))
    for h in handles:
        h.remove()
    return total / 1e6


# -- the space ------------------------------------------------------------------------------
def test_paper_space_shape():
    space = MacroSpace()
    assert (space.phases, space.nodes_per_phase, space.bits_per_phase, space.n_bits) == (
        3,
        4,
        7,
        21,
    )
    assert space.size == 2**21
    assert [bits_per_phase(n) for n in (2, 3, 4, 5, 6)] == [2, 4, 7, 11, 16]
    assert [nodes_for_bits(b) for b in (2, 4, 7, 11, 16)] == [2, 3, 4, 5, 6]


@pytest.mark.parametrize(
    ("genome", "message"),
    [
        (
            [[0] * 7, [0] * 7],
            "genome: has 2 phases, expected 3 phases x 7 bits (4 nodes: 6 connection bits + 1 skip bit)",
        ),
        ([[0] * 7, [0] * 6, [0] * 7], "genome: phase 1 has 6 bits, expected 7"),
        (
            [[0] * 7, [0] * 7, [0, 0, 0, 2, 0, 0, 0]],
            "genome: phase 2, position 3 is 2; expected 0 or 1",
        ),
        (
            [[0] * 7, [0, 0.5, 0, 0, 0, 0, 0], [0] * 7],
            "phase 1, position 1 is 0.5; expected 0 or 1",
        ),
        (
            [[0] * 7, [0] * 7, [0, "1", 0, 0, 0, 0, 0]],
            "phase 2, position 1 is '1'; expected 0 or 1",
        ),
        ("0000111", "genome: expected a list of 3 phases (lists of 0/1), got str '0000111'"),
        (None, "genome: expected a list of 3 phases (lists of 0/1), got NoneType"),
        ([[0] * 7, 5, [0] * 7], "genome: phase 1 is int 5, expected a list of 7 bits"),
    ],
)
def test_validate_names_phase_position_and_expectation(genome, message):
    with pytest.raises(GenomeError) as err:
        MacroSpace().validate(genome)
    assert message in str(err.value)


def test_validate_accepts_bools_and_numpy_and_normalizes():
    g = [np.array([1, 0, 1, 0, 0, 1, 1]), [True, False] * 3 + [True], [np.int64(0)] * 7]
    out = MacroSpace().validate(g)
    assert out == [[1, 0, 1, 0, 0, 1, 1], [1, 0, 1, 0, 1, 0, 1], [0] * 7]
    assert all(type(b) is int for p in out for b in p)


def test_validate_names_where_the_genome_came_from():
    with pytest.raises(GenomeError, match=r"^models/7/meta.json: has 1 phases"):
        MacroSpace().validate([[0] * 7], where="models/7/meta.json")


def test_bad_space_settings():
    with pytest.raises(GenomeError, match="nodes_per_phase must be an integer >= 2, got 1"):
        MacroSpace(nodes_per_phase=1)
    with pytest.raises(GenomeError, match="phases must be an integer >= 1, got 0"):
        MacroSpace(phases=0)
    with pytest.raises(
        GenomeError,
        match=r"a phase of 5 bits does not match any node count; valid lengths are n\(n-1\)/2 \+ 1: 2 \(2 nodes\), 4 \(3 nodes\), 7 \(4 nodes\)",
    ):
        nodes_for_bits(5)


def test_random_genomes_are_valid_seeded_and_balanced():
    space = MacroSpace()
    a = [space.random(np.random.default_rng(3)) for _ in range(2)]
    assert a[0] == a[1]  # same seed, same genome
    rng = np.random.default_rng(0)
    many = [space.random(rng) for _ in range(400)]
    for g in many[:20]:
        assert space.validate(g) == g
    ones = np.mean([space.flatten(g) for g in many])
    assert 0.45 < ones < 0.55
    assert len({space.key(g) for g in many}) > 390


def test_flatten_unflatten_round_trip_and_errors():
    space = MacroSpace()
    g = COMMONS[4][1]
    flat = space.flatten(g)
    assert flat.dtype == bool and flat.shape == (21,)
    assert flat.astype(int).tolist() == g[0] + g[1] + g[2]
    assert space.unflatten(flat) == g
    assert space.key(g) == "0101010-0110111-1000010"
    with pytest.raises(
        GenomeError, match=r"flat genome has shape \(20,\), expected \(21,\) for 3 phases x 7 bits"
    ):
        space.unflatten(np.zeros(20))
    with pytest.raises(GenomeError, match="flat genome: phase 0, position 2 is 3; expected 0 or 1"):
        space.unflatten([0, 0, 3] + [0] * 18)


def test_parse_genome_reads_the_commons_text_and_infers_the_space():
    text = "[[0, 0, 0, 0, 1, 1, 1], [0, 0, 0, 0, 0, 0, 0], [0, 1, 0, 0, 0, 0, 1]]"
    assert parse_genome(text) == COMMONS[2][1]
    assert infer_space(parse_genome("[[1, 0], [0, 1]]")) == MacroSpace(phases=2, nodes_per_phase=2)
    with pytest.raises(GenomeError, match="row 12: '0000111' is not a genome; write it as JSON"):
        parse_genome("0000111", where="row 12")
    with pytest.raises(GenomeError, match="row 3: phase 0: a phase of 5 bits does not match"):
        parse_genome("[[0, 0, 0, 0, 1], [0, 0, 0, 0, 1]]", where="row 3")
    with pytest.raises(
        GenomeError, match=r"genome: expected a non-empty list of phases .*got \[\]"
    ):
        parse_genome("[]")


# -- decoding to graphs ----------------------------------------------------------------------
@pytest.mark.parametrize(("model_id", "genome", "arch", "flops"), COMMONS)
def test_architecture_matches_the_commons_column(model_id, genome, arch, flops):
    assert architecture(genome) == arch


def test_dependency_graphs_follow_nsganet_repairs():
    # [4<-2, 4<-3] + skip: 2 and 3 take the phase input, 4 feeds the output, 1 is dropped
    assert dependency_graph([0, 0, 0, 0, 1, 1, 1]) == {1: [], 2: [0], 3: [0], 4: [2, 3], 5: [0, 4]}
    # [3<-1] + skip
    assert dependency_graph([0, 1, 0, 0, 0, 0, 1]) == {1: [0], 2: [], 3: [1], 4: [], 5: [0, 3]}
    # fully connected chain, no skip: only node 4 reaches the output
    assert dependency_graph([1, 1, 1, 1, 1, 1, 0]) == {
        1: [0],
        2: [1],
        3: [1, 2],
        4: [1, 2, 3],
        5: [4],
    }
    # two disjoint pairs: 1->2 and 3->4 (2 and 4 both feed the output)
    assert dependency_graph([1, 0, 0, 0, 0, 1, 0]) == {1: [0], 2: [1], 3: [0], 4: [3], 5: [2, 4]}
    assert not phase_active([0, 0, 0, 0, 0, 0, 1])  # the skip bit alone does not activate
    assert phase_active([1, 0, 0, 0, 0, 0, 0])


def test_describe_is_json_and_lists_nodes_edges_skip_per_phase():
    d = describe(COMMONS[2][1])
    assert json.loads(json.dumps(d)) == d
    assert d["architecture"] == COMMONS[2][2]
    assert d["active_phases"] == [0, 2]
    p0, p1, p2 = d["phase_graphs"]
    assert p0["active"] and p0["skip"] and p0["nodes"] == [2, 3, 4] and p0["output"] == 5
    edges = {(e["src"], e["dst"], e["kind"]) for e in p0["edges"]}
    assert edges == {
        (0, 2, "repair"),
        (0, 3, "repair"),
        (2, 4, "gene"),
        (3, 4, "gene"),
        (4, 5, "repair"),
        (0, 5, "skip"),
    }
    assert p1 == {"active": False, "skip": False, "nodes": [], "edges": [], "output": 5, "index": 1}
    assert p2["nodes"] == [1, 3]
    with pytest.raises(GenomeError, match="phase 1 has 6 bits"):
        describe([[0] * 7, [0] * 6, [0] * 7], MacroSpace())


# -- decoding to networks --------------------------------------------------------------------
@pytest.mark.parametrize(("model_id", "genome", "arch", "flops"), COMMONS)
def test_networks_reproduce_the_commons_flops(model_id, genome, arch, flops):
    """Same layers, same wiring: NSGA-Net's own counter gives the paper's number exactly."""
    model = build_model(genome, channels=PAPER_CHANNELS)
    assert nsganet_counter_mflops(model, XFEL_SHAPE) == pytest.approx(flops, abs=6e-5)


def test_network_structure_of_a_genome():
    model = build_model(COMMONS[2][1], channels=PAPER_CHANNELS)
    phases = [m for m in model.features if isinstance(m, Phase)]
    assert len(phases) == 2  # phase 1 is inactive and removed
    assert sum(isinstance(m, nn.MaxPool2d) for m in model.features) == 1
    first = phases[0].first_conv
    assert (first.kernel_size, first.padding, first.in_channels, first.out_channels) == (
        (3, 3),
        (0, 0),
        1,
        24,
    )
    second = phases[1].first_conv  # the next ACTIVE phase takes the next channel count
    assert (second.kernel_size, second.in_channels, second.out_channels) == ((1, 1), 24, 48)
    assert sorted(phases[0].nodes) == ["2", "3", "4"] and sorted(phases[0].merges) == ["4", "5"]
    assert sorted(phases[1].nodes) == ["1", "3"] and sorted(phases[1].merges) == ["5"]
    assert model.classifier.in_features == 48
    out = model(torch.randn(2, *XFEL_SHAPE))
    assert out.shape == (2, 2)


@pytest.mark.parametrize(
    "genome",
    [
        [[0] * 7] * 3,  # nothing wired anywhere
        [[0, 0, 0, 0, 0, 0, 1]] * 3,  # skip bits only: still inactive (NSGA-Net)
        [[0] * 7, [0] * 7, [1, 0, 0, 0, 0, 0, 0]],  # one edge in the last phase
    ],
)
def test_degenerate_genomes_build_and_train(genome):
    model = build_model(genome, in_channels=1, num_classes=2, channels=(4, 8, 16))
    x = torch.randn(3, 1, 16, 16)
    out = model(x)
    assert out.shape == (3, 2)
    nn.functional.cross_entropy(out, torch.tensor([0, 1, 0])).backward()
    assert any(p.grad is not None and p.grad.abs().sum() > 0 for p in model.parameters())


def test_all_inactive_genome_is_pooling_plus_linear():
    model = build_model([[0] * 7] * 3, in_channels=3, num_classes=5)
    assert len(model.features) == 0
    assert sum(p.numel() for p in model.parameters()) == 3 * 5 + 5
    x = torch.randn(2, 3, 8, 8)
    expected = model.classifier(x.mean(dim=(2, 3)))
    assert torch.allclose(model(x), expected)


def test_hand_counted_small_network():
    """2 nodes, 1 phase, bits [1, 0]: input conv 3x3 1->4, node1 -> node2 -> output."""
    model = build_model([[1, 0]], channels=(4,), nodes_per_phase=2)
    (phase,) = model.features
    assert isinstance(phase, Phase) and isinstance(phase.nodes["1"], Node)
    assert phase.graph == {1: [0], 2: [1], 3: [2]} and len(phase.merges) == 0
    # 3x3x1x4 input conv + 2 x (3x3x4x4 conv + BN 2x4) + output BN 2x4 + linear 4x2+2
    assert sum(p.numel() for p in model.parameters()) == 36 + 2 * (144 + 8) + 8 + 10


def test_channels_int_doubles_per_phase_and_building_is_seeded():
    g = COMMONS[5][1]
    torch.manual_seed(7)
    a = build_model(g, channels=8)
    torch.manual_seed(7)
    b = build_model(g, channels=[8, 16, 32])
    assert isinstance(a, MacroNet)
    sa, sb = a.state_dict(), b.state_dict()
    assert sa.keys() == sb.keys()
    assert all(torch.equal(sa[k], sb[k]) for k in sa)
    torch.manual_seed(8)
    c = build_model(g, channels=8)
    assert not torch.equal(c.classifier.weight, a.classifier.weight)
    assert a.classifier.in_features == 32


@pytest.mark.parametrize(
    ("kwargs", "error", "message"),
    [
        (
            {"channels": (16, 32)},
            GenomeError,
            "genome has 3 phases but channels [16, 32] gives 2; give one channel count per phase",
        ),
        ({"channels": (16, 0, 32)}, ValueError, "channels[1] = 0; expected a positive int"),
        ({"channels": 0}, ValueError, "channels must be >= 1, got 0"),
        (
            {"channels": "wide"},
            ValueError,
            "channels must be a positive int or a list of them, got 'wide'",
        ),
        ({"in_channels": 0}, ValueError, "in_channels must be a positive int, got 0"),
        ({"num_classes": 1.5}, ValueError, "num_classes must be a positive int, got 1.5"),
        ({"nodes_per_phase": 5}, GenomeError, "genome: phase 0 has 7 bits, expected 11"),
    ],
)
def test_build_model_rejects_bad_arguments(kwargs, error, message):
    with pytest.raises(error) as err:
        build_model(COMMONS[2][1], **kwargs)
    assert message in str(err.value)


def test_build_model_rejects_bad_genomes():
    with pytest.raises(GenomeError, match="genome: phase 2, position 6 is 7; expected 0 or 1"):
        build_model([[0] * 7, [0] * 7, [0] * 6 + [7]])
    with pytest.raises(GenomeError, match="genome: expected a non-empty list of phases"):
        build_model([], channels=16)


# -- the registered SearchSpace ("nsganet-macro") -------------------------------------------
def graph_ids(desc: dict) -> tuple[list[str], list[list[str]]]:
    graph = desc["graph"]
    return [n["id"] for n in graph["nodes"]], graph["edges"]


def test_macro_space_is_a_search_space_with_the_paper_defaults():
    space = create_space("nsganet-macro", {})
    assert isinstance(space, NSGANetMacroSpace) and isinstance(space, SearchSpace)
    assert space.name == "nsganet-macro"
    assert space.options.widths() == [24, 48, 96] and space.options.phases == 3
    assert space.choices() == [2] * 21  # one choice per genome bit


def test_genome_errors_are_arch_errors():
    assert issubclass(GenomeError, ArchError) and issubclass(ArchError, ValueError)
    with pytest.raises(ArchError, match="genome: has 2 phases"):
        NSGANetMacroSpace().encode([[0] * 7] * 2)


@pytest.mark.parametrize(("model_id", "genome", "arch", "flops"), COMMONS)
def test_encode_decode_round_trip_on_the_commons(model_id, genome, arch, flops):
    space = NSGANetMacroSpace()
    vector = space.encode(genome)
    assert vector == genome[0] + genome[1] + genome[2]
    assert all(type(v) is int for v in vector)
    assert space.decode(vector) == genome
    assert json.loads(json.dumps(space.decode(vector))) == genome  # the arch is plain JSON


def test_encode_decode_round_trip_on_samples_and_other_shapes():
    rng = np.random.default_rng(5)
    for opts in (MacroOptions(), MacroOptions(phases=2, nodes_per_phase=5, channels=4)):
        space = NSGANetMacroSpace(opts)
        n = len(space.choices())
        for _ in range(50):
            g = space.sample(rng)
            assert space.genomes.validate(g) == g and len(g) == opts.phases
            assert space.decode(space.encode(g)) == g
            v = rng.integers(0, 2, size=n).tolist()
            assert space.encode(space.decode(v)) == v
    space = NSGANetMacroSpace()
    assert space.sample(np.random.default_rng(3)) == space.sample(np.random.default_rng(3))
    keys = {vector_key(space.encode(space.sample(rng))) for _ in range(300)}
    assert len(keys) > 290


@pytest.mark.parametrize(
    ("vector", "message"),
    [
        ([0] * 20, "nsganet-macro: a choice vector has 21 positions, got shape (20,)"),
        ([0, 0, 2] + [0] * 18, "nsganet-macro: position 2 is 2; expected an int in 0..1"),
        ([0] * 20 + [-1], "position 20 is -1; expected an int in 0..1"),
        ([0.5] + [0] * 20, "position 0 is 0.5; expected an int in 0..1"),
        ([[0] * 7] * 3, "a choice vector has 21 positions, got shape (3, 7)"),
    ],
)
def test_decode_rejects_vectors_outside_the_space(vector, message):
    with pytest.raises(ArchError) as err:
        NSGANetMacroSpace().decode(vector)
    assert message in str(err.value)


def test_describe_keeps_the_phase_graphs_and_adds_a_whole_network_graph():
    space = NSGANetMacroSpace()
    d = space.describe(COMMONS[2][1])
    assert json.loads(json.dumps(d)) == d
    assert d["phase_graphs"] == describe(COMMONS[2][1])["phase_graphs"]
    assert d["architecture"] == COMMONS[2][2]
    ids, edges = graph_ids(d)
    # phase 1 is inactive: absent; phase 0 has nodes 2, 3, 4, phase 2 nodes 1, 3
    assert ids == [
        "input",
        "p0.in",
        "p0.n2",
        "p0.n3",
        "p0.n4",
        "p0.out",
        "p2.in",
        "p2.n1",
        "p2.n3",
        "p2.out",
        "head",
    ]
    assert ["input", "p0.in"] in edges and ["p0.out", "p2.in"] in edges
    assert ["p0.in", "p0.out"] in edges  # the skip bit
    assert ["p2.out", "head"] in edges
    # all phases inactive: input straight to the classifier head
    assert graph_ids(space.describe([[0] * 7] * 3)) == (["input", "head"], [["input", "head"]])


def test_describe_graph_references_only_existing_nodes():
    """Every edge of every genome joins two listed node ids (exhaustive for small phases)."""
    for n in (2, 3, 4, 5):
        space = NSGANetMacroSpace(MacroOptions(phases=2, nodes_per_phase=n, channels=4))
        k = space.genomes.bits_per_phase
        for i in range(2**k):
            bits = [(i >> j) & 1 for j in range(k)]
            for genome in ([bits, bits[::-1]], [[0] * k, bits]):
                ids, edges = graph_ids(space.describe(genome))
                assert len(ids) == len(set(ids)), genome
                assert all(len(e) == 2 and e[0] in ids and e[1] in ids for e in edges), genome
                reached = {"input"} | {dst for _, dst in edges}
                assert reached == set(ids), genome  # and every node is fed by something
    for _, genome, _, _ in COMMONS:
        ids, edges = graph_ids(NSGANetMacroSpace().describe(genome))
        assert all(e[0] in ids and e[1] in ids for e in edges)


def test_describe_rejects_a_genome_of_another_shape():
    with pytest.raises(GenomeError, match="phase 1 has 6 bits"):
        NSGANetMacroSpace().describe([[0] * 7, [0] * 6, [0] * 7])


def test_build_uses_the_space_options():
    space = create_space("nsganet-macro", {"channels": [8, 16, 32]})
    torch.manual_seed(3)
    a = space.build(COMMONS[5][1], (3, 32, 32), num_classes=5)
    torch.manual_seed(3)
    b = build_model(COMMONS[5][1], in_channels=3, num_classes=5, channels=[8, 16, 32])
    sa, sb = a.state_dict(), b.state_dict()
    assert sa.keys() == sb.keys() and all(torch.equal(sa[k], sb[k]) for k in sa)
    assert a(torch.zeros(2, 3, 32, 32)).shape == (2, 5)
    small = NSGANetMacroSpace(MacroOptions(phases=1, nodes_per_phase=2, channels=[4]))
    assert small.build([[1, 0]], (1, 10, 10), 2).features[0].graph == {1: [0], 2: [1], 3: [2]}
    with pytest.raises(GenomeError, match="genome: phase 0 has 7 bits, expected 2"):
        small.build(COMMONS[0][1][:1], (1, 10, 10), 2)


@pytest.mark.parametrize(("model_id", "genome", "arch", "flops"), COMMONS[1:4])
def test_space_cost_is_the_built_networks_cost(model_id, genome, arch, flops):
    space = NSGANetMacroSpace()  # the paper's channels: near the commons' flops
    mflops, params = space.cost(genome, XFEL_SHAPE, 2)
    model = build_model(genome, channels=PAPER_CHANNELS)
    assert (mflops, params) == count_cost(model, XFEL_SHAPE)
    assert 0.97 * flops < mflops <= flops
    assert space.cost(genome, XFEL_SHAPE, 2, model=model) == (mflops, params)


@pytest.mark.parametrize(
    ("options", "message"),
    [
        ({"phases": 0}, "search.space_options.phases: Input should be greater than or equal to 1"),
        ({"nodes_per_phase": 1}, "search.space_options.nodes_per_phase: Input should be greater"),
        ({"channels": "wide"}, "search.space_options.channels"),
        ({"chanels": 8}, "search.space_options.chanels: Extra inputs are not permitted"),
        ({"pop_size": 8}, "search.space_options.pop_size: Extra inputs are not permitted"),
        ({"channels": [8, 16]}, "channels: [8, 16] must be 3 positive ints (one per phase)"),
        ({"channels": 0}, "channels: must be >= 1, got 0"),
        ({"channels": [8, 0, 16]}, "channels: [8, 0, 16] must be 3 positive ints"),
    ],
)
def test_bad_space_options_name_the_field(options, message):
    with pytest.raises(OptionsError) as err:
        create_space("nsganet-macro", options)
    assert message in str(err.value)
    assert str(err.value).startswith("search.space_options")


@pytest.mark.parametrize("channels", [[8, 16], 0, [8, 0, 16]])
def test_bad_channel_values_name_the_channels_field(channels):
    with pytest.raises(OptionsError, match=r"^search\.space_options\.channels"):
        create_space("nsganet-macro", {"channels": channels})


def test_other_phase_count_without_channels():
    space = create_space("nsganet-macro", {"phases": 2, "nodes_per_phase": 5})
    assert len(space.choices()) == 2 * 11
