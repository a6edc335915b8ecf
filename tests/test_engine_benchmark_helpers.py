"""The engine benchmark's bookkeeping: target checks where tau_eps is undefined, and
recorded curve sets found by name (benchmarks/engine/, run as scripts, loaded here)."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

BENCH = Path(__file__).resolve().parents[1] / "benchmarks" / "engine"
sys.path.insert(0, str(BENCH))

import compare  # noqa: E402
import curve_sets  # noqa: E402
import select_default  # noqa: E402

NAN = float("nan")


def _row(**over) -> dict:
    row = {
        "epochs_saved_pct": 45.0,
        "kendall_tau_eps": 0.95,
        "mae_stopped": 0.3,
        "ms_per_call": 0.1,
    }
    return {**row, **over}


def test_targets_hold_only_when_every_one_does():
    assert compare.meets(_row())
    assert not compare.meets(_row(epochs_saved_pct=39.9))
    assert not compare.meets(_row(kendall_tau_eps=0.89))
    assert not compare.meets(_row(mae_stopped=1.01))
    assert not compare.meets(_row(ms_per_call=1.2))


def test_undefined_tau_eps_leaves_the_other_targets_to_decide():
    assert compare.meets(_row(kendall_tau_eps=NAN))
    assert not compare.meets(_row(kendall_tau_eps=NAN, epochs_saved_pct=10.0))
    assert compare.meets(_row(mae_stopped=NAN))  # no model stopped: nothing to be off


def test_selection_reports_undefined_tau_eps_as_na():
    rows = [_row(kendall_tau_eps=0.9), _row(kendall_tau_eps=NAN), _row(kendall_tau_eps=None)]
    assert select_default._tau_eps(rows) == "0.900 (0.900)"
    assert select_default._tau_eps(rows[1:]) == "n/a"
    assert select_default.faithful(_row(kendall_tau_eps=NAN))


def _epochs_csv(path: Path) -> None:
    path.write_text("model_id,epoch,val_acc\n0,0,50.0\n0,1,60.0\n1,0,55.0\n1,1,58.0\n")


def test_recorded_sets_are_named_by_intensity(tmp_path):
    _epochs_csv(tmp_path / "xfel_1e14_epochs.csv")
    (tmp_path / "xfel_1e14_models.csv").write_text("model_id\n0\n1\n")  # not curves
    (tmp_path / "1e16").mkdir()
    _epochs_csv(tmp_path / "1e16" / "epochs.csv")
    sets = curve_sets._recorded(tmp_path, "xfel-gpu")
    assert sorted(sets) == ["xfel-gpu_1e14", "xfel-gpu_1e16"]
    assert sets["xfel-gpu_1e14"].models() == ["0", "1"]


def test_two_sets_with_one_name_are_refused(tmp_path):
    _epochs_csv(tmp_path / "xfel_1e15_epochs.csv")
    (tmp_path / "1e15").mkdir()
    _epochs_csv(tmp_path / "1e15" / "epochs.csv")
    with pytest.raises(ValueError, match="two curve sets named xfel_1e15"):
        curve_sets._recorded(tmp_path, "xfel")


def test_missing_folder_has_no_sets(tmp_path):
    assert curve_sets._recorded(tmp_path / "absent", "xfel") == {}


def test_subset_and_reorder_keep_the_architectures():
    """A reordered search must reach the architecture-aware prior with its choice vectors."""
    import sys
    from pathlib import Path

    sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "benchmarks" / "engine"))
    from curve_sets import subset
    from orders import reorder

    from engine.replay import Curves

    c = Curves(source="t", rows=[(0, 0, 50.0), (1, 0, 60.0)], labels={0: "a", 1: "b"})
    c.features = {0: [1.0, 0.0], 1: [0.0, 1.0]}
    assert subset(c, [1]).features == {1: [0.0, 1.0]}
    assert reorder(c, [1, 0]).features == c.features


def test_sources_are_relative_to_the_repository(tmp_path):
    """Committed reports name the curve files from the repository root, not a checkout."""
    inside = curve_sets.DATA / "a4nn-icpp23" / "1gpu_1e15_training_data.csv"
    if inside.is_file():
        assert curve_sets.read_relative(inside).source == (
            "benchmarks/data/a4nn-icpp23/1gpu_1e15_training_data.csv"
        )
    _epochs_csv(tmp_path / "xfel_1e14_epochs.csv")
    outside = curve_sets.read_relative(tmp_path / "xfel_1e14_epochs.csv")
    assert outside.source == str(tmp_path / "xfel_1e14_epochs.csv")


def test_reading_section_is_kept(tmp_path):
    md = tmp_path / "R.md"
    assert curve_sets.reading(md) == ""
    md.write_text("# T\n\n| a |\n\n## Reading\n\nkept\n")
    assert curve_sets.reading(md) == "\n## Reading\n\nkept\n"


def test_ceiling_says_from_which_epoch_the_ranking_holds():
    import ceiling
    import numpy as np

    final = np.arange(20, dtype=float)  # finals 1 point apart: every pair counts
    noise = np.random.default_rng(0).normal(0.0, 30.0, size=(20, 10))
    vals = np.column_stack([noise, np.tile(final[:, None], (1, 10)), final])  # 21 epochs
    holds = ceiling.holds_from(vals, final, 21)
    assert holds["raw"] == 11  # noise until 10 epochs, the final order from 11 on
    flat = np.full(20, 99.0)
    assert ceiling.holds_from(np.tile(flat[:, None], (1, 21)), flat, 21)["raw"] == "n/a"
