"""The analyzer library on small data: loaders, queries, metrics, figures, drawings.

Fast tests only (no training): the A4NN ICPP'23 commons CSVs shipped in
benchmarks/data/a4nn-icpp23 and run directories written by hand in the documented format
(one as today's runs write it, one with the columns of generic search spaces).
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import yaml

import analyzer as A
from analyzer import figures
from analyzer.drawing import dot_source, draw_architecture, draw_png, has_graphviz
from analyzer.loading import AnalyzerError

REPO = Path(__file__).resolve().parents[1]
COMMONS = REPO / "benchmarks" / "data" / "a4nn-icpp23"
STOPPING = COMMONS / "1gpu_1e15_stopping_training_data.csv"
STANDALONE = COMMONS / "1gpu_1e15_training_data.csv"


# -- hand-written run directories ----------------------------------------------------------
def write_run(
    folder: Path,
    curves: dict[int, list[float]],
    budget: int,
    stopped: set[int] = frozenset(),
    new_format: bool = False,
    engine: str = "default",
) -> Path:
    """A run directory with the given validation curves (model -> accuracies); models in
    `stopped` are marked converged at their last epoch with a prediction 1 point higher."""
    folder.mkdir(parents=True)
    (folder / "run.json").write_text(
        json.dumps({"name": folder.name, "status": "finished", "wall_seconds": 12.5})
    )
    (folder / "config.yaml").write_text(
        yaml.safe_dump({"train": {"epochs": budget}, "engine": {"preset": engine}})
    )
    epochs, models = [], []
    for mid, vals in curves.items():
        for e, v in enumerate(vals):
            last = e == len(vals) - 1
            conv = mid in stopped and last
            pred = v + 1.0 if e >= 2 else None
            if e == 2 and not last:
                pred = 101.29  # rejected by the engine
            epochs.append(
                {
                    "model_id": mid,
                    "epoch": e,
                    "train_acc": v,
                    "val_acc": v,
                    "epoch_seconds": 2.0,
                    "prediction": pred,
                    "converged": conv,
                }
            )
        bits = [int(b) for b in f"{mid * 37 % 2**21:021b}"]
        genome = [bits[0:7], bits[7:14], bits[14:21]]
        row = {
            "model_id": mid,
            "generation": 0,
            "parents": "[]",
            "proposer": "nsganet",
            "genome": json.dumps(genome),
            "mflops": 1.0 + mid,
            "params": 100 * (mid + 1),
            "status": "converged" if mid in stopped else "budget",
            "reason": "",
            "fitness": vals[-1] + 1.0 if mid in stopped else vals[-1],
            "epochs_trained": len(vals),
            "termination_epoch": len(vals) - 1,
            "last_val_acc": vals[-1],
            "best_val_acc": max(vals),
            "train_seconds": 2.0 * len(vals),
        }
        if new_format:
            choices = [mid % 3, 1, 2, mid % 2]
            row["space"] = "toy-space"
            row["arch"] = json.dumps({"ops": choices})
            row["choices"] = json.dumps(choices)
            row["architecture"] = json.dumps(
                {
                    "graph": {
                        "nodes": [
                            {"id": "in", "label": "input"},
                            {"id": "a", "label": f"op {choices[0]}"},
                            {"id": "out", "label": "output"},
                        ],
                        "edges": [["in", "a"], ["a", "out"], ["in", "out"]],
                    }
                }
            )
            del row["genome"]
        models.append(row)
    pd.DataFrame(epochs).to_csv(folder / "epochs.csv", index=False)
    pd.DataFrame(models).to_csv(folder / "models.csv", index=False)
    return folder


CURVES = {
    0: [50, 70, 80, 85, 86, 86.5],
    1: [60, 75, 82, 83],
    2: [55, 65, 70, 74, 76, 77],
    3: [52, 80, 90],
}


@pytest.fixture
def run_dir(tmp_path: Path) -> Path:
    return write_run(tmp_path / "on", CURVES, budget=6, stopped={1, 3})


# -- loading -------------------------------------------------------------------------------
def test_a4nn_stopping_csv_loads_with_the_engines_work():
    t = A.load(STOPPING)
    assert t.run_names == [STOPPING.name]
    assert len(t.models) == 100 and len(t.epochs) == 1647
    assert t.models["model_id"].is_unique
    assert set(t.models["model_id"]) == set(range(100))  # the `arch` column
    assert int(t.models["stopped_early"].sum()) == 69
    assert set(t.models["space"]) == {"nsganet-macro"}
    assert t.models["choices"].map(len).eq(21).all()
    saved = A.epochs_saved(t).iloc[0]
    assert saved["epochs_budget"] == 2500 and saved["epochs_trained"] == 1647
    assert saved["epochs_saved_pct"] == pytest.approx(34.12)
    stopped = t.models[t.models["stopped_early"]]
    assert (stopped["fitness"] == stopped["prediction_at_stop"]).all()
    assert t.runs.iloc[0]["engine"] == "paper"
    w = A.wall_time(t).iloc[0]
    assert w["training_seconds"] == pytest.approx(t.epochs["epoch_seconds"].sum())
    assert w["saved_seconds"] > 0


def test_a4nn_standalone_csv_is_engine_off():
    """The standalone file records the engine's verdicts, but training never stopped."""
    t = A.load(STANDALONE)
    assert t.runs.iloc[0]["engine"] == "off"
    assert not t.models["stopped_early"].any()
    assert (t.models["status"] == "budget").all()
    assert (t.models["fitness"] == t.models["last_val_acc"]).all()
    assert t.models["first_converged_epoch"].notna().sum() > 0  # what it would have done


def test_commons_folder_holds_two_runs_and_curves_stay_apart(tmp_path):
    shutil.copy(STOPPING, tmp_path)
    shutil.copy(STANDALONE, tmp_path)
    t = A.load_commons(tmp_path)
    assert sorted(t.run_names) == sorted([STOPPING.name, STANDALONE.name])
    # model ids repeat across the runs; keys are (run, model_id)
    assert not t.models[["run", "model_id"]].duplicated().any()
    assert t.models["model_id"].duplicated().any()
    for run in t.run_names:
        fig = figures.learning_curves(t, run)
        lines = [ln for ln in fig.axes[0].lines if str(ln.get_gid()).startswith("model ")]
        n_models = (t.models["run"] == run).sum()
        assert len(lines) == n_models  # one line per model, never one zig-zag
        for ln in lines:
            assert np.all(np.diff(ln.get_xdata()) > 0)  # epochs ascend within a line


def test_run_directory_loads_with_derived_columns(run_dir):
    t = A.load(run_dir)
    m = t.models.set_index("model_id")
    assert list(m.index) == [0, 1, 2, 3]
    assert m.loc[1, "stopped_early"] and m.loc[3, "stopped_early"]
    assert not m.loc[0, "stopped_early"]
    assert m.loc[1, "prediction_at_stop"] == pytest.approx(84.0)
    assert m.loc[0, "budget"] == 6
    assert t.runs.iloc[0]["engine"] == "default"
    assert m.loc[0, "choices"] == tuple(int(b) for b in f"{0:021b}")
    s = A.epochs_saved(t).iloc[0]
    assert (s["epochs_trained"], s["epochs_budget"]) == (19, 24)
    assert s["stopped_early"] == 2


def test_new_format_columns_are_used(tmp_path):
    t = A.load(write_run(tmp_path / "new", CURVES, budget=6, new_format=True))
    m = t.models.set_index("model_id")
    assert m.loc[2, "choices"] == (2, 1, 2, 0)
    assert set(m["space"]) == {"toy-space"}
    g = A.graph_of(m.loc[2])
    assert [n["label"] for n in g["nodes"]] == ["input", "op 2", "output"]
    assert ["in", "out"] in g["edges"]


def test_old_run_without_optional_columns_loads(tmp_path):
    run = write_run(tmp_path / "old", CURVES, budget=6)
    epochs = pd.read_csv(run / "epochs.csv").drop(columns=["prediction", "converged", "train_acc"])
    epochs.to_csv(run / "epochs.csv", index=False)
    models = pd.read_csv(run / "models.csv")[["model_id", "genome", "mflops"]]
    models.to_csv(run / "models.csv", index=False)
    t = A.load(run)
    assert (t.models["status"] == "budget").all()
    assert t.models.set_index("model_id").loc[0, "epochs_trained"] == 6
    assert t.models["fitness"].tolist() == [86.5, 83, 77, 90]


@pytest.mark.parametrize(
    ("table", "change", "message"),
    [
        (
            "epochs",
            lambda df: df.drop(columns=["val_acc"]),
            "epochs.csv: column 'val_acc' is missing",
        ),
        (
            "epochs",
            lambda df: df.assign(val_acc="high"),
            "epochs.csv: column 'val_acc' holds 'high'",
        ),
        (
            "models",
            lambda df: df.drop(columns=["model_id"]),
            "models.csv: column 'model_id' is missing",
        ),
    ],
)
def test_bad_tables_name_file_and_column(run_dir, table, change, message):
    path = run_dir / f"{table}.csv"
    change(pd.read_csv(path)).to_csv(path, index=False)
    with pytest.raises(AnalyzerError, match=message):
        A.load(run_dir)


def test_not_an_a4nn_csv_is_named(tmp_path):
    bad = tmp_path / "other.csv"
    bad.write_text("a,b\n1,2\n")
    with pytest.raises(AnalyzerError, match="other.csv is not an A4NN commons CSV"):
        A.load(bad)
    with pytest.raises(FileNotFoundError, match="does not exist"):
        A.load(tmp_path / "missing")


def test_two_runs_with_one_folder_name_get_distinct_names(tmp_path):
    a = write_run(tmp_path / "a" / "run", CURVES, budget=6)
    b = write_run(tmp_path / "b" / "run", CURVES, budget=6)
    t = A.load(a, b)
    assert t.run_names == ["a/run", "b/run"]
    assert len(A.load(a, b, names=["on", "off"]).run("off").models) == 4


# -- queries ---------------------------------------------------------------------------------
def _models(acc, flops, choices=None):
    n = len(acc)
    return pd.DataFrame(
        {
            "run": "r",
            "model_id": range(n),
            "fitness": acc,
            "best_val_acc": acc,
            "mflops": flops,
            "status": "budget",
            "termination_epoch": 5,
            "proposer": "nsganet",
            "space": "s",
            "choices": choices or [(i % 2, i % 3) for i in range(n)],
        }
    )


def test_pareto_and_hypervolume_with_a_reference_point():
    m = _models([90, 80, 95, 85, 70], [2.0, 1.0, 4.0, 3.0, 1.5])
    front = A.pareto(m)
    assert list(front["model_id"]) == [1, 0, 2]  # 3 (85 @ 3) and 4 (70 @ 1.5) dominated
    # staircase up to (accuracy 0, 5 MFLOPs): 80 x (2-1) + 90 x (4-2) + 95 x (5-4)
    assert A.hypervolume(m, ref=(0.0, 5.0)) == pytest.approx(80 + 180 + 95)
    # raising the accuracy reference cuts the area; a point beyond it does not count
    assert A.hypervolume(m, ref=(85.0, 5.0)) == pytest.approx(5 * 2 + 10 * 1)
    hv = A.hypervolumes(m, ref=(0.0, 5.0)).iloc[0]
    assert hv["ref_mflops"] == 5.0 and hv["normalized"] == pytest.approx(355 / 500)


def test_select_and_top_k():
    m = _models([90, 80, 95, 85, 70], [2.0, 1.0, 4.0, 3.0, 1.5])
    assert list(A.top_k(m, 2)["model_id"]) == [2, 0]
    assert list(A.select(m, min_acc=85, max_mflops=3)["model_id"]) == [0, 3]
    assert list(A.select(m, pattern="1?")["model_id"]) == [1, 3]
    assert list(A.select(m, pattern=lambda c: c[1] == 2)["model_id"]) == [2]
    with pytest.raises(ValueError, match="has 3 positions; the choice vectors have"):
        A.select(m, pattern="1??")


def test_hamming_similarity_and_clusters():
    vecs = [(0, 0, 0, 0), (0, 0, 0, 1), (0, 0, 1, 1), (1, 1, 1, 1), (1, 1, 1, 0)]
    m = _models([99, 98, 97, 90, 91], [1] * 5, choices=vecs)
    assert A.hamming(vecs[0], vecs[3]) == 4
    d = A.distance_matrix(m)
    assert d.loc[0, 2] == 2 and d.loc[3, 4] == 1
    c = A.clusters(m, max_distance=1)
    assert c["cluster"].tolist() == [0, 0, 0, 1, 1]  # chain 0-1-2 holds the best model
    summary = A.consensus(c)
    assert summary.loc[0, "size"] == 3 and summary.loc[0, "consensus"] == (0, 0, 0, 1)
    alike = A.alikeness(m, m.head(3))
    assert alike["ratio"] < 1  # the three best are closer to each other than all five
    assert list(A.similar_to(m, (1, 1, 1, 1), k=2)["model_id"]) == [3, 4]


# -- metrics -----------------------------------------------------------------------------------
def test_prediction_error_against_an_engine_off_run(tmp_path):
    on = write_run(tmp_path / "on", CURVES, budget=6, stopped={1, 3})
    full = {0: CURVES[0], 1: [60, 75, 82, 83, 84, 84.5], 2: CURVES[2], 3: [52, 80, 90, 92, 93, 93]}
    off = write_run(tmp_path / "off", full, budget=6, engine="off")
    t = A.load(on, off)
    err = A.prediction_error(t.run("on"), t.run("off")).set_index("model_id")
    assert err.loc[1, "prediction_at_stop"] == 84.0 and err.loc[1, "true_final"] == 84.5
    assert err.loc[1, "error"] == pytest.approx(-0.5)
    assert err.loc[3, "extrapolation"] == pytest.approx(1.0)
    w = A.wall_time(t).set_index("run")
    assert w.loc["on", "saved_seconds"] == pytest.approx(2 * (2 + 3))  # skipped epochs x 2 s
    dist = A.termination_distribution(t, stopped_only=True)
    assert dist.to_dict("records") == [
        {"run": "on", "epochs_trained": 3, "models": 1},
        {"run": "on", "epochs_trained": 4, "models": 1},
    ]


@pytest.mark.slow
def test_what_if_replay_of_an_engine_off_curve_set():
    from analyzer import whatif

    t = A.load(STANDALONE).first_models(4)
    r = whatif.replay(t, "default")
    assert r["summary"]["exact"] and r["summary"]["models"] == 4
    per = r["models"]
    assert (per["epochs_used"] <= 25).all()
    assert per["error"].equals(per["fitness"] - per["true"])


# -- figures and drawings ----------------------------------------------------------------------
def test_learning_curve_marks_rejected_predictions_and_the_stop(run_dir):
    t = A.load(run_dir)
    fig = figures.learning_curve(t, 1)
    labels = fig.axes[0].get_legend_handles_labels()[1]
    assert "1 predictions rejected (outside 0-100 %)" in labels
    assert "engine stopped it after epoch 4" in labels
    assert any("fitness handed to the NAS: 84.00" in label for label in labels)


@pytest.mark.slow
def test_every_figure_draws_for_runs_and_csvs(run_dir, tmp_path):
    t = A.concat([A.load(run_dir), A.load(STOPPING).first_models(10)])
    for fig in (
        figures.pareto_fronts(t),
        figures.epochs_with_without(t),
        figures.termination_epochs(t),
        figures.wall_times(t),
        figures.distance_heatmap(A.load(STOPPING).models.head(8)),
    ):
        fig.savefig(tmp_path / "f.png")
        assert (tmp_path / "f.png").stat().st_size > 5000
    title = figures.pareto_fronts(t)._suptitle.get_text()
    assert "reference point: accuracy 0 %" in title


def test_architecture_graph_from_a_genome_matches_the_runs_description():
    """The graph derived from a bare genome (A4NN CSV) equals the one from the decoded
    description our runs record (the same genome through adapters/nsganet/decode.py)."""
    desc = {
        "encoding": "nsganet-macro",
        "phase_graphs": [
            {
                "active": True,
                "index": 0,
                "nodes": [2, 3, 4],
                "output": 5,
                "skip": True,
                "edges": [
                    {"src": 0, "dst": 2, "kind": "repair"},
                    {"src": 0, "dst": 3, "kind": "repair"},
                    {"src": 2, "dst": 4, "kind": "gene"},
                    {"src": 3, "dst": 4, "kind": "gene"},
                    {"src": 0, "dst": 5, "kind": "skip"},
                    {"src": 4, "dst": 5, "kind": "repair"},
                ],
            },
            {"active": False, "index": 1, "nodes": [], "edges": [], "output": 5, "skip": False},
            {
                "active": True,
                "index": 2,
                "nodes": [1, 3],
                "output": 5,
                "skip": True,
                "edges": [
                    {"src": 0, "dst": 1, "kind": "repair"},
                    {"src": 1, "dst": 3, "kind": "gene"},
                    {"src": 0, "dst": 5, "kind": "skip"},
                    {"src": 3, "dst": 5, "kind": "repair"},
                ],
            },
        ],
    }  # as describe() writes genome 27 of the A4NN stopping CSV
    genome = [[0, 0, 0, 0, 1, 1, 1], [0, 0, 0, 0, 0, 0, 0], [0, 1, 0, 0, 0, 0, 1]]
    from_desc = A.graph_of({"architecture": json.dumps(desc)})
    from_genome = A.graph_of({"genome": json.dumps(genome)})
    assert from_desc == from_genome
    labels = [n["label"] for n in from_genome["nodes"]]
    assert labels[0] == "input" and labels[-1] == "linear" and "max pool 2x2" in labels
    assert not any(n["id"].startswith("p1_") for n in from_genome["nodes"])  # inactive phase


def test_drawing_falls_back_to_matplotlib_and_uses_graphviz_when_installed(tmp_path):
    row = A.load(STOPPING).models.iloc[0]
    mpl = draw_architecture(row, backend="matplotlib")
    assert mpl.backend == "matplotlib" and mpl.svg.startswith("<svg")
    assert mpl.svg.count("<path") > 20  # boxes, arrows and glyphs
    draw_png(row, tmp_path / "a.png", backend="matplotlib")
    assert (tmp_path / "a.png").read_bytes()[:4] == b"\x89PNG"
    src = dot_source(A.graph_of(row))
    assert '"p0_in" -> "p0_out" [style=dashed' in src  # the skip connection
    if not has_graphviz():
        pytest.skip("Graphviz's dot is not installed (apt-get install graphviz)")
    gv = draw_architecture(row)
    assert gv.backend == "graphviz" and gv.svg.startswith("<svg") and "phase 0 in" in gv.svg
