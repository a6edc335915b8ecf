"""What the progress shows of the engine's predictions: what the NAS would get, and a
prediction the engine rejects (outside 0-100 %) marked as such, never shown raw."""

from __future__ import annotations

import io

from a4nn.progress import ProgressReporter, prediction_text
from a4nn.types import Candidate
from flows.progress import ProgressBoard


def test_prediction_text():
    assert prediction_text(97.5) == "97.50"
    assert prediction_text(101.29) == "rejected (101.29)"
    assert prediction_text(-3.0) == "rejected (-3.00)"
    assert prediction_text(float("inf")) == "-"
    assert prediction_text(None) == "-"
    assert prediction_text(float("nan")) == "-"


def test_per_epoch_lines_mark_rejected_predictions():
    out = io.StringIO()
    rep = ProgressReporter(10, stream=out)
    cand = Candidate(3, "nsganet-macro", [[1]])
    rep.on_epoch(cand, {"epoch": 2, "val_acc": 91.0, "prediction": None})
    rep.on_epoch(cand, {"epoch": 3, "val_acc": 95.0, "prediction": 101.29})
    rep.on_epoch(cand, {"epoch": 4, "val_acc": 96.0, "prediction": 96.4, "converged": True})
    lines = out.getvalue().splitlines()
    assert "epoch   3/10" in lines[0] and lines[0].endswith("predicted      -")
    assert "predicted rejected (101.29)" in lines[1]
    assert "predicted  96.40" in lines[2] and "converged: stopped early" in lines[2]


def test_live_table_marks_rejected_predictions():
    from rich.console import Console

    board = ProgressBoard(epochs_budget=10, stream=io.StringIO(), live=False)
    board.on_event({"kind": "start", "model_id": 0, "worker": "w0", "gpu": "cpu"})
    board.on_event({"kind": "start", "model_id": 1, "worker": "w1", "gpu": "cpu"})
    for worker, mid, pred in (("w0", 0, 101.29), ("w1", 1, 97.25)):
        board.on_event(
            {
                "kind": "epoch",
                "model_id": mid,
                "worker": worker,
                "gpu": "cpu",
                "epoch": 4,
                "val_acc": 95.5,
                "prediction": pred,
            }
        )
    con = Console(file=io.StringIO(), width=140)
    con.print(board.render())
    text = con.file.getvalue()
    assert "rejected (101.29)" in text and "97.25" in text
    assert "101.29" not in text.replace("rejected (101.29)", "")
