"""How well can *any* early stop rank these models? The value after k epochs against the last.

An engine that saves 40% of a 25-epoch budget stops models after 15 epochs on average.
Whatever it predicts, it only knows the curve so far; the plainest predictor, the value
after k epochs, shows how much of the final ranking those first k epochs still hold.
This script prints, per curve set, Kendall tau_eps and tau of the value after k epochs
against the last-epoch value, for every model (the same metrics as `compare.py`), and
the spread of the final values, and per set the fewest epochs from which on the raw
values and the cross-validated regression keep tau_eps >= 0.90 (the issue-21 bar): the
most a uniform stop could save at that faithfulness. Writes CEILING.md and CEILING.json
(a hand-written `## Reading` section of CEILING.md is kept).

    python benchmarks/engine/ceiling.py
"""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

from curve_sets import DATA, budget_of, curve_sets, read_relative, reading, stamp  # noqa: E402

from engine.metrics import kendall_tau, kendall_tau_eps  # noqa: E402
from engine.replay import Curves, to_json  # noqa: E402

EPOCHS_TRAINED = (5, 10, 13, 15, 18, 19, 20, 21, 22, 23, 24)
BAR = 0.90  # issue 21's tau_eps target


def matrix(curves: Curves, budget: int) -> np.ndarray:
    """models x epochs of the recorded values (complete curves only)."""
    per: dict = {}
    for k, e, v in curves.rows:
        per.setdefault(k, {})[e] = v
    full = [m for m in curves.models() if len(per[m]) >= budget]
    return np.array([[per[m][e] for e in range(budget)] for m in full], dtype=float)


def cv_regression(prefix: np.ndarray, final: np.ndarray, folds: int = 10) -> np.ndarray:
    """Final values predicted from prefix features by least squares, 10-fold cross-validated.

    Features: the last value, the mean of the last three, the best so far, the slope over
    the last three. Optimistic for an in-situ engine: each fold learns from models that
    finish later in the search, which an engine never sees.
    """
    last = prefix[:, -1]
    mean3 = prefix[:, -3:].mean(axis=1)
    best = prefix.max(axis=1)
    slope = (prefix[:, -1] - prefix[:, -3]) / 2.0
    x = np.column_stack([np.ones(len(last)), last, mean3, best, slope])
    fold = np.arange(len(final)) % folds
    pred = np.empty(len(final))
    for f in range(folds):
        test = fold == f
        w, *_ = np.linalg.lstsq(x[~test], final[~test], rcond=None)
        pred[test] = x[test] @ w
    return pred


def ceiling(curves: Curves) -> dict:
    budget = budget_of(curves)
    vals = matrix(curves, budget)
    final = vals[:, -1]
    rows = []
    for n in EPOCHS_TRAINED:
        if n >= budget:
            continue
        at = vals[:, n - 1]
        rows.append(
            {
                "epochs_trained": n,
                "saved_pct": 100.0 * (1 - n / budget),
                "tau_eps": kendall_tau_eps(at, final),
                "tau": kendall_tau(at, final),
                "regression_tau_eps": kendall_tau_eps(cv_regression(vals[:, :n], final), final),
            }
        )
    p10, p50, p90 = np.percentile(final, [10, 50, 90])
    return {
        "models": int(len(vals)),
        "budget": budget,
        "final_p10_p50_p90": [float(p10), float(p50), float(p90)],
        "rows": rows,
        "holds_from": holds_from(vals, final, budget),
    }


def holds_from(vals: np.ndarray, final: np.ndarray, budget: int) -> dict:
    """Per predictor (raw value, regression): the fewest epochs k from which on tau_eps
    stays >= BAR at every k up to the budget's last-but-one epoch (None: not even there;
    NaN tau_eps, no pair to count, holds)."""
    out: dict = {}
    for kind in ("raw", "regression"):
        first, counted = None, False
        for n in range(budget - 1, 2, -1):
            at = vals[:, n - 1] if kind == "raw" else cv_regression(vals[:, :n], final)
            t = kendall_tau_eps(at, final)
            counted = counted or bool(np.isfinite(t))
            if np.isfinite(t) and t < BAR:
                break
            first = n
        out[kind] = first if counted else "n/a"
    return out


def _holds_line(res: dict) -> str:
    """One sentence: from how many epochs on each predictor keeps tau_eps >= BAR."""
    budget = res["budget"]

    def one(kind: str, label: str) -> str:
        n = res["holds_from"][kind]
        if n == "n/a":
            return f"{label}: n/a (no pair of finals 0.5 apart)"
        if n is None:
            return f"{label}: under {BAR:.2f} even after {budget - 1} epochs"
        return (
            f"{label}: from {n} epochs on (a uniform stop there saves "
            f"{100 * (1 - n / budget):.0f}%; under {BAR:.2f} after {n - 1}, "
            f"{100 * (1 - (n - 1) / budget):.0f}% saved)"
        )

    return (
        f"tau_eps >= {BAR:.2f} at every k up to {budget - 1}: "
        + "; ".join([one("raw", "raw values"), one("regression", "regression")])
        + "."
    )


def _f(v: float) -> str:
    """Two decimals; n/a where tau_eps has no pair to count (all finals within 0.5)."""
    return f"{v:.2f}" if np.isfinite(v) else "n/a"


def main() -> int:
    sets = curve_sets()
    val2000 = DATA / "xfel-curves-val2000"
    for p in sorted(val2000.glob("*epochs.csv")):
        sets[p.name.removesuffix("_epochs.csv") + " (2,000 val.)"] = read_relative(p)
    out = {name: ceiling(c) for name, c in sets.items()}
    lines = [
        "# Ceiling: how much of the final ranking the first k epochs hold",
        "",
        f"Command: `python benchmarks/engine/ceiling.py` on {stamp()}.",
        "",
        "Kendall tau_eps (pairs whose final values differ by >= 0.5 points) and tau of each",
        "model's value after k epochs against its last-epoch value, over the models with a",
        "complete curve (the count in each heading; every model of these sets). Stopping",
        "every model after k epochs saves `saved %` of the budget; an engine saving 40%",
        "stops after 15 epochs on average. The final values' spread (10th / 50th / 90th",
        "percentile) is how far apart the models are at all. `regression tau_eps`: a",
        "least-squares map from the prefix (last value, mean of the last three, best so far,",
        "slope) to the final value, 10-fold cross-validated over the set's models: an",
        "optimistic learned extrapolator, since its folds learn from models that finish",
        "later in the search. n/a: no two models' final values differ by 0.5 points, so",
        "tau_eps has no pair to count.",
        "",
    ]
    for name, res in out.items():
        p10, p50, p90 = res["final_p10_p50_p90"]
        lines += [
            f"## {name} ({res['models']} models, {res['budget']} epochs; finals "
            f"{p10:.1f} / {p50:.1f} / {p90:.1f})",
            "",
            "| epochs trained | saved % | tau_eps | tau | regression tau_eps |",
            "|---:|---:|---:|---:|---:|",
        ]
        lines += [
            f"| {r['epochs_trained']} | {r['saved_pct']:.0f} | {_f(r['tau_eps'])} | "
            f"{_f(r['tau'])} | {_f(r['regression_tau_eps'])} |"
            for r in res["rows"]
        ]
        lines += ["", _holds_line(res), ""]
    md = HERE / "CEILING.md"
    text = "\n".join(lines).rstrip("\n") + "\n" + reading(md)
    (HERE / "CEILING.json").write_text(to_json(out) + "\n")
    md.write_text(text)
    print("\n".join(lines))
    return 0


if __name__ == "__main__":
    sys.exit(main())
