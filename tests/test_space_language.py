"""The DeepHyper-style space language (adapters/spaces): the NT3 and xfel-image spaces,
node kinds, the merge rule, describe graphs, errors, and a search over xfel-image."""

from __future__ import annotations

import json
import tomllib
from importlib import import_module
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import torch
import torch.nn.functional as F

from a4nn.registry import OptionsError, create_space
from a4nn.space import ArchError, SearchSpace
from adapters.spaces import plugin
from adapters.spaces.nt3 import PAPER_SIZE, make_nt3_space
from adapters.spaces.ops import (
    Add,
    Concatenate,
    Connect,
    Conv2D,
    Dense,
    Identity,
    MaxPool2D,
    merge,
)
from adapters.spaces.structure import (
    Block,
    Cell,
    ConstantNode,
    Input,
    LanguageSpace,
    MirrorNode,
    SpaceError,
    Structure,
    VariableNode,
)
from adapters.spaces.xfel_image import make_xfel_image_space

NT3_SHAPE = (1, 1, 64)  # a 64-long 1-D sample, as A4NN's (C, H, W)
IMG_SHAPE = (1, 16, 16)
XFEL_SMALL = {"cells": 3, "base_filters": 2}


@pytest.fixture(autouse=True, scope="module")
def one_thread():
    """Tiny models: one thread is fastest (and kind to a shared machine)."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


@pytest.fixture(scope="module")
def nt3():
    return make_nt3_space({})


@pytest.fixture(scope="module")
def xfel():
    return make_xfel_image_space(XFEL_SMALL)


def spaces_with_shapes(nt3, xfel):
    return [(nt3, NT3_SHAPE), (xfel, IMG_SHAPE)]


# -- sizes and choices ----------------------------------------------------------------------
def test_nt3_size_is_the_papers(nt3):
    assert nt3.choices() == [5, 4, 5] * 2 + [9, 4, 7] * 2
    assert nt3.size() == (5 * 4 * 5) ** 2 * (9 * 4 * 7) ** 2 == PAPER_SIZE == 635_040_000
    assert f"{nt3.size():.4e}" == "6.3504e+08"
    assert nt3.variable_ids[:4] == ["c0.b0.conv", "c0.b0.act", "c0.b0.pool", "c1.b0.conv"]
    assert nt3.variable_ids[-3:] == ["c3.b0.dense", "c3.b0.act", "c3.b0.drop"]


def test_xfel_image_choices_and_size():
    space = make_xfel_image_space({})
    assert space.choices() == [5, 4, 3, 2, 5, 4, 3, 3, 5, 4, 3, 4, 3, 2]
    assert space.size() == (5 * 4 * 3) ** 3 * (2 * 3 * 4) * (3 * 2) == 31_104_000
    assert make_xfel_image_space({"cells": 1}).choices() == [5, 4, 3, 2, 3, 2]


def test_spaces_are_search_spaces_and_register_through_the_plugin_and_entry_points():
    assert plugin.SPACES.keys() == {"nt3", "xfel-image"}
    for name in plugin.SPACES:
        space = create_space(name, {})
        assert isinstance(space, SearchSpace) and space.name == name
    # pyproject's entry points name these very factories (used once the lead reinstalls)
    root = Path(__file__).resolve().parents[1]
    eps = tomllib.loads((root / "pyproject.toml").read_text())["project"]["entry-points"]
    for name, factory in plugin.SPACES.items():
        module, attr = eps["a4nn.spaces"][name].split(":")
        assert getattr(import_module(module), attr) is factory


# -- the choice vector ---------------------------------------------------------------------------
def test_encode_decode_round_trip_and_deterministic_builds(nt3, xfel):
    rng = np.random.default_rng(0)
    for space, shape in spaces_with_shapes(nt3, xfel):
        for _ in range(20):
            arch = space.sample(rng)
            assert space.decode(space.encode(arch)) == arch
            assert json.loads(json.dumps(arch)) == arch  # the arch is plain JSON
        arch = space.sample(rng)
        a, b = (space.build(arch, shape, 2).state_dict() for _ in range(2))
        assert {k: v.shape for k, v in a.items()} == {k: v.shape for k, v in b.items()}
    assert xfel.decode(np.array([0] * len(xfel.choices()))) == [0] * len(xfel.choices())


@pytest.mark.parametrize("which", ["nt3", "xfel"])
def test_every_choice_of_every_variable_node_builds_and_runs(which, nt3, xfel):
    space, shape = {"nt3": (nt3, NT3_SHAPE), "xfel": (xfel, IMG_SHAPE)}[which]
    x = torch.randn(3, *shape)
    for base in ([0] * len(space.choices()), [n - 1 for n in space.choices()]):
        for pos, n in enumerate(space.choices()):
            for choice in range(n):
                arch = list(base)
                arch[pos] = choice
                model = space.build(arch, shape, 2)
                y = model(x)
                assert y.shape == (3, 2) and torch.isfinite(y).all(), (pos, choice)
                y.sum().backward()


def test_cost_counts_one_flop_per_multiply_add(nt3):
    # Conv1D(3, 8) on a 64-long sequence, Flatten, Dense(10), then Dense(2)
    arch = [1, 0, 0, 0, 0, 0, 1, 0, 0, 0, 0, 0]
    mflops, params = nt3.cost(arch, NT3_SHAPE, 2)
    assert mflops == pytest.approx((8 * 3 * 64 + 512 * 10 + 10 * 2) / 1e6)
    assert params == (8 * 3 + 8) + (512 * 10 + 10) + (10 * 2 + 2)


def test_bad_choice_vectors_name_the_position(nt3):
    with pytest.raises(ArchError, match=r"position 9 is 9; expected an int in 0..8.*c3\.b0\.dense"):
        nt3.decode([0] * 9 + [9, 0, 0])
    with pytest.raises(ArchError, match=r"position 0 is -1.*c0\.b0\.conv"):
        nt3.encode([-1] + [0] * 11)
    with pytest.raises(ArchError, match="position 2 is 1.5"):
        nt3.build([0, 0, 1.5] + [0] * 9, NT3_SHAPE, 2)
    with pytest.raises(ArchError, match="12 positions"):
        nt3.describe([0] * 11)
    with pytest.raises(ArchError, match="not a choice vector"):
        nt3.decode(["a"] * 12)


def test_bad_options_name_their_field():
    with pytest.raises(OptionsError, match=r"search\.space_options\.cells"):
        make_xfel_image_space({"cells": 0})
    with pytest.raises(OptionsError, match=r"search\.space_options\.base_filters"):
        make_xfel_image_space({"base_filters": "8"})
    with pytest.raises(OptionsError, match=r"search\.space_options\.celss: Extra inputs"):
        make_xfel_image_space({"celss": 2})
    with pytest.raises(OptionsError, match=r"search\.space_options\.filters: Extra inputs"):
        make_nt3_space({"filters": 8})


# -- node kinds and merges --------------------------------------------------------------------
def mirror_space() -> LanguageSpace:
    """x -> d (Dense 4 or 8); y -> mirror of d; the cell concatenates both."""
    d = VariableNode("d", (Dense(4), Dense(8)))
    s = Structure(
        inputs=(Input("x", "flat", (0, 1)), Input("y", "flat", (1, 2))),
        cells=(
            Cell(
                "c0",
                (
                    Block("b0", (d,), inputs=("x",)),
                    Block("b1", (MirrorNode("m", "c0.b0.d"),), inputs=("y",)),
                ),
            ),
        ),
    )
    return LanguageSpace("mirror", s)


def test_mirror_node_shares_the_module_and_its_weights():
    space = mirror_space()
    assert space.choices() == [2]  # the mirror is no position
    model = space.build([1], (2, 3, 3), 2)
    assert list(model.layers.keys()) == ["c0-b0-d"]  # one module, used by both nodes
    assert sum(p.numel() for p in model.parameters()) == (9 * 8 + 8) + (16 * 2 + 2)
    x = torch.randn(4, 2, 3, 3)
    x[:, 1] = x[:, 0]  # the same data on both inputs: both halves must agree
    out = model._body(x, build=False)
    assert out.shape == (4, 16)
    torch.testing.assert_close(out[:, :8], out[:, 8:])
    with torch.no_grad():
        model.layers["c0-b0-d"][0].weight.add_(1.0)  # one change moves both
    out2 = model._body(x, build=False)
    torch.testing.assert_close(out2[:, :8], out2[:, 8:])
    assert not torch.allclose(out, out2)
    labels = {n["id"]: n["label"] for n in space.describe([0])["graph"]["nodes"]}
    assert labels["c0.b1.m"] == "Dense(4) (mirror of c0.b0.d)"


def test_mirror_with_a_mismatched_input_is_an_arch_error():
    d = VariableNode("d", (Dense(4),))
    s = Structure(
        inputs=(Input("x", "flat", (0, 1)), Input("y", "flat", (1, 3))),
        cells=(
            Cell(
                "c0",
                (
                    Block("b0", (d,), inputs=("x",)),
                    Block("b1", (MirrorNode("m", "c0.b0.d"),), inputs=("y",)),
                ),
            ),
        ),
    )
    with pytest.raises(ArchError, match=r"c0\.b1\.m \(a mirror of c0\.b0\.d\)"):
        LanguageSpace("bad-mirror", s).build([0], (3, 4, 4), 2)


def test_merge_rule_for_mismatched_shapes():
    a, b = torch.randn(2, 2, 8, 8), torch.randn(2, 4, 4, 6)
    added = merge([a, None, b], "add")  # None (a Null Connect) is dropped
    expect = F.pad(F.adaptive_avg_pool2d(a, (4, 6)), (0, 0, 0, 0, 0, 2)) + b
    torch.testing.assert_close(added, expect)  # channels zero-padded, spatial pooled
    cat = merge([a, b], "concat")
    torch.testing.assert_close(cat, torch.cat([F.adaptive_avg_pool2d(a, (4, 6)), b], 1))
    # different ranks are flattened first
    v, img = torch.randn(2, 5), torch.randn(2, 1, 2, 2)
    torch.testing.assert_close(merge([v, img], "add"), v + F.pad(img.flatten(1), (0, 1)))
    assert merge([v, img], "concat").shape == (2, 9)
    assert merge([None, None], "add") is None
    assert merge([v], "concat") is v


def test_add_and_concatenate_nodes_follow_the_rule_inside_a_network():
    block = Block(
        "b0",
        (
            ConstantNode("conv", Conv2D(3, 4)),
            ConstantNode("pool", MaxPool2D(2)),
            VariableNode("merge", (Add(), Concatenate())),
        ),
        edges=(("in", "conv"), ("conv", "pool"), ("in", "merge"), ("pool", "merge")),
    )
    space = LanguageSpace("merges", Structure((Input("x"),), (Cell("c0", (block,)),)))
    x = torch.randn(2, 1, 8, 8)
    for choice, rule in ((0, "add"), (1, "concat")):
        model = space.build([choice], (1, 8, 8), 2).eval()
        pooled = model.layers["c0-b0-pool"](model.layers["c0-b0-conv"](x))
        expect = merge([x, pooled], rule)
        torch.testing.assert_close(model._body(x, build=False), expect)
        assert expect.shape == ((2, 4, 4, 4) if rule == "add" else (2, 5, 4, 4))
    edges = space.describe([0])["graph"]["edges"]
    assert ["x", "c0.b0.merge"] in edges and ["c0.b0.pool", "c0.b0.merge"] in edges


def test_xfel_skip_connect_adds_an_earlier_output(xfel):
    # cell 2's skip is Connect(c0): c0 (4 channels, 8x8) added to c2's conv path (16, 4x4)
    arch = [1, 1, 1, 0, 1, 1, 1, 0, 3, 1, 1, 2, 0, 0]
    d = xfel.describe(arch)
    assert d["ops"]["c2.skip.skip"] == "Connect(c0)"
    assert ["c0", "c2.skip.skip"] in d["graph"]["edges"]
    model = xfel.build(arch, IMG_SHAPE, 2)
    assert model(torch.randn(2, *IMG_SHAPE)).shape == (2, 2)
    null = xfel.describe([0] * 14)["graph"]["edges"]  # Connect(Null): no edge into it
    assert not [e for e in null if e[1].endswith(".skip")]


def test_describe_graph_refers_only_to_existing_nodes(nt3, xfel):
    rng = np.random.default_rng(1)
    for space in (nt3, xfel, mirror_space()):
        for _ in range(10):
            graph = space.describe(space.sample(rng))["graph"]
            ids = [n["id"] for n in graph["nodes"]]
            assert len(ids) == len(set(ids))
            assert all(isinstance(n["label"], str) and n["label"] for n in graph["nodes"])
            assert all(a in ids and b in ids for a, b in graph["edges"])
            assert [b for _, b in graph["edges"] if b == "output"] == ["output"]


def test_malformed_structures_are_rejected():
    def one(block: Block, **kw) -> Structure:
        return Structure((Input("x"),), (Cell("c0", (block,)),), **kw)

    with pytest.raises(SpaceError, match="goes backwards"):
        LanguageSpace("s", one(Block("b", (ConstantNode("a", Identity()),), edges=(("a", "a"),))))
    with pytest.raises(SpaceError, match="'nope' is not defined earlier"):
        LanguageSpace("s", one(Block("b", (ConstantNode("a", Connect("nope")),))))
    with pytest.raises(SpaceError, match="no earlier VariableNode"):
        LanguageSpace("s", one(Block("b", (MirrorNode("m", "c0.b.m"),))))
    with pytest.raises(SpaceError, match="no inputs"):
        edges = (("in", "a"),)
        nodes = (ConstantNode("a", Identity()), ConstantNode("b", Identity()))
        LanguageSpace("s", one(Block("b", nodes, edges=edges)))


# -- a search over xfel-image -----------------------------------------------------------------
def test_nsganet_searches_xfel_image_end_to_end(tiny_config, tmp_path):
    from a4nn.cli import main

    cfg = tiny_config(
        plugins=["adapters.spaces.plugin"],  # works before the entry points are installed
        train={"epochs": 2, "batch_size": 16, "lr": 0.05, "threads": 1},
        search={
            "adapter": "nsganet",
            "space": "xfel-image",
            "options": {
                "preset": "quickstart",
                "pop_size": 2,
                "n_offspring": 1,
                "n_generations": 2,
            },
            "space_options": {"cells": 2, "base_filters": 4},
        },
    )
    out = tmp_path / "run"
    assert main(["run", str(cfg), "--out", str(out), "--quiet"]) == 0
    models = pd.read_csv(out / "models.csv")
    assert len(models) == 3 and (models["space"] == "xfel-image").all()
    assert (models["status"] != "failed").all(), models["reason"].tolist()
    assert (models["epochs_trained"] >= 1).all() and (models["mflops"] > 0).all()
    meta = json.loads(sorted((out / "models").glob("*/model.json"))[0].read_text())
    assert meta["choices"] == meta["candidate"]["arch"] and len(meta["choices"]) == 10
    assert {"nodes", "edges"} <= meta["architecture"]["graph"].keys()
