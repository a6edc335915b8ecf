"""Search adapters against random search on synthetic landscapes whose optimum is known.

Every adapter (regularized evolution, PPO A2C-like and A3C-like, NSGA-Net) and random
search get the same budget of evaluations on the same landscape, over many seeds. They
are driven by A4NN's own scheduler (`a4nn.scheduler.run_schedule`, in each adapter's
declared mode) with an executor that evaluates the landscape instantly, so the ask/tell
path is the one `a4nn run` uses. Reported: the best fitness found against evaluations
(mean, standard deviation, median over seeds), a one-sided Mann-Whitney U test of each
adapter against random search, and each adapter's own time per proposal (time inside
`ask` and `tell`) and, for PPO, per batch update.

Landscapes: a chain of per-choice scores plus pairwise terms between neighbouring
positions (an NK-like landscape with K=1), random normal tables drawn per seed:

    raw(v) = sum_i a_i[v_i] + coupling * sum_i b_i[v_i, v_(i+1)]
    fitness(v) = 100 * (raw(v) - min raw) / (max raw - min raw)

Its maximum and minimum over the whole space come from dynamic programming along the
chain, so the optimum is exactly 100 (checked against brute force on a small space).
Spaces are built from the `SearchSpace` protocol only: `nt3-like` (choices
5,4,5,5,4,5,9,4,7,9,4,7: 5.7e8 architectures) and `bits-21` (21 binary positions, the
NSGA-Net macro space's shape: 2.1e6).

    python benchmarks/adapters/bench.py [--seeds 20] [--budget 300] [--out benchmarks/adapters]
"""

from __future__ import annotations

import argparse
import itertools
import json
import os
import platform
import sys
import time
from collections import deque
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch
from scipy.stats import mannwhitneyu

REPO = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(REPO))

from a4nn.scheduler import MemorySession, run_schedule  # noqa: E402
from a4nn.space import space_size  # noqa: E402
from a4nn.types import Candidate, Objective, Result  # noqa: E402
from adapters.evolution.algorithm import make_evolution  # noqa: E402
from adapters.nsganet.algorithm import NSGANet  # noqa: E402
from adapters.nsganet.presets import NSGANetSettings  # noqa: E402
from adapters.ppo.algorithm import make_ppo  # noqa: E402
from adapters.random_search.algorithm import make_random  # noqa: E402
from tests.support_spaces import VectorSpace  # noqa: E402

SPACES = {
    "nt3-like": [5, 4, 5, 5, 4, 5, 9, 4, 7, 9, 4, 7],
    "bits-21": [2] * 21,
}
COUPLING = 1.0
LANDSCAPE_SEED = 2000  # PPO's default batch_size was chosen on landscapes 1000..1005
CHECKPOINTS = (10, 25, 50, 100, 150, 200, 300)


# -- the space and the landscape ------------------------------------------------------------
class SyntheticSpace(VectorSpace):
    """The tests' choice-vector space (the architecture is {"v": [...]}), with a unit
    cost, as it is never trained here."""

    def cost(
        self, arch: Any, input_shape: Any, num_classes: int, model: Any = None
    ) -> tuple[float, int]:
        return 1.0, 1


class ChainLandscape:
    """See the module docstring; `fitness(v)` is in [0, 100], 100 at the optimum."""

    def __init__(self, choices: Sequence[int], seed: int, coupling: float = COUPLING) -> None:
        rng = np.random.default_rng(seed)
        self.a = [rng.normal(size=n) for n in choices]
        self.b = [
            coupling * rng.normal(size=(choices[i], choices[i + 1]))
            for i in range(len(choices) - 1)
        ]
        self.top = self._extreme(np.max)
        self.bottom = self._extreme(np.min)

    def _extreme(self, pick: Callable[..., Any]) -> float:
        """max (or min) of raw over the space by dynamic programming along the chain."""
        value = self.a[-1].copy()
        for i in range(len(self.a) - 2, -1, -1):
            value = self.a[i] + pick(self.b[i] + value[None, :], axis=1)
        return float(pick(value))

    def raw(self, v: Sequence[int]) -> float:
        s = sum(float(self.a[i][x]) for i, x in enumerate(v))
        return s + sum(float(self.b[i][v[i], v[i + 1]]) for i in range(len(v) - 1))

    def fitness(self, v: Sequence[int]) -> float:
        return 100.0 * (self.raw(v) - self.bottom) / (self.top - self.bottom)


def check_landscape() -> None:
    """The dynamic programme's optimum is the brute-force one on a small space."""
    choices = [3, 2, 4, 3, 2]
    land = ChainLandscape(choices, 7)
    values = [land.raw(v) for v in itertools.product(*(range(n) for n in choices))]
    assert abs(max(values) - land.top) < 1e-9 and abs(min(values) - land.bottom) < 1e-9


# -- the scheduler's session and an instant executor ----------------------------------------
class Timed:
    """An adapter, unchanged, with the time spent in its `ask` and `tell` summed."""

    def __init__(self, inner: Any) -> None:
        self.inner = inner
        self.ask_s = 0.0
        self.tell_s = 0.0

    def __getattr__(self, attr: str) -> Any:
        return getattr(self.inner, attr)

    def ask(self, n: int | None = None) -> list[Candidate]:
        t = time.perf_counter()
        try:
            return self.inner.ask(n)
        finally:
            self.ask_s += time.perf_counter() - t

    def tell(self, results: list[Result]) -> None:
        t = time.perf_counter()
        try:
            self.inner.tell(results)
        finally:
            self.tell_s += time.perf_counter() - t


class InstantExecutor:
    """`slots` workers that finish first-in first-out, instantly, with the landscape's value."""

    def __init__(self, space: SyntheticSpace, land: ChainLandscape, slots: int) -> None:
        self.space, self.land, self.slots = space, land, slots
        self.queue: deque[Candidate] = deque()

    def submit(self, cand: Candidate, prior_ids: list[int]) -> None:
        self.queue.append(cand)

    def next_result(self) -> tuple[Candidate, Result]:
        cand = self.queue.popleft()
        fit = self.land.fitness(self.space.encode(cand.arch))
        return cand, Result(cand.model_id, fit, 1.0, 1, 1, status="converged")


# -- the adapters ---------------------------------------------------------------------------
def adapters(budget: int) -> dict[str, Callable[[SyntheticSpace, int], Any]]:
    nsga = NSGANetSettings(pop_size=20, n_offspring=20, n_generations=1 + (budget - 20) // 20)
    assert nsga.budget == budget, "the budget must be 20 + a multiple of 20"
    return {
        "random": lambda s, seed: make_random(s, {"max_models": budget}, seed),
        "evolution": lambda s, seed: make_evolution(
            s, {"max_models": budget, "population_size": 20, "sample_size": 5}, seed
        ),
        "ppo-a2c": lambda s, seed: make_ppo(s, {"max_models": budget}, seed),
        "ppo-a3c": lambda s, seed: make_ppo(
            s, {"max_models": budget, "agents": 3, "update": "async"}, seed
        ),
        "nsganet": lambda s, seed: NSGANet(
            s, nsga, seed=seed, objectives=(Objective("fitness", "max"),)
        ),
    }


OPTIONS = {
    "random": "max_models=B (unique: true)",
    "evolution": "max_models=B, population_size=20, sample_size=5 (unique: true)",
    "ppo-a2c": "max_models=B; defaults: batch_size=5, agents=1, update=sync",
    "ppo-a3c": "max_models=B, agents=3, update=async; batch_size=5 (default)",
    "nsganet": "pop_size=20, n_offspring=20, generational, objective fitness only",
}


def run_one(
    name: str, make: Callable, space: SyntheticSpace, land: ChainLandscape, seed: int, slots: int
) -> dict[str, Any]:
    adapter = Timed(make(space, seed))
    session = MemorySession(adapter)  # what run_schedule needs, no run directory
    run_schedule(session, InstantExecutor(space, land, slots))
    fits = [session.done_results[i].fitness for i in session.order]
    out = {
        "best_curve": np.maximum.accumulate(fits).tolist(),
        "models": len(fits),
        "ask_s": adapter.ask_s,
        "tell_s": adapter.tell_s,
    }
    if hasattr(adapter.inner, "update_seconds"):
        out["update_s"] = list(adapter.inner.update_seconds)
    return out


def per_seed(runs: dict[str, list[dict[str, Any]]], budget: int) -> dict[str, Any]:
    """Each seed's best fitness at each checkpoint (rows: seeds), per adapter."""
    ks = [k for k in CHECKPOINTS if k <= budget]
    return {
        "checkpoints": ks,
        **{
            n: [[round(r["best_curve"][k - 1], 4) for k in ks] for r in rs]
            for n, rs in runs.items()
        },
    }


def machine() -> dict[str, Any]:
    cpu = ""
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    return {
        "cpu": cpu,
        "cores": os.cpu_count(),
        "load_average": list(os.getloadavg()),
        "python": platform.python_version(),
        "torch": torch.__version__,
        "torch_threads": torch.get_num_threads(),
        "platform": platform.platform(),
    }


def summarize(runs: dict[str, list[dict[str, Any]]], budget: int) -> dict[str, Any]:
    base = np.array([r["best_curve"][-1] for r in runs["random"]])
    out: dict[str, Any] = {}
    for name, rs in runs.items():
        curves = np.array([r["best_curve"] for r in rs])
        final = curves[:, -1]
        row: dict[str, Any] = {
            "final_mean": float(final.mean()),
            "final_std": float(final.std(ddof=1)),
            "final_median": float(np.median(final)),
            "final_min": float(final.min()),
            "final_max": float(final.max()),
            "optimum_hits": int((final >= 100.0 - 1e-9).sum()),
            "curve": {
                str(k): {
                    "mean": float(curves[:, k - 1].mean()),
                    "std": float(curves[:, k - 1].std(ddof=1)),
                    "median": float(np.median(curves[:, k - 1])),
                }
                for k in CHECKPOINTS
                if k <= budget
            },
        }
        models = sum(r["models"] for r in rs)
        row["ms_per_proposal"] = 1000 * sum(r["ask_s"] + r["tell_s"] for r in rs) / models
        row["ms_ask_per_proposal"] = 1000 * sum(r["ask_s"] for r in rs) / models
        if "update_s" in rs[0]:
            ups = [u for r in rs for u in r["update_s"]]
            row["updates_per_run"] = len(ups) / len(rs)
            row["ms_per_update_mean"] = 1000 * float(np.mean(ups))
            row["ms_per_update_p95"] = 1000 * float(np.percentile(ups, 95))
            row["ms_per_proposal_without_updates"] = (
                1000 * (sum(r["ask_s"] + r["tell_s"] for r in rs) - sum(ups)) / models
            )
        if name != "random":
            u = mannwhitneyu(final, base, alternative="greater")
            row["vs_random"] = {"U": float(u.statistic), "p_greater": float(u.pvalue)}
        out[name] = row
    return out


def markdown(result: dict[str, Any]) -> str:
    lines = []
    for space_name, summary in result["spaces"].items():
        lines.append(f"### {space_name} ({result['space_sizes'][space_name]:.3g} architectures)")
        lines.append("")
        ks = [k for k in CHECKPOINTS if k <= result["budget"]]
        lines.append(
            "| adapter | "
            + " | ".join(f"best @{k}" for k in ks)
            + " | median @B | optimum hit | p vs random (MWU, >) | ms/proposal | ms/update |"
        )
        lines.append("|---" * (len(ks) + 6) + "|")
        for name, row in summary.items():
            cells = [
                f"{row['curve'][str(k)]['mean']:.1f} ± {row['curve'][str(k)]['std']:.1f}"
                for k in ks
            ]
            p = row.get("vs_random", {}).get("p_greater")
            ups = row.get("ms_per_update_mean")
            lines.append(
                f"| {name} | "
                + " | ".join(cells)
                + f" | {row['final_median']:.1f} | {row['optimum_hits']}/{result['seeds']}"
                + f" | {'—' if p is None else f'{p:.2g}'} | {row['ms_per_proposal']:.2f}"
                + f" | {'—' if ups is None else f'{ups:.1f}'} |"
            )
        lines.append("")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--seeds", type=int, default=20)
    p.add_argument("--budget", type=int, default=300)
    p.add_argument("--slots", type=int, default=4, help="workers of the instant executor")
    p.add_argument("--out", type=Path, default=Path(__file__).parent)
    args = p.parse_args(argv)
    check_landscape()
    before = machine()
    t0 = time.perf_counter()
    makers = adapters(args.budget)
    result: dict[str, Any] = {
        "command": " ".join([Path(sys.executable).name, *sys.argv]),
        "machine": before,
        "budget": args.budget,
        "seeds": args.seeds,
        "slots": args.slots,
        "coupling": COUPLING,
        "landscape_seeds": f"{LANDSCAPE_SEED}..{LANDSCAPE_SEED + args.seeds - 1}",
        "options": OPTIONS,
        "space_sizes": {k: space_size(v) for k, v in SPACES.items()},
        "spaces": {},
    }
    for space_name, choices in SPACES.items():
        space = SyntheticSpace(space_name, choices)
        runs: dict[str, list[dict[str, Any]]] = {name: [] for name in makers}
        for seed in range(args.seeds):
            land = ChainLandscape(choices, LANDSCAPE_SEED + seed)  # one per seed, shared
            for name, make in makers.items():
                runs[name].append(run_one(name, make, space, land, seed, args.slots))
            print(f"{space_name} seed {seed} done ({time.perf_counter() - t0:.0f} s)", flush=True)
        result["spaces"][space_name] = summarize(runs, args.budget)
        result.setdefault("best_per_seed", {})[space_name] = per_seed(runs, args.budget)
    result["wall_seconds"] = time.perf_counter() - t0
    result["load_average_after"] = list(os.getloadavg())
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / "RESULTS.json").write_text(json.dumps(result, indent=1))
    table = markdown(result)
    (args.out / "tables.md").write_text(table + "\n")
    print(table)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
