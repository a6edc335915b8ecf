"""Issue 21, item 4: the frontier of `default`'s main knob on each curve set.

`a4nn engine replay CURVES --preset default --sweep` for every curve set of curve_sets.py:
the epochs saved against tau_eps and MAE for each value of the preset's main knob (delta,
the tolerance, for `default`), so that a user picks the trade-off for their budget; `*`
marks the preset's own value. Writes FRONTIER.md (a hand-written `## Reading` section is
kept). Run:
    python benchmarks/engine/frontier.py [--sets a4nn-1e15 ...] [--knob tolerance_scale
        --tolerance pool_spread]
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
sys.path.insert(0, str(HERE.parents[1]))

from curve_sets import budget_of, curve_sets, reading, stamp  # noqa: E402

from engine import Engine  # noqa: E402
from engine.replay import format_sweep, sweep  # noqa: E402


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--sets", nargs="+")
    ap.add_argument("--knob")
    ap.add_argument("--tolerance", help="the tolerance to sweep (default: the preset's)")
    ap.add_argument("--out", default=str(HERE / "FRONTIER.md"))
    args = ap.parse_args()
    sets = curve_sets()
    lines = [
        "# The trade-off frontier of `default`",
        "",
        "Command: `python benchmarks/engine/frontier.py "
        + " ".join(sys.argv[1:])
        + f"` on {stamp()} (each block is what `a4nn engine replay CURVES --preset default --sweep` "
        "prints). `*`: the preset's value; frontier: no other value saves as much with a "
        "tau_eps and MAE as good.",
        "",
    ]
    for name, curves in sets.items():
        if args.sets and name not in args.sets:
            continue
        over = {"e_pred": budget_of(curves)}
        if args.tolerance:
            over["tolerance"] = args.tolerance
        cfg = Engine.from_preset("default", **over).config
        text = format_sweep(sweep(curves, cfg, args.knob))
        print(f"## {name}\n{text}\n", flush=True)
        lines += [f"## {name}", "", "```", text, "```", ""]
    out = Path(args.out)
    out.write_text("\n".join(lines).rstrip("\n") + "\n" + reading(out))
    return 0


if __name__ == "__main__":
    sys.exit(main())
