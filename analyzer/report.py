"""One self-contained HTML report of one or more runs (`a4nn report`).

`write_report(paths, out)` loads every path (run directory, commons download or A4NN
CSV), and writes one HTML file with everything embedded (figures as PNG data URIs,
architecture drawings as inline SVG, no external file, script or font): the summary
table, the engine's work (learning curves with its predictions and stops, epochs and
wall time with and without it, termination epochs, its prediction error where an
engine-off run is compared), the Pareto fronts with hypervolumes, the top models, and a
drawing of each run's best architecture.
"""

from __future__ import annotations

import base64
import datetime as dt
import html
import io
import math
from pathlib import Path
from typing import Any

import pandas as pd

from analyzer import figures
from analyzer.drawing import draw_architecture
from analyzer.loading import Tables, load
from analyzer.metrics import prediction_error, summary
from analyzer.queries import ok_models, pareto, reference_point, top_k

CSS = """
body{font-family:-apple-system,Segoe UI,Helvetica,Arial,sans-serif;margin:24px auto;
max-width:1180px;color:#222;line-height:1.4}
h1{font-size:1.5em;margin-bottom:0}h2{font-size:1.2em;border-bottom:1px solid #ddd;
padding-bottom:3px;margin-top:1.6em}
.sub{color:#666;font-size:.9em}
table{border-collapse:collapse;font-size:.85em;margin:.5em 0}
th,td{border:1px solid #ddd;padding:3px 8px;text-align:right}
th{background:#f3f5f8}td.l,th.l{text-align:left}
.big{display:flex;gap:18px;flex-wrap:wrap;margin:.6em 0}
.card{background:#f3f7fc;border:1px solid #d6e2f0;border-radius:6px;padding:8px 14px}
.card b{font-size:1.35em;display:block}
img{max-width:100%}.row{display:flex;gap:8px}.row img{max-width:50%}
.arch{display:inline-block;vertical-align:top;margin-right:18px}
.arch svg{max-height:640px;width:auto}
.note{color:#555;font-size:.85em}
"""


def _png(fig: Any, dpi: int = 90) -> str:
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=dpi)
    data = base64.b64encode(buf.getvalue()).decode()
    return f'<img alt="figure" src="data:image/png;base64,{data}">'


def _num(v: Any, fmt: str = "{:.2f}") -> str:
    try:
        f = float(v)
    except (TypeError, ValueError):
        return html.escape(str(v)) if v is not None else "-"
    return fmt.format(f) if math.isfinite(f) else "-"


def _duration(seconds: Any) -> str:
    try:
        s = float(seconds)
    except (TypeError, ValueError):
        return "-"
    if not math.isfinite(s):
        return "-"
    if s >= 3 * 3600:
        return f"{s / 3600:.1f} h"
    if s >= 180:
        return f"{s / 60:.1f} min"
    return f"{s:.1f} s"


def _table(df: pd.DataFrame, left: tuple[str, ...] = ()) -> str:
    head = "".join(
        f'<th class="{"l" if c in left else ""}">{html.escape(str(c))}</th>' for c in df.columns
    )
    rows = []
    for _, r in df.iterrows():
        cells = "".join(
            f'<td class="{"l" if c in left else ""}">{html.escape(str(r[c]))}</td>'
            for c in df.columns
        )
        rows.append(f"<tr>{cells}</tr>")
    return f"<table><tr>{head}</tr>{''.join(rows)}</table>"


def summary_table(t: Tables) -> pd.DataFrame:
    """The report's first table, formatted (one row per run)."""
    s = summary(t)
    return pd.DataFrame(
        {
            "run": s["run"],
            "engine": s.get("engine", "-"),
            "adapter": s.get("adapter", "-"),
            "models": s["models"],
            "stopped early": s["stopped_early"],
            "epochs trained / budget": [
                f"{int(a)} / {_num(b, '{:.0f}')}"
                for a, b in zip(s["epochs_trained"], s["epochs_budget"], strict=True)
            ],
            "epochs saved": [_num(v, "{:.1f}%") for v in s["epochs_saved_pct"]],
            "training time": [_duration(v) for v in s["training_seconds"]],
            "without engine (est.)": [_duration(v) for v in s["without_engine_seconds"]],
            "best val. acc.": [
                f"{_num(a)}% (model {m})" if m is not pd.NA else "-"
                for a, m in zip(s["best_val_acc"], s["best_model"], strict=True)
            ],
            "Pareto set": s["pareto_size"],
            "hypervolume": [_num(v, "{:,.1f}") for v in s["hypervolume"]],
        }
    )


def text_summary(t: Tables) -> str:
    """Plain text for the terminal: per run, what the engine saved and the best model."""
    s = summary(t)
    lines = []
    for _, r in s.iterrows():
        lines += [
            f"Run: {r['run']} (engine {r.get('engine', '?')})",
            f"  Models trained: {r['models']} ({r['stopped_early']} stopped early by the "
            f"engine, {r['failed']} failed)",
            f"  Epochs trained: {r['epochs_trained']} of a {_num(r['epochs_budget'], '{:.0f}')}"
            f"-epoch budget ({_num(r['epochs_saved_pct'], '{:.1f}')}% saved)",
            f"  Best validation accuracy: {_num(r['best_val_acc'])}% (model {r['best_model']})",
            f"  Training time: {_duration(r['training_seconds'])} (without the engine, "
            f"estimated: {_duration(r['without_engine_seconds'])})",
        ]
    return "\n".join(lines)


def _learning_curve_model(t: Tables, run: str) -> int | None:
    """The model whose curve shows the engine best: the most accurate one it stopped,
    else the most accurate."""
    m = ok_models(t.models[t.models["run"] == run]).dropna(subset=["fitness"])
    stopped = m[m["stopped_early"] & m["prediction_at_stop"].notna()]
    pick = stopped if len(stopped) else m
    if pick.empty:
        return None
    return int(pick.sort_values("fitness", ascending=False)["model_id"].iloc[0])


def build_html(t: Tables, title: str = "A4NN report") -> str:
    """The report for the runs in `t` as one HTML string."""
    runs = t.run_names
    s = summary(t)
    parts = [
        "<!DOCTYPE html><html><head><meta charset='utf-8'>",
        f"<title>{html.escape(title)}</title><style>{CSS}</style></head><body>",
        f"<h1>{html.escape(title)}</h1>",
        f"<p class='sub'>{html.escape(', '.join(runs))} &middot; written "
        f"{dt.datetime.now().strftime('%Y-%m-%d %H:%M')} by <code>a4nn report</code></p>",
    ]
    first = s.iloc[0]
    parts.append("<div class='big'>")
    for label, value in (
        ("models trained", f"{first['models']}"),
        ("stopped early by the engine", f"{first['stopped_early']}"),
        ("epochs saved", _num(first["epochs_saved_pct"], "{:.1f}%")),
        ("training time saved (est.)", _num(first["time_saved_pct"], "{:.1f}%")),
        ("best validation accuracy", _num(first["best_val_acc"], "{:.2f}%")),
    ):
        parts.append(f"<div class='card'><b>{value}</b>{html.escape(label)}</div>")
    parts.append(f"</div><p class='sub'>for {html.escape(runs[0])}</p>")

    parts.append("<h2>Summary</h2>")
    parts.append(_table(summary_table(t), left=("run", "engine", "adapter", "best val. acc.")))
    ref = reference_point(ok_models(t.models))
    parts.append(
        f"<p class='note'>Epochs saved: 1 - epochs trained / (models x epochs per model). "
        f"Time without the engine is estimated: each stopped model's skipped epochs at its "
        f"own mean epoch time. Hypervolume: area dominated by the Pareto set in "
        f"(MFLOPs, fitness) up to the reference point accuracy {ref[0]:g}%, "
        f"{ref[1]:,.4g} MFLOPs (the largest of all models shown), in % x MFLOPs.</p>"
    )

    parts.append("<h2>Learning curves and where the engine stopped them</h2>")
    for run in runs:
        mid = _learning_curve_model(t, run)
        row = [_png(figures.learning_curves(t, run))]
        if mid is not None:
            row.append(_png(figures.learning_curve(t, mid, run)))
        parts.append("<div class='row'>" + "".join(row) + "</div>")
    parts.append(
        "<p class='note'>Red crosses: the engine's prediction of the final accuracy after "
        "each epoch; hollow triangles: predictions outside 0-100% that the engine rejects "
        "(never handed to the NAS); star: the fitness handed to the NAS when the engine "
        "stopped the model.</p>"
    )

    reference = _engine_off(t)
    if reference is not None:
        others = [r for r in runs if r != reference]
        frames = [prediction_error(t.run(r), t.run(reference)) for r in others]
        err = pd.concat(frames) if frames else pd.DataFrame()
        matched = err.dropna(subset=["true_final"]) if len(err) else err
        parts.append("<h2>Prediction error at termination</h2>")
        if len(matched):
            mae = matched["error"].abs().mean()
            parts.append(
                f"<p>{len(matched)} stopped models have the same architecture in the "
                f"engine-off run <b>{html.escape(reference)}</b>: mean absolute error of the "
                f"prediction handed to the NAS {mae:.2f} points (bias "
                f"{matched['error'].mean():+.2f}).</p>"
            )
            show = matched.assign(
                **{
                    c: matched[c].map(lambda v: _num(v))
                    for c in ("prediction_at_stop", "val_acc_at_stop", "true_final", "error")
                }
            )[
                [
                    "run",
                    "model_id",
                    "epochs_trained",
                    "prediction_at_stop",
                    "val_acc_at_stop",
                    "true_final",
                    "error",
                ]
            ]
            parts.append(_table(show, left=("run",)))
        else:
            parts.append(
                f"<p class='note'>No model the engine stopped has the same architecture in "
                f"the engine-off run {html.escape(reference)}; replay its curves instead "
                f"(notebook 04-engine-what-if).</p>"
            )

    parts.append("<h2>Epochs with and without the engine</h2>")
    parts.append(_png(figures.epochs_with_without(t)))
    parts.append("<h2>Termination epochs</h2>")
    parts.append(_png(figures.termination_epochs(t)))
    parts.append("<h2>Wall time</h2>")
    parts.append(_png(figures.wall_times(t)))

    parts.append("<h2>Accuracy against FLOPs</h2>")
    parts.append(_png(figures.pareto_fronts(t, ref=ref)))
    for run in runs:
        front = pareto(t.models[t.models["run"] == run])
        parts.append(f"<p><b>{html.escape(run)}</b>: Pareto set</p>")
        parts.append(_table(_model_rows(front), left=("choices",)))

    parts.append("<h2>Top models</h2>")
    for run in runs:
        top = top_k(t.models[t.models["run"] == run], 10)
        parts.append(f"<p><b>{html.escape(run)}</b></p>")
        parts.append(_table(_model_rows(top), left=("choices",)))

    parts.append("<h2>Best architectures</h2><div>")
    for run in runs:
        m = ok_models(t.models[t.models["run"] == run]).dropna(subset=["best_val_acc"])
        if m.empty:
            continue
        best = m.sort_values("best_val_acc", ascending=False).iloc[0]
        try:
            drawing = draw_architecture(best)
        except ValueError as err:
            parts.append(f"<p class='note'>{html.escape(str(err))}</p>")
            continue
        parts.append(
            f"<div class='arch'><p><b>{html.escape(run)}</b>: model {int(best['model_id'])}, "
            f"{_num(best['best_val_acc'])}%, {_num(best['mflops'], '{:.3g}')} MFLOPs "
            f"<span class='note'>(drawn with {drawing.backend})</span></p>"
            f"{drawing.svg}</div>"
        )
    parts.append("</div>")
    parts.append(
        "<p class='note'>Explore further in JupyterLab: <code>notebooks/01-explore-run.ipynb"
        "</code> (see the README).</p></body></html>"
    )
    return "\n".join(parts)


def _engine_off(t: Tables) -> str | None:
    """A compared run with the engine off (every model to the budget), if any and not
    the only run."""
    if len(t.run_names) < 2 or t.runs.empty:
        return None
    for run in t.run_names[1:] + t.run_names[:1]:
        m = t.models[t.models["run"] == run]
        if (
            len(m)
            and not m["stopped_early"].any()
            and (t.runs.loc[t.runs["run"] == run, "engine"].iloc[0] == "off")
        ):
            return run
    return None


def _model_rows(m: pd.DataFrame) -> pd.DataFrame:
    return pd.DataFrame(
        {
            "model": m["model_id"].astype(int),
            "fitness %": m["fitness"].map(_num),
            "best val %": m["best_val_acc"].map(_num),
            "MFLOPs": m["mflops"].map(lambda v: _num(v, "{:.4g}")),
            "epochs": m["epochs_trained"].astype(int),
            "status": m["status"],
            "choices": m["choices"].map(
                lambda c: "".join(map(str, c)) if isinstance(c, tuple) and len(c) <= 64 else "-"
            ),
        }
    )


def write_report(
    paths: list[str | Path] | Tables, out: str | Path, title: str | None = None
) -> Path:
    """Load `paths` (or take `Tables`) and write the HTML report to `out`."""
    t = paths if isinstance(paths, Tables) else load(*paths)
    out = Path(out)
    out.parent.mkdir(parents=True, exist_ok=True)
    text = build_html(t, title or f"A4NN report: {', '.join(t.run_names)}")
    tmp = out.with_name(out.name + ".tmp")
    tmp.write_text(text, encoding="utf-8")
    tmp.replace(out)
    return out
