"""Genome -> phase graphs, exactly as NSGA-Net's macro decoder wires them (no torch here).

Follows NSGA-Net (Lu et al., GECCO 2019; github.com/ianwhale/nsga-net):
`macro_encoding.decode` for the nested connection lists (the A4NN commons' `architecture`
column), `ChannelBasedDecoder.get_effective_genome` for dropping inactive phases and
`ResidualPhase.build_dependency_graph` for the repairs. In a phase of n nodes, vertex 0 is
the phase input, 1..n the nodes and n+1 the phase output:

- node i takes input from every node j < i whose bit is set;
- a node with outputs but no inputs takes the phase input (0);
- a node with inputs but no outputs feeds the phase output (n+1);
- a node with neither is dropped;
- the skip bit connects the phase input to the phase output;
- a phase whose connection bits are all 0 is inactive and removed from the network,
  whatever its skip bit (so a phase always has at least one node when it is built).
"""

from __future__ import annotations

from typing import Any

from adapters.nsganet.space import Genome, MacroSpace, infer_space, nodes_for_bits

Connections = list[list[int]]
"""NSGA-Net's decoded phase: [[2<-1], [3<-1, 3<-2], ..., [skip]]."""


def phase_connections(bits: list[int]) -> Connections:
    """Group a phase's bits by receiving node, then the skip bit (NSGA-Net `phase_dencode`)."""
    n = nodes_for_bits(len(bits))
    out: Connections = []
    k = 0
    for i in range(1, n):
        out.append([int(b) for b in bits[k : k + i]])
        k += i
    out.append([int(bits[-1])])
    return out


def architecture(genome: Genome) -> list[Connections]:
    """The whole genome in NSGA-Net's decoded form (the commons' `architecture` column)."""
    return [phase_connections(phase) for phase in genome]


def phase_active(bits: list[int]) -> bool:
    """NSGA-Net's `phase_active`: any connection bit set (the skip bit does not count)."""
    return any(bits[:-1])


def dependency_graph(bits: list[int]) -> dict[int, list[int]]:
    """Inputs of every vertex (1..n nodes, n+1 output) after NSGA-Net's repairs.

    The order of each input list is NSGA-Net's, which fixes the concatenation order.
    """
    conns = phase_connections(bits)
    n = len(conns)  # nodes: n-1 connection groups + the skip group
    skip = conns[-1][0] == 1
    graph: dict[int, list[int]] = {1: []}
    for i, group in enumerate(conns[:-1]):
        graph[i + 2] = [j + 1 for j, b in enumerate(group) if b == 1]
    graph[n + 1] = [0] if skip else []
    no_inputs = [i for i in range(1, n + 1) if not graph[i]]
    no_outputs = [i for i in range(1, n + 1) if not any(i in graph[j] for j in range(i + 1, n + 2))]
    for node in no_outputs:
        if node not in no_inputs:
            graph[n + 1].append(node)
    for node in no_inputs:
        if node not in no_outputs:
            graph[node].append(0)
    return graph


def describe_phase(bits: list[int]) -> dict[str, Any]:
    """One phase as JSON-friendly data: active nodes and typed edges."""
    conns = phase_connections(bits)
    n = len(conns)
    skip = bool(conns[-1][0])
    active = phase_active(bits)
    if not active:
        return {"active": False, "skip": skip, "nodes": [], "edges": [], "output": n + 1}
    graph = dependency_graph(bits)
    gene_edges = {(j + 1, i + 2) for i, g in enumerate(conns[:-1]) for j, b in enumerate(g) if b}
    edges = []
    for dst in range(1, n + 2):
        for src in graph[dst]:
            if (src, dst) in gene_edges:
                kind = "gene"
            elif src == 0 and dst == n + 1:
                kind = "skip"
            else:
                kind = "repair"
            edges.append({"src": src, "dst": dst, "kind": kind})
    nodes = [i for i in range(1, n + 1) if graph[i]]
    return {"active": True, "skip": skip, "nodes": nodes, "edges": edges, "output": n + 1}


def describe(genome: Any, space: MacroSpace | None = None) -> dict[str, Any]:
    """The decoded network graph, per phase, as JSON-friendly data for the lineage.

    Vertex 0 is a phase's input and `output` (n+1) its output; edge kinds are `gene` (a
    set connection bit), `repair` (NSGA-Net's input/output repairs) and `skip`.
    Inactive phases are listed with `active: false` and are absent from the network.
    """
    if space is None:
        space = infer_space(genome)
    g = space.validate(genome)
    phases_desc = [describe_phase(bits) for bits in g]
    for i, d in enumerate(phases_desc):
        d["index"] = i
    return {
        "encoding": "nsganet-macro",
        "phases": space.phases,
        "nodes_per_phase": space.nodes_per_phase,
        "genome": g,
        "architecture": architecture(g),
        "active_phases": [i for i, d in enumerate(phases_desc) if d["active"]],
        "phase_graphs": phases_desc,
    }
