"""Architectures as data: choice vectors, graphs, structural similarity and clusters.

Every model's architecture is reduced to two things the analyzer understands whatever the
search space:

* its **choice vector** (`models.choices`): the fixed-length list of integers its search
  space encodes it with (the `choices` column of newer runs; for NSGA-Net runs written
  before that column, and for the A4NN commons CSVs, the genome's bits, phase after phase).
  Structural similarity is the Hamming distance between choice vectors;
* its **graph** (`graph_of`): `{"nodes": [{"id", "label"}], "edges": [[from, to], ...]}`,
  the `graph` key of its `architecture` description; for older NSGA-Net descriptions and
  genomes the same graph is derived here, following NSGA-Net's decoder (an edge may carry
  a third element, its kind: `gene`, `repair` or `skip`, used for styling only).
"""

from __future__ import annotations

import json
import math
from collections.abc import Callable, Sequence
from typing import Any

import numpy as np
import pandas as pd


# -- parsing ---------------------------------------------------------------------------------
def _json(value: Any) -> Any:
    """A JSON cell parsed (None for empty / NaN / unparsable); lists and dicts pass through."""
    if value is None:
        return None
    if isinstance(value, list | dict | tuple):
        return value
    if isinstance(value, float) and math.isnan(value):
        return None
    if isinstance(value, np.ndarray):
        return value.tolist()
    text = str(value).strip()
    if not text:
        return None
    try:
        return json.loads(text)
    except (json.JSONDecodeError, ValueError):
        return None


def _flat_ints(value: Any) -> tuple[int, ...] | None:
    """Nested lists of integers, flattened in order; None if anything is not an integer."""
    out: list[int] = []

    def walk(v: Any) -> bool:
        if isinstance(v, list | tuple):
            return all(walk(x) for x in v)
        if isinstance(v, bool | np.bool_):
            out.append(int(v))
            return True
        if isinstance(v, int | np.integer):
            out.append(int(v))
            return True
        if isinstance(v, float) and v.is_integer():
            out.append(int(v))
            return True
        return False

    return tuple(out) if walk(value) and out else None


def choices_of(row: dict[str, Any]) -> tuple[int, ...] | None:
    """A model's choice vector: its `choices` column, else its genome's bits flattened."""
    for key in ("choices", "genome"):
        vec = _flat_ints(_json(row.get(key)))
        if vec is not None:
            return vec
    return None


def _is_macro_genome(genome: Any) -> bool:
    if not isinstance(genome, list) or not genome:
        return False
    for phase in genome:
        if not isinstance(phase, list) or _nodes_for_bits(len(phase)) is None:
            return False
        if any(b not in (0, 1) for b in phase):
            return False
    return True


def space_of(row: dict[str, Any]) -> str | None:
    """A model's search space: its `space` column, the description's `encoding`, or
    `nsganet-macro` for a genome of NSGA-Net macro phases."""
    space = row.get("space")
    if isinstance(space, str) and space.strip():
        return space.strip()
    desc = _json(row.get("architecture"))
    if isinstance(desc, dict) and isinstance(desc.get("encoding"), str):
        return desc["encoding"]
    if _is_macro_genome(_json(row.get("genome"))):
        return "nsganet-macro"
    return None


# -- NSGA-Net macro decoding (mirrors adapters/nsganet/decode.py; no torch, no adapters) --------
def _nodes_for_bits(length: int) -> int | None:
    n = int(round((1 + math.sqrt(1 + 8 * (length - 1))) / 2)) if length >= 2 else 0
    return n if n >= 2 and n * (n - 1) // 2 + 1 == length else None


def _phase_description(bits: list[int]) -> dict[str, Any]:
    """One NSGA-Net phase: active nodes and typed edges (as `describe_phase` writes them)."""
    n = _nodes_for_bits(len(bits)) or 0
    groups, k = [], 0
    for i in range(1, n):
        groups.append(bits[k : k + i])
        k += i
    skip = bool(bits[-1])
    if not any(bits[:-1]):
        return {"active": False, "skip": skip, "nodes": [], "edges": [], "output": n + 1}
    graph: dict[int, list[int]] = {1: []}
    for i, group in enumerate(groups):
        graph[i + 2] = [j + 1 for j, b in enumerate(group) if b == 1]
    graph[n + 1] = [0] if skip else []
    no_in = [i for i in range(1, n + 1) if not graph[i]]
    no_out = [i for i in range(1, n + 1) if not any(i in graph[j] for j in range(i + 1, n + 2))]
    for node in no_out:
        if node not in no_in:
            graph[n + 1].append(node)
    for node in no_in:
        if node not in no_out:
            graph[node].append(0)
    genes = {(j + 1, i + 2) for i, g in enumerate(groups) for j, b in enumerate(g) if b}
    edges = []
    for dst in range(1, n + 2):
        for src in graph[dst]:
            kind = (
                "gene"
                if (src, dst) in genes
                else ("skip" if src == 0 and dst == n + 1 else "repair")
            )
            edges.append({"src": src, "dst": dst, "kind": kind})
    nodes = [i for i in range(1, n + 1) if graph[i]]
    return {"active": True, "skip": skip, "nodes": nodes, "edges": edges, "output": n + 1}


def _graph_from_phases(phases: list[dict[str, Any]]) -> dict[str, Any]:
    """The whole network as one graph from per-phase descriptions (NSGA-Net macro)."""
    nodes: list[dict[str, str]] = [{"id": "input", "label": "input"}]
    edges: list[list[str]] = []
    prev = "input"
    active = [p for p in phases if p.get("active")]
    for k, ph in enumerate(active):
        i = ph.get("index", phases.index(ph))
        if k > 0:
            pool = f"pool{i}"
            nodes.append({"id": pool, "label": "max pool 2x2"})
            edges.append([prev, pool])
            prev = pool
        pin, pout = f"p{i}_in", f"p{i}_out"
        nodes.append({"id": pin, "label": f"phase {i} in"})
        edges.append([prev, pin])
        for v in ph.get("nodes", []):
            nodes.append({"id": f"p{i}_n{v}", "label": f"conv 3x3 ({i}.{v})"})
        nodes.append({"id": pout, "label": f"phase {i} out"})
        out_v = ph.get("output")
        for e in ph.get("edges", []):
            src, dst = e["src"], e["dst"]
            s = pin if src == 0 else f"p{i}_n{src}"
            d = pout if dst == out_v else f"p{i}_n{dst}"
            edges.append([s, d, e.get("kind", "gene")])
        prev = pout
    for nid, label in (("gap", "global avg pool"), ("fc", "linear")):
        nodes.append({"id": nid, "label": label})
        edges.append([prev, nid])
        prev = nid
    return {"nodes": nodes, "edges": edges}


def graph_of(row: dict[str, Any] | pd.Series) -> dict[str, Any] | None:
    """A model's architecture graph: the description's `graph`, else derived (NSGA-Net)."""
    row = dict(row)
    for key in ("architecture", "arch"):
        desc = _json(row.get(key))
        if isinstance(desc, dict):
            g = desc.get("graph")
            if isinstance(g, dict) and isinstance(g.get("nodes"), list):
                return _checked_graph(g)
            if isinstance(desc.get("phase_graphs"), list):
                return _graph_from_phases(desc["phase_graphs"])
    genome = _json(row.get("genome"))
    if _is_macro_genome(genome):
        phases = [_phase_description(list(b)) for b in genome]
        for i, p in enumerate(phases):
            p["index"] = i
        return _graph_from_phases(phases)
    return None


def _checked_graph(g: dict[str, Any]) -> dict[str, Any]:
    nodes = [
        {"id": str(n.get("id")), "label": str(n.get("label", n.get("id")))}
        if isinstance(n, dict)
        else {"id": str(n), "label": str(n)}
        for n in g.get("nodes", [])
    ]
    edges = [
        [str(e[0]), str(e[1]), *([str(e[2])] if len(e) > 2 else [])]
        for e in g.get("edges", [])
        if isinstance(e, list | tuple) and len(e) >= 2
    ]
    return {"nodes": nodes, "edges": edges}


# -- similarity ------------------------------------------------------------------------------
def choice_matrix(models: pd.DataFrame) -> np.ndarray:
    """The models' choice vectors as an (n, d) integer array (all of one length)."""
    vecs = list(models["choices"])
    missing = [i for i, v in enumerate(vecs) if v is None or (isinstance(v, float))]
    if missing:
        mid = models["model_id"].iloc[missing[0]]
        raise ValueError(f"model {mid} has no choice vector (column 'choices' or 'genome')")
    lengths = {len(v) for v in vecs}
    if len(lengths) > 1:
        raise ValueError(
            f"choice vectors of different lengths {sorted(lengths)}: compare models of one "
            "search space"
        )
    return np.array(vecs, dtype=int).reshape(len(vecs), -1)


def hamming(a: Sequence[int], b: Sequence[int]) -> int:
    """Positions where two choice vectors differ."""
    if len(a) != len(b):
        raise ValueError(f"choice vectors of lengths {len(a)} and {len(b)} cannot be compared")
    return int(sum(x != y for x, y in zip(a, b, strict=True)))


def distance_matrix(models: pd.DataFrame, normalized: bool = False) -> pd.DataFrame:
    """Pairwise Hamming distances of the models' choice vectors (index: model ids)."""
    x = choice_matrix(models)
    d = (x[:, None, :] != x[None, :, :]).sum(axis=2).astype(float)
    if normalized and x.shape[1]:
        d /= x.shape[1]
    labels = _labels(models)
    return pd.DataFrame(d, index=labels, columns=labels)


def _labels(models: pd.DataFrame) -> list[Any]:
    if models["run"].nunique() > 1:
        return [f"{r}:{m}" for r, m in zip(models["run"], models["model_id"], strict=True)]
    return list(models["model_id"])


def similar_to(models: pd.DataFrame, choices: Sequence[int], k: int = 5) -> pd.DataFrame:
    """The k models nearest to a choice vector (column `distance`, Hamming)."""
    x = choice_matrix(models)
    ref = np.asarray(list(choices), dtype=int)
    if ref.shape[0] != x.shape[1]:
        raise ValueError(f"choice vector of length {ref.shape[0]}, the models' have {x.shape[1]}")
    out = models.assign(distance=(x != ref).sum(axis=1))
    return out.sort_values(["distance", "model_id"]).head(k)


def clusters(
    models: pd.DataFrame,
    max_distance: int = 2,
    by: str = "fitness",
) -> pd.DataFrame:
    """Group architectures that are alike: single linkage on the Hamming distance.

    Two models share a cluster when a chain of models, each at most `max_distance` choices
    from the next, links them. Returns `models` with `cluster` (0 = the cluster holding the
    best model by `by`, then by size) and `cluster_size`; `consensus(models)` gives each
    cluster's majority choice vector.
    """
    if models.empty:
        return models.assign(cluster=pd.Series(dtype=int), cluster_size=pd.Series(dtype=int))
    x = choice_matrix(models)
    n = len(x)
    d = (x[:, None, :] != x[None, :, :]).sum(axis=2)
    parent = list(range(n))

    def find(i: int) -> int:
        while parent[i] != i:
            parent[i] = parent[parent[i]]
            i = parent[i]
        return i

    for i, j in zip(*np.nonzero(np.triu(d <= max_distance, 1)), strict=True):
        parent[find(int(i))] = find(int(j))
    roots = [find(i) for i in range(n)]
    score = models[by].to_numpy(float) if by in models else np.zeros(n)
    order = sorted(
        set(roots),
        key=lambda r: (
            -np.nanmax(np.where(np.array(roots) == r, score, -np.inf)),
            -roots.count(r),
        ),
    )
    label = {r: k for k, r in enumerate(order)}
    out = models.copy()
    out["cluster"] = [label[r] for r in roots]
    out["cluster_size"] = [roots.count(r) for r in roots]
    return out


def consensus(clustered: pd.DataFrame) -> pd.DataFrame:
    """Per cluster: size, best and mean `fitness`, mean inner distance and the majority
    choice vector (ties go to the smaller choice)."""
    rows = []
    for c, group in clustered.groupby("cluster", sort=True):
        x = choice_matrix(group)
        maj = [int(np.bincount(col - col.min()).argmax() + col.min()) for col in x.T]
        d = (x[:, None, :] != x[None, :, :]).sum(axis=2)
        inner = float(d[np.triu_indices(len(x), 1)].mean()) if len(x) > 1 else 0.0
        rows.append(
            {
                "cluster": c,
                "size": len(group),
                "models": list(group["model_id"]),
                "best_fitness": float(group["fitness"].max()),
                "mean_fitness": float(group["fitness"].mean()),
                "mean_distance": inner,
                "consensus": tuple(maj),
            }
        )
    return pd.DataFrame(rows)


def alikeness(models: pd.DataFrame, good: pd.DataFrame) -> dict[str, float]:
    """Are good architectures alike? Mean pairwise Hamming distance among `good` against
    among all `models` (a ratio below 1: the good ones are closer to each other)."""

    def mean_d(df: pd.DataFrame) -> float:
        if len(df) < 2:
            return float("nan")
        x = choice_matrix(df)
        d = (x[:, None, :] != x[None, :, :]).sum(axis=2)
        return float(d[np.triu_indices(len(x), 1)].mean())

    a, g = mean_d(models), mean_d(good)
    return {
        "mean_distance_all": a,
        "mean_distance_good": g,
        "ratio": g / a if a and a == a and g == g else float("nan"),
        "choices": float(choice_matrix(models).shape[1]) if len(models) else float("nan"),
    }


def matches(pattern: str | Callable[[tuple[int, ...]], bool], choices: Any) -> bool:
    """Whether a choice vector matches `pattern`.

    A string pattern is one character per choice, `?` or `.` for any value, digits for a
    value (choices above 9 cannot be matched by a string: use a callable); spaces, `|`,
    `,`, `[` and `]` are ignored, so `"1110000|0011111|1111110"` reads like a genome.
    A callable gets the choice vector and returns a bool.
    """
    if choices is None or isinstance(choices, float):
        return False
    if callable(pattern):
        return bool(pattern(tuple(choices)))
    pat = [c for c in str(pattern) if c not in " |,[]"]
    if len(pat) != len(choices):
        return False
    return all(
        p in "?." or (p.isdigit() and int(p) == c) for p, c in zip(pat, choices, strict=True)
    )
