"""The space language's structure (DeepHyper style) and the `SearchSpace` it makes.

A `Structure` holds inputs, cells and an output rule; a `Cell` holds blocks and the rule
that merges their outputs; a `Block` is a DAG of nodes. A node is a `VariableNode` (a
choice among ops: one position of the choice vector), a `ConstantNode` (a fixed op) or a
`MirrorNode` (the op *and the module instance* of an earlier node: shared weights, no
position). `LanguageSpace(name, structure)` is then a registered-ready `SearchSpace`
whose architecture is the choice vector itself: one int per VariableNode, in
declaration order (cell by cell, block by block, node by node). See
docs/space_language.md.

References (`Block.inputs`, `Cell.inputs`, `Connect` sources, `MirrorNode.source`,
`Structure.output_from`) name a structure input (`"x"`), an earlier cell's output
(`"c0"`) or an earlier node (`"c0.b0.conv"`, i.e. cell.block.node).
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any, Literal

import numpy as np
import torch
from torch import nn

from a4nn.space import ArchError, check_vector, sample_vector, space_size
from adapters.spaces.ops import MERGE_RULES, Connect, MergeRule, Op, merge

_NAME = re.compile(r"^[A-Za-z][A-Za-z0-9_]*$")
Layout = Literal["image", "1d", "flat"]


# -- the language --------------------------------------------------------------------------
@dataclass(frozen=True)
class Input:
    """A structure input, taken from A4NN's sample tensor `(C, H, W)`.

    `channels`: `(start, stop)` of the channels it reads (None: all); several inputs can
    so split one A4NN image. `layout`: "image" keeps `(C, H, W)`; "1d" flattens each
    channel's image to a sequence, `(C, H*W)`; "flat" flattens all, `(C*H*W,)`.
    """

    name: str
    layout: Layout = "image"
    channels: tuple[int, int] | None = None

    def take(self, x: torch.Tensor) -> torch.Tensor:
        if self.channels is not None:
            x = x[:, self.channels[0] : self.channels[1]]
        if self.layout == "1d":
            return x.flatten(2)
        return x.flatten(1) if self.layout == "flat" else x


@dataclass(frozen=True)
class VariableNode:
    name: str
    ops: tuple[Op, ...]

    def __post_init__(self) -> None:
        object.__setattr__(self, "ops", tuple(self.ops))
        if not self.ops:
            raise ValueError(f"VariableNode {self.name!r} has no ops")


@dataclass(frozen=True)
class ConstantNode:
    name: str
    op: Op


@dataclass(frozen=True)
class MirrorNode:
    """Reuses `source`'s op and module (the same weights); `source` is an earlier
    VariableNode or ConstantNode, by its full id (cell.block.node)."""

    name: str
    source: str


Node = VariableNode | ConstantNode | MirrorNode


@dataclass(frozen=True)
class Block:
    """A DAG of nodes. `edges` are (from, to) pairs of local node names, "in" standing for
    the block's input; None chains them: in -> nodes[0] -> nodes[1] -> ... Edges go from an
    earlier node to a later one (nodes are listed in topological order). `inputs` are
    references (None: the cell's inputs), merged by `merge` when several. The block's
    output is the node `output` (None: the last)."""

    name: str
    nodes: tuple[Node, ...]
    edges: tuple[tuple[str, str], ...] | None = None
    inputs: tuple[str, ...] | None = None
    merge: MergeRule = "concat"
    output: str | None = None

    def __post_init__(self) -> None:
        object.__setattr__(self, "nodes", tuple(self.nodes))
        if self.edges is not None:
            object.__setattr__(self, "edges", tuple(tuple(e) for e in self.edges))
        if self.inputs is not None:
            object.__setattr__(self, "inputs", tuple(self.inputs))


@dataclass(frozen=True)
class Cell:
    """Blocks whose outputs are merged by `output` ("add" or "concat"). `inputs` are
    references (None: the previous cell's output; the structure's inputs for the first)."""

    name: str
    blocks: tuple[Block, ...]
    inputs: tuple[str, ...] | None = None
    output: MergeRule = "concat"

    def __post_init__(self) -> None:
        object.__setattr__(self, "blocks", tuple(self.blocks))
        if self.inputs is not None:
            object.__setattr__(self, "inputs", tuple(self.inputs))


@dataclass(frozen=True)
class Structure:
    """Inputs, cells and the output rule: the cells `output_from` (None: the last) merged
    by `output_merge`, then `head` ("flatten" or "gap": global average pooling) for a
    rank > 1 tensor, then a Dense layer with one output per class (logits)."""

    inputs: tuple[Input, ...]
    cells: tuple[Cell, ...]
    output_from: tuple[str, ...] | None = None
    output_merge: MergeRule = "concat"
    head: Literal["flatten", "gap"] = "flatten"

    def __post_init__(self) -> None:
        object.__setattr__(self, "inputs", tuple(self.inputs))
        object.__setattr__(self, "cells", tuple(self.cells))
        if self.output_from is not None:
            object.__setattr__(self, "output_from", tuple(self.output_from))


# -- compiled form ---------------------------------------------------------------------------
@dataclass
class _Step:
    """One evaluation step: a block input, a node, or a cell output."""

    kind: str  # "blockin" | "node" | "cell"
    id: str
    inputs: tuple[str, ...]  # env keys read
    rule: str = "add"  # blockin / cell merge rule
    node: Node | None = None
    position: int | None = None  # VariableNode: its index in the choice vector
    owner: str | None = None  # whose module: own id, or a mirror's source id
    graph_inputs: tuple[str, ...] = ()  # graph ids feeding it (refs, "in" resolved)


@dataclass
class _Plan:
    steps: list[_Step] = field(default_factory=list)
    variables: list[_Step] = field(default_factory=list)
    by_id: dict[str, _Step] = field(default_factory=dict)
    output_from: tuple[str, ...] = ()


class SpaceError(ValueError):
    """A structure that is not well formed (a programming error in a space definition)."""


def compile_structure(s: Structure) -> _Plan:
    """Validate `s` and list its evaluation steps in order."""
    plan = _Plan()
    known: set[str] = set()  # referable: inputs, finished cells, nodes so far
    graph_of: dict[str, tuple[str, ...]] = {}  # env key -> graph ids it stands for
    names: set[str] = set()

    def name_ok(name: str, what: str) -> None:
        if not _NAME.match(name) or name in ("in", "output"):
            raise SpaceError(f"{what} name {name!r}: letters, digits and _, not 'in'/'output'")

    def resolve(refs: Sequence[str], where: str) -> tuple[str, ...]:
        for r in refs:
            if r not in known:
                raise SpaceError(f"{where}: {r!r} is no earlier input, cell or node")
        return tuple(refs)

    if not s.inputs or not s.cells:
        raise SpaceError("a structure needs at least one input and one cell")
    for inp in s.inputs:
        name_ok(inp.name, "input")
        if inp.name in names:
            raise SpaceError(f"duplicate name {inp.name!r}")
        names.add(inp.name)
        known.add(inp.name)
        graph_of[inp.name] = (inp.name,)
    previous: tuple[str, ...] = tuple(i.name for i in s.inputs)
    for cell in s.cells:
        name_ok(cell.name, "cell")
        if cell.name in names:
            raise SpaceError(f"duplicate name {cell.name!r}")
        names.add(cell.name)
        if cell.output not in MERGE_RULES:
            raise SpaceError(f"cell {cell.name}: output must be one of {MERGE_RULES}")
        cell_in = resolve(cell.inputs, f"cell {cell.name} inputs") if cell.inputs else previous
        if not cell.blocks:
            raise SpaceError(f"cell {cell.name} has no blocks")
        outs: list[str] = []
        block_names: set[str] = set()
        for block in cell.blocks:
            outs.append(_compile_block(plan, cell, block, cell_in, known, graph_of, block_names))
        known.add(cell.name)
        step = _Step("cell", cell.name, tuple(outs), rule=cell.output, graph_inputs=tuple(outs))
        plan.steps.append(step)
        graph_of[cell.name] = (cell.name,)
        previous = (cell.name,)
    plan.output_from = resolve(s.output_from, "output_from") if s.output_from else previous
    if s.output_merge not in MERGE_RULES or s.head not in ("flatten", "gap"):
        raise SpaceError(f"output_merge must be one of {MERGE_RULES}, head flatten or gap")
    return plan


def _compile_block(
    plan: _Plan,
    cell: Cell,
    block: Block,
    cell_in: tuple[str, ...],
    known: set[str],
    graph_of: dict[str, tuple[str, ...]],
    block_names: set[str],
) -> str:
    where = f"block {cell.name}.{block.name}"
    if not _NAME.match(block.name) or block.name in block_names:
        raise SpaceError(f"{where}: bad or duplicate block name")
    block_names.add(block.name)
    if not block.nodes:
        raise SpaceError(f"{where} has no nodes")
    if block.merge not in MERGE_RULES:
        raise SpaceError(f"{where}: merge must be one of {MERGE_RULES}")
    refs = block.inputs if block.inputs is not None else cell_in
    for r in refs:
        if r not in known:
            raise SpaceError(f"{where} inputs: {r!r} is no earlier input, cell or node")
    prefix = f"{cell.name}.{block.name}"
    in_id = f"{prefix}.in"
    in_graph = tuple(g for r in refs for g in graph_of[r])
    plan.steps.append(_Step("blockin", in_id, tuple(refs), rule=block.merge))
    graph_of[in_id] = in_graph

    local = [n.name for n in block.nodes]
    if len(set(local)) != len(local):
        raise SpaceError(f"{where}: duplicate node names")
    for n in local:
        if not _NAME.match(n) or n in ("in", "output"):
            raise SpaceError(f"{where}: bad node name {n!r}")
    edges = block.edges
    if edges is None:
        chain = ["in", *local]
        edges = tuple(zip(chain[:-1], chain[1:], strict=True))
    order = {n: i for i, n in enumerate(["in", *local])}
    preds: dict[str, list[str]] = {n: [] for n in local}
    for a, b in edges:
        if a not in order or b not in preds:
            raise SpaceError(f"{where}: edge ({a!r}, {b!r}) names no node of the block")
        if order[a] >= order[b]:
            raise SpaceError(f"{where}: edge ({a!r}, {b!r}) goes backwards; list nodes in order")
        preds[b].append(a)

    for node in block.nodes:
        nid = f"{prefix}.{node.name}"
        ins = tuple(in_id if p == "in" else f"{prefix}.{p}" for p in preds[node.name])
        graph_ins = tuple(g for i in ins for g in graph_of[i])
        step = _Step("node", nid, ins, node=node, owner=nid, graph_inputs=graph_ins)
        ops = _ops_of(node)
        if isinstance(node, MirrorNode):
            src = plan.by_id.get(node.source)
            if src is None or src.kind != "node" or isinstance(src.node, MirrorNode):
                raise SpaceError(
                    f"mirror {nid}: source {node.source!r} is no earlier VariableNode or "
                    "ConstantNode"
                )
            step.owner = src.id
            ops = _ops_of(src.node)
        for op in ops:
            if not isinstance(op, Op):
                raise SpaceError(f"node {nid}: {op!r} is not an Op")
            if isinstance(op, Connect):
                for r in op.sources:
                    if r not in known:
                        raise SpaceError(f"node {nid}: {op.label}: {r!r} is not defined earlier")
            elif not ins:
                raise SpaceError(f"node {nid} has no inputs for its op {op.label}")
        if isinstance(node, VariableNode):
            step.position = len(plan.variables)
            plan.variables.append(step)
        plan.steps.append(step)
        plan.by_id[nid] = step
        graph_of[nid] = (nid,)
        known.add(nid)
    out = block.output or local[-1]
    if out not in preds:
        raise SpaceError(f"{where}: output {out!r} is no node of the block")
    return f"{prefix}.{out}"


def _ops_of(node: Node) -> tuple[Op, ...]:
    if isinstance(node, VariableNode):
        return node.ops
    if isinstance(node, ConstantNode):
        return (node.op,)
    return ()


# -- the network -------------------------------------------------------------------------------
def _key(node_id: str) -> str:
    return node_id.replace(".", "-")  # module names may not hold "."; names hold no "-"


class Network(nn.Module):
    """The torch model of one architecture: its modules are built from the shapes that
    reach them in one forward pass of a zero sample at construction."""

    def __init__(
        self,
        structure: Structure,
        plan: _Plan,
        chosen: dict[str, Op],
        input_shape: Sequence[int],
        num_classes: int,
    ) -> None:
        super().__init__()
        self.structure, self._plan, self._chosen = structure, plan, chosen
        self.layers = nn.ModuleDict()
        with torch.no_grad():
            out = self._body(torch.zeros(1, *(int(d) for d in input_shape)), build=True)
        if out is None:
            raise ArchError("the output is empty: every path to it is a Connect(Null)")
        head: list[nn.Module] = []
        if out.dim() > 2 and structure.head == "gap":
            head += [nn.Flatten(2), _MeanLast()]
            features = out.shape[1]
        else:
            head.append(nn.Flatten())
            features = out[0].numel()
        head.append(nn.Linear(features, int(num_classes)))
        self.head = nn.Sequential(*head)
        self.train()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(self._body(x, build=False))

    def _body(self, x: torch.Tensor, build: bool) -> torch.Tensor | None:
        env: dict[str, torch.Tensor | None] = {i.name: i.take(x) for i in self.structure.inputs}
        for step in self._plan.steps:
            if step.kind != "node":
                env[step.id] = merge([env[i] for i in step.inputs], step.rule)
                continue
            op = self._chosen[step.owner]
            if op.kind == "connect":
                env[step.id] = merge([env[r] for r in op.sources], op.merge)
            elif op.kind == "merge":
                env[step.id] = merge([env[i] for i in step.inputs], op.rule)
            else:
                value = merge([env[i] for i in step.inputs], "add")
                env[step.id] = None if value is None else self._run_node(step, op, value, build)
        return merge([env[r] for r in self._plan.output_from], self.structure.output_merge)

    def _run_node(self, step: _Step, op: Op, x: torch.Tensor, build: bool) -> torch.Tensor:
        key = _key(step.owner)
        if build and key not in self.layers:
            try:
                module = op.build(tuple(x.shape[1:]))
            except ArchError as err:
                raise ArchError(f"node {step.id} ({op.label}): {err}") from None
            self.layers[key] = module.eval()
        if not build:
            return self.layers[key](x)
        try:
            return self.layers[key](x)
        except RuntimeError as err:
            mirror = f" (a mirror of {step.owner})" if step.owner != step.id else ""
            raise ArchError(
                f"node {step.id}{mirror} ({op.label}) cannot take an input of shape "
                f"{tuple(x.shape[1:])}: {err}"
            ) from None


class _MeanLast(nn.Module):
    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x.mean(dim=-1)


# -- the search space ------------------------------------------------------------------------
class LanguageSpace:
    """A `SearchSpace` (a4nn/space.py) from a `Structure`. The architecture is the choice
    vector: a list of ints, one per VariableNode in declaration order."""

    def __init__(self, name: str, structure: Structure) -> None:
        self.name = name
        self.structure = structure
        self._plan = compile_structure(structure)

    @property
    def variable_ids(self) -> list[str]:
        """The VariableNode of each position of the choice vector."""
        return [s.id for s in self._plan.variables]

    def choices(self) -> list[int]:
        return [len(s.node.ops) for s in self._plan.variables]

    def size(self) -> int:
        """How many architectures: the product of the VariableNodes' option counts."""
        return space_size(self.choices())

    def sample(self, rng: np.random.Generator) -> list[int]:
        return sample_vector(self.choices(), rng)

    def check(self, vector: Any) -> list[int]:
        """`vector` as a list of ints within `choices()`, or an ArchError naming the
        position and its VariableNode."""
        try:
            return check_vector(vector, self.choices(), self.name)
        except ArchError as err:
            m = re.search(r"position (\d+) ", str(err))
            if m is None:
                raise
            step = self._plan.variables[int(m.group(1))]
            labels = ", ".join(op.label for op in step.node.ops)
            raise ArchError(f"{err} (VariableNode {step.id}: {labels})") from None
        except (TypeError, ValueError) as err:
            raise ArchError(f"{self.name}: not a choice vector: {vector!r} ({err})") from None

    def encode(self, arch: Any) -> list[int]:
        return self.check(arch)

    def decode(self, vector: Sequence[int]) -> list[int]:
        return self.check(vector)

    def ops(self, arch: Any) -> dict[str, Op]:
        """The op of every VariableNode and ConstantNode, by node id."""
        vector = self.check(arch)
        out: dict[str, Op] = {}
        for step in self._plan.steps:
            if step.kind == "node" and isinstance(step.node, VariableNode):
                out[step.id] = step.node.ops[vector[step.position]]
            elif step.kind == "node" and isinstance(step.node, ConstantNode):
                out[step.id] = step.node.op
        return out

    def build(self, arch: Any, input_shape: Sequence[int], num_classes: int) -> Network:
        return Network(self.structure, self._plan, self.ops(arch), input_shape, num_classes)

    def cost(
        self, arch: Any, input_shape: Sequence[int], num_classes: int, model: Any = None
    ) -> tuple[float, int]:
        from a4nn.cost import space_cost

        return space_cost(self, arch, input_shape, num_classes, model)

    def describe(self, arch: Any) -> dict[str, Any]:
        vector = self.check(arch)
        chosen = self.ops(vector)
        s = self.structure
        nodes = [{"id": i.name, "label": f"input {i.name} ({i.layout})"} for i in s.inputs]
        edges: list[list[str]] = []
        for step in self._plan.steps:
            if step.kind == "blockin":
                continue
            if step.kind == "cell":
                nodes.append({"id": step.id, "label": f"cell {step.id} output ({step.rule})"})
                edges += [[g, step.id] for g in step.graph_inputs]
                continue
            op = chosen[step.owner]
            label = op.label if step.owner == step.id else f"{op.label} (mirror of {step.owner})"
            nodes.append({"id": step.id, "label": label})
            sources = op.sources if isinstance(op, Connect) else step.graph_inputs
            edges += [[g, step.id] for g in sources]
        nodes.append({"id": "output", "label": f"{s.head} + Dense(classes)"})
        edges += [[r, "output"] for r in self._plan.output_from]
        return {
            "choices": vector,
            "ops": {sid: chosen[sid].label for sid in self.variable_ids},
            "graph": {"nodes": nodes, "edges": edges},
        }
