"""The paper's figures from any run, commons download or A4NN CSV (matplotlib).

Each function takes `Tables` and returns a `matplotlib.figure.Figure` (made without
pyplot, so a script or the report can make many without leaking windows; in Jupyter the
returned figure displays itself):

* `learning_curve` (Fig. 2): a model's validation accuracy per epoch, the engine's
  prediction at every epoch, and where it stopped;
* `learning_curves`: every model of a run, one line each, with the stops marked;
* `pareto_fronts` (Fig. 6): accuracy against MFLOPs, one panel per run, the Pareto set
  and its hypervolume with the reference point stated;
* `epochs_with_without` (Fig. 7): epochs trained with the engine against the budget;
* `termination_epochs` (Fig. 8): how many models stopped after how many epochs;
* `wall_times` (Fig. 9): training time with the engine and as estimated without it;
* `analyzer.drawing.draw_architecture` (Fig. 3/10): an architecture's graph.

Epochs are shown 1-based on the x axes ("epochs trained"): the model stopped at 0-based
epoch e has trained e + 1 epochs.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np
import pandas as pd
from matplotlib.figure import Figure
from matplotlib.lines import Line2D

from analyzer.loading import Tables
from analyzer.metrics import epochs_saved, wall_time
from analyzer.queries import hypervolume, ok_models, pareto, reference_point

VALUE_RANGE = (0.0, 100.0)  # the engine rejects a prediction outside it
COLORS = ["#1f77b4", "#d62728", "#2ca02c", "#9467bd", "#ff7f0e", "#8c564b", "#17becf"]


def _fig(w: float, h: float, ncols: int = 1, sharey: bool = False) -> tuple[Figure, Any]:
    fig = Figure(figsize=(w, h), layout="constrained")
    axes = fig.subplots(1, ncols, sharey=sharey, squeeze=False)[0]
    return fig, axes


def _run_of(t: Tables, run: str | None) -> str:
    return run or t._only_run()


# -- Fig. 2 ----------------------------------------------------------------------------------
def learning_curve(t: Tables, model_id: int, run: str | None = None, ax: Any = None) -> Figure:
    """One model: validation (and training) accuracy per epoch, the engine's prediction
    after every epoch, and the epoch where the engine stopped it.

    Predictions outside 0-100 % are ones the engine rejects (never handed to the NAS):
    drawn as hollow markers at the edge of the plot, labelled with their value.
    """
    run = _run_of(t, run)
    c = t.curve(model_id, run)
    m = t.models[(t.models["run"] == run) & (t.models["model_id"] == model_id)].iloc[0]
    if ax is None:
        fig, (ax,) = _fig(7, 4.2)
    else:
        fig = ax.figure
    x = c["epoch"].to_numpy() + 1
    ax.plot(x, c["val_acc"], "o-", color=COLORS[0], ms=4, label="validation accuracy")
    if c["train_acc"].notna().any():
        ax.plot(x, c["train_acc"], "-", color=COLORS[0], alpha=0.35, label="training accuracy")
    pred = c["prediction"].to_numpy(float)
    ok = np.isfinite(pred) & (pred >= VALUE_RANGE[0]) & (pred <= VALUE_RANGE[1])
    rejected = np.isfinite(pred) & ~ok
    if ok.any():
        ax.plot(x[ok], pred[ok], "x--", color=COLORS[1], ms=7, lw=1, label="engine's prediction")
    lows = [v for v in (c["val_acc"].min(), np.nanmin(pred[ok]) if ok.any() else np.nan) if v == v]
    bottom = max(0.0, min(lows) - 3) if lows else 0.0
    top = 104.0 if rejected.any() else 101.0
    if rejected.any():
        ax.scatter(
            x[rejected],
            np.full(rejected.sum(), 102.0),
            marker="^",
            facecolors="none",
            edgecolors=COLORS[1],
            label=f"{int(rejected.sum())} predictions rejected (outside 0-100 %)",
        )
        if rejected.sum() <= 3:  # their values, while they stay legible
            for xi, p in zip(x[rejected], pred[rejected], strict=True):
                ax.annotate(
                    f"{p:.1f}",
                    (xi, 102.0),
                    fontsize=6.5,
                    color=COLORS[1],
                    xytext=(0, 5),
                    textcoords="offset points",
                    ha="center",
                )
    ax.set_ylim(bottom, top)
    budget = m["budget"]
    if m["stopped_early"]:
        xs = int(m["epochs_trained"])
        ax.axvline(xs, color="k", lw=1, ls=":", label=f"engine stopped it after epoch {xs}")
        ax.plot(
            [xs],
            [m["fitness"]],
            "*",
            color="k",
            ms=10,
            label=f"fitness handed to the NAS: {m['fitness']:.2f} %",
        )
    if budget == budget:
        ax.axvline(float(budget), color="0.6", lw=1, ls="--", label=f"budget: {int(budget)} epochs")
        ax.set_xlim(0.5, float(budget) + 0.5)
    ax.set_xlabel("epochs trained")
    ax.set_ylabel("accuracy (%)")
    ax.set_title(
        f"{run}: model {model_id} ({m['status']}, {int(m['epochs_trained'])}"
        f"/{_fmt_int(budget)} epochs)",
        fontsize=10,
    )
    ax.legend(fontsize=7.5, loc="lower right")
    return fig


def _fmt_int(v: Any) -> str:
    return str(int(v)) if v == v and v is not None else "?"


def learning_curves(
    t: Tables, run: str | None = None, models: list[int] | None = None, ax: Any = None
) -> Figure:
    """Every model's validation curve, one line per model (never joined across models or
    runs), a cross where the engine stopped it, labelled with the prediction handed on."""
    run = _run_of(t, run)
    e = t.epochs[t.epochs["run"] == run]
    if models is not None:
        e = e[e["model_id"].isin(models)]
    info = t.models[t.models["run"] == run].set_index("model_id")
    if ax is None:
        fig, (ax,) = _fig(7, 4.2)
    else:
        fig = ax.figure
    for mid, c in e.groupby("model_id", sort=False):
        c = c.sort_values("epoch")
        stopped = bool(info.loc[mid, "stopped_early"]) if mid in info.index else False
        ax.plot(
            c["epoch"] + 1,
            c["val_acc"],
            lw=0.8,
            alpha=0.8,
            color=COLORS[1] if stopped else "0.55",
            gid=f"model {mid}",
        )
        if stopped:
            ax.plot(c["epoch"].iloc[-1] + 1, info.loc[mid, "fitness"], "x", color=COLORS[1], ms=5)
    budget = info["budget"].iloc[0] if len(info) else float("nan")
    if budget == budget:
        ax.axvline(float(budget), color="0.6", lw=1, ls="--")
    ax.set_xlabel("epochs trained")
    ax.set_ylabel("validation accuracy (%)")
    ax.set_title(f"{run}: learning curves", fontsize=10)
    ax.legend(
        handles=[
            Line2D([], [], color=COLORS[1], lw=1, label="stopped early by the engine"),
            Line2D([], [], color=COLORS[1], marker="x", ls="", label="fitness handed to the NAS"),
            Line2D([], [], color="0.55", lw=1, label="trained to the budget"),
        ],
        fontsize=8,
        loc="lower right",
    )
    return fig


# -- Fig. 6 ----------------------------------------------------------------------------------
def pareto_fronts(
    t: Tables,
    acc: str = "fitness",
    runs: list[str] | None = None,
    ref: tuple[float, float] | None = None,
) -> Figure:
    """Accuracy against MFLOPs, one panel per run (shared axes): every model, the Pareto
    set as a staircase, and the hypervolume with its reference point in the title."""
    runs = runs or t.run_names
    models = ok_models(t.models[t.models["run"].isin(runs)])
    ref = ref or reference_point(models)
    fig, axes = _fig(min(max(4.2 * len(runs), 6.0), 14), 4.2, ncols=len(runs), sharey=True)
    xmax = float(models["mflops"].max()) if len(models) else 1.0
    for i, (ax, run) in enumerate(zip(axes, runs, strict=True)):
        m = models[models["run"] == run]
        front = pareto(m, acc, by_run=False)
        ax.scatter(m["mflops"], m[acc], s=12, color="0.6", label="models")
        if len(front):
            xs = list(front["mflops"]) + [ref[1]]
            ys = list(front[acc]) + [front[acc].iloc[-1]]
            ax.step(xs, ys, where="post", color=COLORS[i % len(COLORS)], lw=1.2)
            ax.scatter(
                front["mflops"],
                front[acc],
                s=28,
                color=COLORS[i % len(COLORS)],
                zorder=3,
                label=f"Pareto set ({len(front)})",
            )
        hv = hypervolume(m, ref, acc)
        ax.set_title(f"{run}\nhypervolume {hv:,.0f} % x MFLOPs", fontsize=9)
        ax.set_xlabel("MFLOPs per sample")
        ax.set_xlim(0, xmax * 1.05 if xmax == xmax else 1)
        ax.legend(fontsize=7, loc="lower right")
    axes[0].set_ylabel(f"{_acc_label(acc)} (%)")
    fig.suptitle(
        f"Pareto fronts\nhypervolume reference point: accuracy {ref[0]:g} %, {ref[1]:,.3g} MFLOPs",
        fontsize=10,
    )
    return fig


def _acc_label(acc: str) -> str:
    return {
        "fitness": "fitness handed to the NAS",
        "best_val_acc": "best validation accuracy",
        "last_val_acc": "last validation accuracy",
    }.get(acc, acc)


# -- Fig. 7 ----------------------------------------------------------------------------------
def epochs_with_without(t: Tables) -> Figure:
    """Left: epochs trained with the engine against the budget (every model trained to
    the end), per run. Right: the same, accumulated over the models in training order."""
    s = epochs_saved(t)
    fig, (ax, ax2) = _fig(11, 4.0, ncols=2)
    y = np.arange(len(s))
    ax.barh(y + 0.2, s["epochs_budget"], height=0.4, color="0.75", label="without the engine")
    ax.barh(y - 0.2, s["epochs_trained"], height=0.4, color=COLORS[0], label="with the engine")
    for yi, (_, r) in zip(y, s.iterrows(), strict=True):
        ax.annotate(
            f"{r['epochs_saved_pct']:.1f}% saved",
            (r["epochs_trained"], yi - 0.2),
            xytext=(4, -3),
            textcoords="offset points",
            fontsize=8,
        )
    ax.set_yticks(y, s["run"], fontsize=8)
    ax.invert_yaxis()
    ax.set_xlabel("epochs")
    ax.set_title("epochs with and without the engine", fontsize=10)
    ax.legend(fontsize=8, loc="lower right")
    for i, run in enumerate(t.run_names):
        m = t.models[t.models["run"] == run]
        order = _training_order(t, run)
        ep = m.set_index("model_id").loc[order, "epochs_trained"].to_numpy()
        n = np.arange(1, len(ep) + 1)
        color = COLORS[i % len(COLORS)]
        ax2.plot(n, np.cumsum(ep), color=color, lw=1.5, label=f"{run}: with the engine")
        b = m["budget"].iloc[0] if len(m) else float("nan")
        if b == b:
            ax2.plot(
                n,
                n * float(b),
                color=color,
                ls="--",
                lw=1,
                alpha=0.7,
                label=f"{run}: without ({int(b)} per model)",
            )
    ax2.set_xlabel("models trained (training order)")
    ax2.set_ylabel("epochs, cumulative")
    ax2.set_title("epochs over the search", fontsize=10)
    ax2.legend(fontsize=7)
    return fig


def _training_order(t: Tables, run: str) -> list[int]:
    """Models in the order they finished (run.json), else as the epochs table lists them."""
    order = (t.meta.get(run) or {}).get("completion_order")
    ids = list(t.models.loc[t.models["run"] == run, "model_id"])
    if isinstance(order, list) and set(order) == set(ids):
        return [int(i) for i in order]
    seen = list(dict.fromkeys(t.epochs.loc[t.epochs["run"] == run, "model_id"]))
    return seen + [i for i in ids if i not in seen]


# -- Fig. 8 ----------------------------------------------------------------------------------
def termination_epochs(t: Tables, stopped_only: bool = False) -> Figure:
    """How many models ended after how many epochs, per run (side-by-side bars); the
    bar at the budget holds the models the engine did not stop."""
    fig, (ax,) = _fig(7.5, 4.0)
    runs = t.run_names
    width = 0.8 / max(len(runs), 1)
    budgets = []
    for i, run in enumerate(runs):
        m = ok_models(t.models[t.models["run"] == run])
        if stopped_only:
            m = m[m["stopped_early"]]
        counts = m["epochs_trained"].value_counts().sort_index()
        x = counts.index.to_numpy(float) + (i - (len(runs) - 1) / 2) * width
        ax.bar(x, counts.to_numpy(), width=width, color=COLORS[i % len(COLORS)], label=run)
        b = m["budget"].iloc[0] if len(m) else float("nan")
        if b == b:
            budgets.append(float(b))
    for b in set(budgets):
        ax.axvline(b + 0.5, color="0.5", ls="--", lw=0.8)
    ax.set_xlabel("epochs trained when the model ended (dashed: after the budget)")
    ax.set_ylabel("models")
    ax.set_title("termination epochs", fontsize=10)
    ax.xaxis.get_major_locator().set_params(integer=True)
    ax.legend(fontsize=8)
    return fig


# -- Fig. 9 ----------------------------------------------------------------------------------
def wall_times(t: Tables) -> Figure:
    """Left: training time per run with the engine, and estimated without it (each
    stopped model's skipped epochs at its own mean epoch time). Right: cumulative
    training time over the models in training order."""
    w = wall_time(t)
    fig, (ax, ax2) = _fig(11, 4.0, ncols=2)
    scale, unit = _time_unit(w[["training_seconds", "without_engine_seconds"]].max().max())
    y = np.arange(len(w))
    ax.barh(
        y + 0.2,
        w["without_engine_seconds"] / scale,
        height=0.4,
        color="0.75",
        label="without the engine (estimated)",
    )
    ax.barh(
        y - 0.2,
        w["training_seconds"] / scale,
        height=0.4,
        color=COLORS[0],
        label="with the engine (measured)",
    )
    for yi, (_, r) in zip(y, w.iterrows(), strict=True):
        if r["time_saved_pct"] == r["time_saved_pct"]:
            ax.annotate(
                f"{r['time_saved_pct']:.1f}% saved",
                (r["training_seconds"] / scale, yi - 0.2),
                xytext=(4, -3),
                textcoords="offset points",
                fontsize=8,
            )
        elif pd.isna(r["training_seconds"]):
            ax.annotate(
                "no epoch times recorded",
                (0, yi),
                xytext=(4, -3),
                textcoords="offset points",
                fontsize=8,
            )
    ax.set_yticks(y, w["run"], fontsize=8)
    ax.invert_yaxis()
    ax.set_xlabel(f"training time ({unit})")
    ax.set_title("wall time of training", fontsize=10)
    ax.legend(fontsize=8, loc="lower right")
    for i, run in enumerate(t.run_names):
        e = t.epochs[t.epochs["run"] == run]
        if e["epoch_seconds"].notna().any():
            per_model = e.groupby("model_id")["epoch_seconds"].sum()
            order = [m for m in _training_order(t, run) if m in per_model.index]
            cum = per_model.loc[order].cumsum().to_numpy() / scale
            ax2.plot(np.arange(1, len(cum) + 1), cum, color=COLORS[i % len(COLORS)], label=run)
    ax2.set_xlabel("models trained")
    ax2.set_ylabel(f"cumulative training time ({unit})")
    ax2.set_title("training time over the search", fontsize=10)
    if ax2.lines:
        ax2.legend(fontsize=8)
    return fig


def _time_unit(seconds: float) -> tuple[float, str]:
    if not (isinstance(seconds, float | int) and math.isfinite(seconds)):
        return 1.0, "s"
    if seconds >= 3 * 3600:
        return 3600.0, "h"
    if seconds >= 3 * 60:
        return 60.0, "min"
    return 1.0, "s"


# -- architectures -----------------------------------------------------------------------------
def distance_heatmap(models: pd.DataFrame, ax: Any = None) -> Figure:
    """Pairwise Hamming distances of the models' choice vectors (rows in the given order)."""
    from analyzer.architectures import distance_matrix

    d = distance_matrix(models)
    if ax is None:
        fig, (ax,) = _fig(5.5, 4.6)
    else:
        fig = ax.figure
    im = ax.imshow(d.to_numpy(), cmap="viridis")
    ax.set_xticks(range(len(d)), [str(c) for c in d.columns], rotation=90, fontsize=6)
    ax.set_yticks(range(len(d)), [str(c) for c in d.index], fontsize=6)
    fig.colorbar(im, ax=ax, label="Hamming distance (choices that differ)")
    ax.set_title("structural distance", fontsize=10)
    return fig
