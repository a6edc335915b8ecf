"""Draw an architecture from its search space's graph (the paper's Fig. 3 and Fig. 10).

`draw_architecture(model)` takes a row of the `models` table (or a graph dict
`{"nodes": [{"id", "label"}], "edges": [[from, to], ...]}`) and returns an
`ArchitectureDrawing`: SVG text that Jupyter and the HTML report show as is.

With Graphviz's `dot` program on the PATH (Debian: `apt-get install graphviz`) the
layout is Graphviz's; without it a pure-Python layout drawn with matplotlib stands in
(nodes in layers by longest path, top to bottom). `backend="graphviz"|"matplotlib"`
forces one.
"""

from __future__ import annotations

import io
import shutil
import subprocess
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from matplotlib.figure import Figure
from matplotlib.patches import FancyArrowPatch

from analyzer.architectures import graph_of

EDGE_STYLE = {  # kind -> (graphviz style, matplotlib linestyle, color)
    "gene": ("solid", "-", "#333333"),
    "repair": ("dotted", ":", "#888888"),
    "skip": ("dashed", "--", "#d62728"),
}


@dataclass
class ArchitectureDrawing:
    svg: str
    backend: str  # "graphviz" or "matplotlib"
    title: str = ""
    graph: dict[str, Any] | None = None

    def _repr_svg_(self) -> str:
        return self.svg

    def save(self, path: str | Path) -> Path:
        """Write `.svg` as is, or `.png` through the same backend."""
        path = Path(path)
        if path.suffix.lower() == ".svg":
            path.write_text(self.svg)
            return path
        if path.suffix.lower() == ".png" and self.graph is not None:
            return draw_png(self.graph, path, self.backend, self.title)
        raise ValueError(f"{path}: save a drawing as .svg or .png")


def _graph(model: Any) -> tuple[dict[str, Any], str]:
    if isinstance(model, dict) and "nodes" in model and "edges" in model:
        return model, ""
    row = dict(model)
    g = graph_of(row)
    if g is None:
        mid = row.get("model_id", "?")
        raise ValueError(
            f"model {mid}: no architecture graph (its 'architecture' has no 'graph' and its "
            "genome is not an NSGA-Net macro genome)"
        )
    title = f"{row.get('run', '')} model {row.get('model_id', '')}".strip()
    return g, title


def dot_source(graph: dict[str, Any], title: str = "") -> str:
    """The graph in Graphviz's DOT language (top to bottom)."""

    def q(s: Any) -> str:
        return '"' + str(s).replace("\\", "\\\\").replace('"', '\\"') + '"'

    lines = [
        "digraph architecture {",
        "  rankdir=TB; nodesep=0.25; ranksep=0.3;",
        '  node [shape=box, style="rounded,filled", fillcolor="#eef3fb", fontname="Helvetica",'
        " fontsize=10, height=0.3];",
        '  edge [arrowsize=0.6, color="#333333"];',
    ]
    if title:
        lines.append(f"  label={q(title)}; labelloc=t; fontname=Helvetica; fontsize=11;")
    for n in graph["nodes"]:
        fill = "#fde8d0" if "pool" in n["label"] or n["id"] in ("input", "fc", "gap") else None
        extra = f', fillcolor="{fill}"' if fill else ""
        lines.append(f"  {q(n['id'])} [label={q(n['label'])}{extra}];")
    for e in graph["edges"]:
        kind = e[2] if len(e) > 2 else "gene"
        style, _, color = EDGE_STYLE.get(kind, EDGE_STYLE["gene"])
        lines.append(f'  {q(e[0])} -> {q(e[1])} [style={style}, color="{color}"];')
    lines.append("}")
    return "\n".join(lines)


def has_graphviz() -> bool:
    return shutil.which("dot") is not None


def _run_dot(source: str, fmt: str) -> bytes:
    dot = shutil.which("dot")
    if dot is None:
        raise FileNotFoundError("Graphviz's 'dot' is not installed (apt-get install graphviz)")
    proc = subprocess.run(
        [dot, f"-T{fmt}"], input=source.encode(), capture_output=True, timeout=60, check=False
    )
    if proc.returncode != 0:
        raise RuntimeError(f"dot -T{fmt} failed: {proc.stderr.decode(errors='replace')[:300]}")
    return proc.stdout


def layers(graph: dict[str, Any]) -> dict[str, int]:
    """Longest-path layering: each node one layer below its deepest input."""
    ids = [n["id"] for n in graph["nodes"]]
    preds: dict[str, list[str]] = {i: [] for i in ids}
    for e in graph["edges"]:
        if e[1] in preds and e[0] in preds:
            preds[e[1]].append(e[0])
    depth: dict[str, int] = {}

    def d(i: str, stack: frozenset = frozenset()) -> int:
        if i in depth:
            return depth[i]
        if i in stack:  # a cycle: break it here
            return 0
        depth[i] = 1 + max((d(p, stack | {i}) for p in preds[i]), default=-1)
        return depth[i]

    for i in ids:
        d(i)
    return depth


def matplotlib_figure(graph: dict[str, Any], title: str = "") -> Figure:
    """The pure-Python drawing: layered layout, boxes and arrows."""
    depth = layers(graph)
    by_layer: dict[int, list[str]] = {}
    for n in graph["nodes"]:
        by_layer.setdefault(depth[n["id"]], []).append(n["id"])
    label = {n["id"]: n["label"] for n in graph["nodes"]}
    n_layers = max(by_layer) + 1 if by_layer else 1
    width = max((len(v) for v in by_layer.values()), default=1)
    fig = Figure(figsize=(max(3.0, 1.9 * width), max(2.0, 0.55 * n_layers)))
    ax = fig.add_axes((0, 0, 1, 0.96 if title else 1))
    pos = {}
    for layer, members in by_layer.items():
        for k, nid in enumerate(members):
            pos[nid] = ((k + 0.5) / len(members), 1 - (layer + 0.5) / n_layers)
    for e in graph["edges"]:
        if e[0] not in pos or e[1] not in pos:
            continue
        kind = e[2] if len(e) > 2 else "gene"
        _, ls, color = EDGE_STYLE.get(kind, EDGE_STYLE["gene"])
        (x0, y0), (x1, y1) = pos[e[0]], pos[e[1]]
        bend = 0.25 if abs(depth[e[1]] - depth[e[0]]) > 1 and abs(x0 - x1) < 1e-6 else 0.0
        ax.add_patch(
            FancyArrowPatch(
                (x0, y0),
                (x1, y1),
                arrowstyle="-|>",
                mutation_scale=8,
                color=color,
                linestyle=ls,
                lw=0.9,
                shrinkA=9,
                shrinkB=9,
                connectionstyle=f"arc3,rad={bend}",
            )
        )
    for nid, (x, y) in pos.items():
        ax.text(
            x,
            y,
            label[nid],
            ha="center",
            va="center",
            fontsize=7,
            bbox={"boxstyle": "round,pad=0.3", "fc": "#eef3fb", "ec": "#555555", "lw": 0.6},
        )
    ax.set_xlim(0, 1)
    ax.set_ylim(0, 1)
    ax.axis("off")
    if title:
        fig.suptitle(title, fontsize=9)
    return fig


def draw_architecture(model: Any, backend: str = "auto") -> ArchitectureDrawing:
    """Draw a model's architecture (a `models` row, or a graph dict); see the module doc."""
    graph, title = _graph(model)
    if backend not in ("auto", "graphviz", "matplotlib"):
        raise ValueError(f"backend {backend!r}: use auto, graphviz or matplotlib")
    if backend == "graphviz" or (backend == "auto" and has_graphviz()):
        svg = _run_dot(dot_source(graph, title), "svg").decode()
        svg = svg[svg.index("<svg") :]  # drop the XML prologue and DOCTYPE: inline-ready
        return ArchitectureDrawing(svg, "graphviz", title, graph)
    fig = matplotlib_figure(graph, title)
    buf = io.StringIO()
    fig.savefig(buf, format="svg")
    svg = buf.getvalue()
    return ArchitectureDrawing(svg[svg.index("<svg") :], "matplotlib", title, graph)


def draw_png(model: Any, path: str | Path, backend: str = "auto", title: str = "") -> Path:
    """Write the drawing as PNG (Graphviz's renderer, or matplotlib's at 150 dpi)."""
    graph, default_title = _graph(model)
    title = title or default_title
    path = Path(path)
    if backend == "graphviz" or (backend == "auto" and has_graphviz()):
        path.write_bytes(_run_dot(dot_source(graph, title), "png"))
    else:
        matplotlib_figure(graph, title).savefig(path, dpi=150)
    return path
