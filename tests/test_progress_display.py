"""What the progress shows of the engine's predictions: what the NAS would get, and a
prediction the engine rejects (outside 0-100 %) marked as such, never shown raw."""

from __future__ import annotations

import io

from a4nn.progress import ProgressReporter, prediction_text
from a4nn.types import Candidate, Result
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


def _failed(model_id: int, epochs: int) -> Result:
    return Result(model_id, 0.0, 0.1, 10, epochs, status="failed", reason="loss diverged")


def test_progress_over_failed_models_says_none_yet_and_saves_nothing():
    """Failed models (NaN loss) have no accuracy to be the best, and their unused epochs
    are not the engine's savings."""
    cand = Candidate(0, "nsganet-macro", [[1]])
    out = io.StringIO()
    rep = ProgressReporter(10, stream=out, per_epoch=False)
    board = ProgressBoard(epochs_budget=10, stream=io.StringIO(), live=False)
    for res in (_failed(0, 2), _failed(1, 0)):
        rep.on_result(cand, res)
        board.on_result(cand, res)
    assert "best none yet" in out.getvalue() and "nan" not in out.getvalue().lower()
    head = board.headline()
    assert "epochs 2/2 of budget (0% saved)" in head and "best none yet" in head, head
    ok = Result(2, 80.0, 0.1, 10, 4, status="converged", best_val_acc=81.5)
    rep.on_result(cand, ok)
    board.on_result(cand, ok)
    assert out.getvalue().splitlines()[-1].count("best 81.50%") == 1
    head = board.headline()  # 6 of 2 + 10 epochs trained
    assert "epochs 6/12 of budget (50% saved)" in head, head
    assert "best 81.50% (model 2)" in head, head
