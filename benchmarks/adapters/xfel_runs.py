"""One short real search per adapter on simulated XFEL data, with the `default` engine.

Issue 17's last benchmark item. Runs `a4nn run CONFIG --out DIR --quiet` for each config
in benchmarks/adapters/xfel/ (nsganet, ppo, evolution, random: the embedded quickstart's
data, training, budget of 14 models and Prefect/Dask runner, only the search section and
the engine changed; checked below), then tabulates every run directory with the
analyzer (`analyzer.summary`: models, models stopped early, epochs trained of the
budget and % saved, best validation accuracy and its model, wall time; and
`analyzer.whatif`: the recorded curves replayed through the default and paper engines):

    PYTHONPATH=$PWD nice -n 19 .venv/bin/python benchmarks/adapters/xfel_runs.py

Options: `--out-root` (default runs/adapters-xfel; one folder per adapter), `--adapters`
(a subset), `--tabulate-only` (read the run directories, run nothing), `--json` (where
the numbers go; default benchmarks/adapters/XFEL_RUNS.json). A run directory holding a
finished run is tabulated as it is; one holding an unfinished run is resumed; delete it
to start afresh. The simulated data are generated once into the repository's data/.
Prefect's temporary API keeps its database in OUT_ROOT/prefect-home (unless PREFECT_HOME
is set): the machine's ~/.prefect/prefect.db, if a newer Prefect has migrated it, cannot
be opened by this one.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import platform
import shutil
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import yaml

REPO = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(REPO))

from a4nn.config import embedded_config_path  # noqa: E402
from analyzer import load_run, summary  # noqa: E402

HERE = Path(__file__).resolve().parent
CONFIGS = HERE / "xfel"
ADAPTERS = ("nsganet", "ppo", "evolution", "random")
# what a config may change against the embedded quickstart
MAY_DIFFER = {"name", "search", "engine", "data.cache_dir"}
REPLAYED = ("default", "paper")  # engine presets the recorded curves are replayed through


def flatten(d: dict[str, Any], prefix: str = "") -> dict[str, Any]:
    out: dict[str, Any] = {}
    for k, v in d.items():
        key = f"{prefix}{k}"
        if isinstance(v, dict) and v and key not in MAY_DIFFER:
            out.update(flatten(v, key + "."))
        else:
            out[key] = v
    return out


def check_config(path: Path) -> dict[str, Any]:
    """The config, after checking it is the quickstart's but for MAY_DIFFER, and that its
    engine is the `default` preset."""
    cfg = yaml.safe_load(path.read_text())
    quick = flatten(yaml.safe_load(embedded_config_path("quickstart").read_text()))
    mine = flatten(cfg)
    diff = sorted(
        k for k in set(quick) | set(mine) if k not in MAY_DIFFER and quick.get(k) != mine.get(k)
    )
    if diff:
        raise SystemExit(f"{path}: differs from the quickstart in {diff}, not only the search")
    if cfg.get("engine") != {"preset": "default"}:
        raise SystemExit(f"{path}: engine must be {{preset: default}}, got {cfg.get('engine')}")
    return cfg


def a4nn_command() -> list[str]:
    exe = Path(sys.executable).with_name("a4nn")
    if exe.exists():
        return [str(exe)]
    found = shutil.which("a4nn")
    if found:
        return [found]
    return [sys.executable, "-c", "import sys; from a4nn.cli import entry; sys.exit(entry())"]


def status(run_dir: Path) -> str | None:
    meta = run_dir / "run.json"
    return json.loads(meta.read_text()).get("status") if meta.exists() else None


def run_one(adapter: str, out: Path) -> dict[str, Any]:
    """Run (or resume) one search; returns how it was run and its command's wall time."""
    config = CONFIGS / f"{adapter}.yaml"
    check_config(config)
    st = status(out)
    if st == "finished":
        print(f"== {adapter}: {out} holds a finished run; tabulating it", flush=True)
        return {"ran": False}
    cmd = [*a4nn_command(), "run", str(config.relative_to(REPO)), "--out", str(out), "--quiet"]
    if st is not None:
        cmd.append("--resume")
    print(f"== {adapter}: {' '.join(cmd)}", flush=True)
    out.parent.mkdir(parents=True, exist_ok=True)
    log = out.parent / f"{adapter}.log"
    env = dict(os.environ, DO_NOT_TRACK="1")
    env.setdefault("PREFECT_SERVER_EPHEMERAL_STARTUP_TIMEOUT_SECONDS", "300")
    # Prefect's database of its own: a ~/.prefect/prefect.db migrated by a newer Prefect
    # (another checkout on the machine) stops the temporary API from starting
    env.setdefault("PREFECT_HOME", str(out.parent / "prefect-home"))
    t0 = time.monotonic()
    with log.open("a") as fh:
        rc = subprocess.run(cmd, cwd=REPO, env=env, stdout=fh, stderr=subprocess.STDOUT).returncode
    seconds = time.monotonic() - t0
    print(f"   exit {rc} after {seconds:.0f} s (log: {log})", flush=True)
    tail = log.read_text().splitlines()[-12:]
    print("\n".join("   | " + line for line in tail), flush=True)
    return {"ran": True, "returncode": rc, "command_seconds": round(seconds, 1), "resumed": st}


def tabulate(adapter: str, out: Path) -> dict[str, Any]:
    t = load_run(out, name=adapter)
    row = summary(t).iloc[0].to_dict()
    meta = t.meta[adapter]
    keep = {
        "adapter": adapter,
        "status": meta.get("status"),
        "models": int(row["models"]),
        "failed": int(row["failed"]),
        "stopped_early": int(row["stopped_early"]),
        "epochs_trained": int(row["epochs_trained"]),
        "epochs_budget": int(row["epochs_budget"]),
        "epochs_saved_pct": round(float(row["epochs_saved_pct"]), 2),
        "best_val_acc": round(float(row["best_val_acc"]), 3),
        "best_model": int(row["best_model"]),
        "training_seconds": round(float(row["training_seconds"]), 1),
        "wall_seconds": round(float(row["run_wall_seconds"]), 1),
        "pareto_size": int(row["pareto_size"]),
        "engine": row.get("engine"),
        "space": row.get("space"),
    }
    m = t.models.set_index("model_id").loc[keep["best_model"]]
    keep["best_model_last_val_acc"] = round(float(m["last_val_acc"]), 3)
    keep["best_model_fitness"] = round(float(m["fitness"]), 3)
    keep["best_model_mflops"] = round(float(m["mflops"]), 3)
    keep["distinct_architectures"] = int(t.models["choices"].nunique())
    # what the engine said: epochs with a prediction, and those by the previous-builds
    # prior (the only source the default preset lets stop a model)
    e = t.epochs
    fam = e["engine_family"].fillna("").astype(str)
    keep["epochs_with_prediction"] = int(e["prediction"].notna().sum())
    keep["epochs_with_prior_prediction"] = int(
        (e["prediction"].notna() & fam.str.contains("previous_builds")).sum()
    )
    keep["pool_r2_by_epoch"] = pool_r2(t)
    # the same curves replayed (analyzer.whatif: exact, every model trained to the budget)
    # through the default engine (a check: it should stop what the run stopped) and the
    # paper's (what the quickstart uses)
    from analyzer.whatif import compare_settings

    whatif = compare_settings(t, list(REPLAYED))
    keep["replay"] = {
        str(r["setting"]): {
            "epochs_saved_pct": round(float(r["epochs_saved_pct"]), 2),
            "models_stopped": int(r["models_stopped"]),
            "mae_stopped": None
            if r["mae_stopped"] != r["mae_stopped"]
            else round(float(r["mae_stopped"]), 3),
            "kendall_tau": round(float(r["kendall_tau"]), 3),
            "regret": round(float(r["regret"]), 3),
            "exact": bool(r["exact"]),
        }
        for _, r in whatif.iterrows()
    }
    return keep


def pool_r2(t: Any) -> list[float]:
    """R^2, at each epoch e, of the regression of every full-budget model's final
    validation accuracy on its level at e (trailing 3-epoch maximum), both as -log(1 - acc),
    as the default engine's previous-builds prior fits it (engine/ensemble.py: it abstains
    below prior_min_r2 = 0.5). Over all the run's models: an upper bound on what the
    engine's growing pool saw."""
    import numpy as np

    m = t.models[t.models["epochs_trained"] >= t.models["budget"]]
    curves = [t.curve(int(i))["val_acc"].to_numpy(float) for i in m["model_id"]]
    if len(curves) < 3:
        return []
    budget = int(m["budget"].iloc[0])
    y = np.array([c[:budget] for c in curves]) / 100.0
    tr = -np.log(np.clip(1.0 - y, 1e-6, None))
    level = np.array(
        [[tr[i, max(0, j - 2) : j + 1].max() for j in range(budget)] for i in range(len(tr))]
    )
    final = tr[:, -1]
    out = []
    for j in range(budget):
        x = level[:, j]
        sxx = ((x - x.mean()) ** 2).sum() + 1e-9
        sxt = ((x - x.mean()) * (final - final.mean())).sum()
        stt = ((final - final.mean()) ** 2).sum()
        out.append(round(float(sxt**2 / (sxx * stt)) if stt > 0 else 0.0, 3))
    return out


def markdown(rows: list[dict[str, Any]]) -> str:
    head = (
        "| adapter | models | stopped early | epochs trained / budget | saved | "
        "best val acc % (model) | its MFLOPs | epochs with a prediction (by the prior) | "
        "wall time s |\n|---|---|---|---|---|---|---|---|---|"
    )
    lines = [head]
    for r in rows:
        lines.append(
            f"| {r['adapter']} | {r['models']} ({r['failed']} failed) | {r['stopped_early']} | "
            f"{r['epochs_trained']} / {r['epochs_budget']} | {r['epochs_saved_pct']:.1f}% | "
            f"{r['best_val_acc']:.2f} ({r['best_model']}) | {r['best_model_mflops']:.3f} | "
            f"{r['epochs_with_prediction']} ({r['epochs_with_prior_prediction']}) | "
            f"{r['wall_seconds']:.0f} |"
        )
    lines += [
        "",
        "| adapter | replayed engine | epochs saved | models stopped | MAE at the stop | "
        "Kendall tau | regret |",
        "|---|---|---|---|---|---|---|",
    ]
    for r in rows:
        for name, w in r["replay"].items():
            mae = "-" if w["mae_stopped"] is None else f"{w['mae_stopped']:.2f}"
            lines.append(
                f"| {r['adapter']} | {name} | {w['epochs_saved_pct']:.1f}% | "
                f"{w['models_stopped']} | {mae} | {w['kendall_tau']:.2f} | {w['regret']:.2f} |"
            )
    return "\n".join(lines)


def machine() -> dict[str, Any]:
    from importlib.metadata import version

    out: dict[str, Any] = {
        "platform": platform.platform(),
        "processor": platform.processor() or platform.machine(),
        "cpus": os.cpu_count(),
        "python": platform.python_version(),
        "niceness": os.nice(0),
        "loadavg": [round(x, 2) for x in os.getloadavg()],
    }
    for pkg in ("torch", "prefect", "distributed"):
        with contextlib.suppress(Exception):  # informative only
            out[pkg] = version(pkg)
    with contextlib.suppress(OSError):
        out["git"] = subprocess.run(
            ["git", "rev-parse", "--short", "HEAD"], cwd=REPO, capture_output=True, text=True
        ).stdout.strip()
    return out


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    ap.add_argument("--out-root", type=Path, default=REPO / "runs" / "adapters-xfel")
    ap.add_argument("--adapters", nargs="+", choices=ADAPTERS, default=list(ADAPTERS))
    ap.add_argument("--tabulate-only", action="store_true")
    ap.add_argument("--json", type=Path, default=HERE / "XFEL_RUNS.json")
    args = ap.parse_args(argv)
    out_root = args.out_root.resolve()
    before = machine()
    runs: dict[str, Any] = {}
    for a in args.adapters:
        check_config(CONFIGS / f"{a}.yaml")
    if not args.tabulate_only:
        for a in args.adapters:
            runs[a] = run_one(a, out_root / a)
    rows, problems = [], []
    for a in args.adapters:
        out = out_root / a
        if status(out) != "finished":
            problems.append(f"{a}: run status {status(out)!r} in {out}")
            continue
        rows.append({**tabulate(a, out), **{"run": runs.get(a, {"ran": False})}})
    table = markdown(rows)
    print(table)
    for p in problems:
        print("NOT FINISHED:", p)
    record = {
        "command": "PYTHONPATH=$PWD nice -n 19 .venv/bin/python benchmarks/adapters/xfel_runs.py",
        "configs": {a: str((CONFIGS / f"{a}.yaml").relative_to(REPO)) for a in args.adapters},
        "machine_at_start": before,
        "loadavg_at_end": [round(x, 2) for x in os.getloadavg()],
        "rows": rows,
        "problems": problems,
        "table_markdown": table,
    }
    args.json.write_text(json.dumps(record, indent=2, default=str) + "\n")
    print(f"numbers: {args.json}")
    return 1 if problems else 0


if __name__ == "__main__":
    raise SystemExit(main())
