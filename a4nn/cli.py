"""The `a4nn` command line; these commands and options are the user-facing contract.

    a4nn run CONFIG [--out DIR] [--resume]
    a4nn data xfel --out DIR [--intensity 1e14|1e15|1e16] [--n-train N] [--n-test N] [--seed S]
    a4nn engine replay CURVES [--preset paper|default] [--config ENGINE.yaml] [--json]
                       [--sweep [KNOB] [--values V,V,...]] [--seed CURVES]
    a4nn simulate CONFIG --curves CURVES --gpus N [--times CURVES] [--out DIR] [--json FILE]
    a4nn publish RUN_DIR --server URL --collection ALIAS
    a4nn fetch DOI --server URL --out DIR
    a4nn report RUN_DIR [--compare RUN_DIR ...] [--out FILE.html]

User errors (bad config, missing files, bad values) print one clear message and exit 2;
no traceback.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import sys
from pathlib import Path

from a4nn.faults import UserError  # raised by the commands below; defined with the others

os.environ.setdefault("DO_NOT_TRACK", "1")


EMBEDDED_CONFIGS = ("quickstart", "paper")


def _cmd_run(args: argparse.Namespace) -> int:
    from a4nn.config import embedded_config_path, load_config

    config_path = Path(args.config)
    if not config_path.exists() and args.config in EMBEDDED_CONFIGS:
        cfg = load_config(embedded_config_path(args.config), base=Path.cwd())
    else:
        cfg = load_config(config_path)
    out = Path(args.out) if args.out else Path("runs") / cfg.name
    if args.resume and not (out / "run.json").exists():
        raise UserError(f"--resume: {out} holds no run to resume (no run.json)")
    from lineage.run_lock import RunLock

    RunLock(out).acquire().release()  # another run in `out`: refused before anything starts
    print(f"A4NN search '{cfg.name}' -> {out}" + (" (resuming)" if args.resume else ""))

    from a4nn.progress import ProgressReporter
    from a4nn.search import run_search_local

    if cfg.orchestration.runner == "prefect":  # Prefect flow on Dask (flows/)
        from flows.search_flow import run_search_flow

        run_search_flow(cfg, out, resume=args.resume)
    else:  # orchestration.runner: plain -- one model at a time in this process
        reporter = ProgressReporter(cfg.train.epochs, per_epoch=not args.quiet)
        run_search_local(cfg, out, resume=args.resume, reporter=reporter)
    from a4nn.summary import format_summary, summarize  # pandas: not needed to start

    print()
    print(format_summary(summarize(out)))
    return 0


def _cmd_data_xfel(args: argparse.Namespace) -> int:
    from a4nn.data.xfel import simulate_dataset

    out = simulate_dataset(
        Path(args.out),
        intensity=args.intensity,
        n_train=args.n_train,
        n_test=args.n_test,
        seed=args.seed,
        pdb_files=tuple(Path(p) for p in args.pdb) if args.pdb else None,
    )
    print(f"wrote simulated XFEL dataset to {out}")
    return 0


def _cmd_engine_replay(args: argparse.Namespace) -> int:
    from engine import Engine
    from engine.replay import format_report, format_sweep, read_curves, replay, sweep

    if args.config:
        engine = Engine.from_yaml(Path(args.config))
    else:
        engine = Engine.from_preset(args.preset)
    if args.seed:
        engine = Engine.from_config(engine.config, prior_seed=str(args.seed))
    try:
        curves = read_curves(Path(args.curves))
        if args.sweep is not None:
            values = [float(v) for v in args.values.split(",")] if args.values else None
            try:
                report = sweep(curves, engine.config, args.sweep or None, values)
            except ValueError as e:
                raise UserError(f"engine replay --sweep: {e}") from None
            if args.json:
                print(json.dumps(_strict_json(report), indent=2, allow_nan=False))
            else:
                print(format_sweep(report))
            return 0
        report = replay(curves, engine.config)
    except UnicodeDecodeError:
        raise UserError(
            f"{args.curves} is not a text CSV file (it does not decode as UTF-8); give an "
            "A4NN commons CSV or a run directory"
        ) from None
    if args.json:  # strict JSON: an undefined metric (NaN) is null
        print(json.dumps(_strict_json(report), indent=2, allow_nan=False))
    else:
        print(format_report(report))
    return 0


def _cmd_simulate(args: argparse.Namespace) -> int:
    from a4nn.config import embedded_config_path, load_config
    from a4nn.simulate import format_simulation, load_curves, simulate

    if args.gpus < 1:
        raise UserError(f"--gpus must be >= 1, got {args.gpus}")
    config_path = Path(args.config)
    if not config_path.exists() and args.config in EMBEDDED_CONFIGS:
        cfg = load_config(embedded_config_path(args.config), base=Path.cwd())
    else:
        cfg = load_config(config_path)
    curves = load_curves(
        args.curves,
        times=args.times,
        epoch_seconds=args.epoch_seconds,
        synthetic=args.synthetic,
        seed=args.seed,
        noise=args.noise,
    )
    out = Path(args.out) if args.out else Path("runs") / f"{cfg.name}-simulated"

    def progress(done: int, total: int) -> None:
        step = max(1, total // 10)
        if not args.quiet and total and (done % step == 0 or done == total):
            print(f"  {done}/{total} models", flush=True)

    print(f"A4NN simulated search '{cfg.name}' on {args.gpus} virtual GPUs -> {out}")
    sim = simulate(
        cfg,
        curves,
        args.gpus,
        out,
        cost=args.cost,
        memo=not args.no_memo,
        save_state=args.save_state,
        progress=progress,
    )
    print(format_simulation(sim))
    if args.json:
        Path(args.json).write_text(json.dumps(_strict_json(sim.to_dict()), indent=2) + "\n")
    return 0


def _strict_json(value: object) -> object:
    """`value` with NaN and infinities as null (JSON has no such numbers)."""
    if isinstance(value, float):
        return value if math.isfinite(value) else None
    if isinstance(value, dict):
        return {k: _strict_json(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_strict_json(v) for v in value]
    return value


def _cmd_report(args: argparse.Namespace) -> int:
    from analyzer import AnalyzerError, load
    from analyzer.report import text_summary, write_report

    sources = [Path(args.run_dir), *(Path(p) for p in args.compare or [])]
    try:
        tables = load(*sources)
    except (AnalyzerError, KeyError) as err:
        raise UserError(str(err)) from None
    src = sources[0]
    default = src / "report.html" if src.is_dir() else Path(f"{src.stem}.report.html")
    out = Path(args.out) if args.out else default
    if not args.quiet:
        print(text_summary(tables))
    write_report(tables, out)
    print(f"Report: {out.resolve()}")
    return 0


EXIT_REMOTE = 4
"""publish/fetch: the Dataverse server or the network failed (outage, timeouts, a download
that does not match its checksum) after every retry; nothing is lost, run it again later."""


def _remote_failure(err: Exception) -> int:
    print(f"a4nn: error: the server or the network failed: {err}", file=sys.stderr)
    return EXIT_REMOTE


def _cmd_publish(args: argparse.Namespace) -> int:
    from flows.dataverse_secret import dataverse_token
    from lineage.dataverse import ChecksumError, DataverseUnavailableError
    from lineage.publish_run import publish_run

    # The token ($DATAVERSE_API_TOKEN, else the Prefect Secret block of a configured Prefect
    # server) is looked up after the metadata check and before the bundle is assembled: a
    # missing one is reported first, and no Prefect server is started to look for it.
    try:
        report = publish_run(
            Path(args.run_dir),
            server=args.server,
            collection=args.collection,
            metadata_file=Path(args.metadata) if args.metadata else None,
            release=args.release,
            checkpoints=args.checkpoints,
            token=dataverse_token,
        )
    except (DataverseUnavailableError, ChecksumError) as err:
        return _remote_failure(err)
    counts = (
        f"{len(report.uploaded)} uploaded, {len(report.replaced)} replaced, "
        f"{len(report.skipped)} already there"
    )
    if report.draft:
        print(f"uploaded to {report.persistent_id}, {report.status_text()}: {counts}")
        print(f"  {report.dataset_url}")
        print("  release it with --release major (or minor), or in the Dataverse web page")
    else:
        print(f"published {report.persistent_id}, {report.status_text()}: {counts}")
        print(f"  {report.dataset_url}")
    return 0


def _cmd_fetch(args: argparse.Namespace) -> int:
    from lineage.dataverse import ChecksumError, DataverseUnavailableError
    from lineage.dataverse.fetch import fetch_dataset

    try:
        out = fetch_dataset(args.doi, server=args.server, out=Path(args.out))
    except (DataverseUnavailableError, ChecksumError) as err:
        return _remote_failure(err)
    print(f"downloaded {args.doi} to {out}")
    return 0


def _intensity(value: str) -> float:
    try:
        v = float(value)
    except ValueError:
        raise argparse.ArgumentTypeError(
            f"intensity must be a number such as 1e14, 1e15 or 1e16, got {value!r}"
        ) from None
    if not v > 0:
        raise argparse.ArgumentTypeError(f"intensity must be positive, got {value!r}")
    return v


def _search_choices() -> str:
    """The adapters and spaces `search.adapter` / `search.space` may name (installed ones)."""
    from a4nn.registry import available_adapters, available_spaces

    return (
        f"NAS adapters (search.adapter): {', '.join(available_adapters())}\n"
        f"search spaces (search.space): {', '.join(available_spaces())}\n"
        "plus those a config's `plugins:` modules register (docs/plugins.md)"
    )


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="a4nn",
        description="A4NN: neural architecture search with in-situ learning-curve prediction.",
    )
    sub = p.add_subparsers(dest="command", required=True)

    run = sub.add_parser(
        "run",
        help="run a search from a YAML config",
        epilog=_search_choices(),
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    run.add_argument("config", help="config YAML (or 'quickstart' / 'paper' for the embedded ones)")
    run.add_argument("--out", help="run directory (default: runs/<name>)")
    run.add_argument("--resume", action="store_true", help="continue the run in --out")
    run.add_argument("--quiet", action="store_true", help="one line per model, not per epoch")
    run.set_defaults(func=_cmd_run)

    data = sub.add_parser("data", help="datasets").add_subparsers(dest="data_cmd", required=True)
    xfel = data.add_parser("xfel", help="simulate XFEL diffraction images of two conformations")
    xfel.add_argument("--out", required=True)
    xfel.add_argument("--intensity", type=_intensity, default=1e15, help="photons/um^2/pulse")
    xfel.add_argument("--n-train", type=int, default=800)
    xfel.add_argument("--n-test", type=int, default=200)
    xfel.add_argument("--seed", type=int, default=0)
    xfel.add_argument("--pdb", nargs=2, metavar=("PDB_A", "PDB_B"), help="two conformations")
    xfel.set_defaults(func=_cmd_data_xfel)

    eng = sub.add_parser("engine", help="prediction engine").add_subparsers(
        dest="engine_cmd", required=True
    )
    rep = eng.add_parser("replay", help="replay recorded learning curves through the engine")
    rep.add_argument("curves", help="A4NN commons CSV, or a run directory of ours")
    rep.add_argument("--preset", default="paper", help="paper | default | off")
    rep.add_argument("--config", help="engine YAML (overrides --preset)")
    rep.add_argument("--json", action="store_true", help="print the report as JSON")
    rep.add_argument(
        "--sweep",
        nargs="?",
        const="",
        metavar="KNOB",
        help="replay once per value of KNOB (default: the preset's main knob) and print the "
        "saving against tau_eps and MAE: the trade-off frontier",
    )
    rep.add_argument("--values", help="comma-separated values for --sweep")
    rep.add_argument("--seed", help="seed the prior with earlier curves (commons CSV or run)")
    rep.set_defaults(func=_cmd_engine_replay)

    sim = sub.add_parser(
        "simulate",
        help="replay a search on N virtual GPUs from recorded learning curves (docs/simulate.md)",
    )
    sim.add_argument("config", help="config YAML (or 'quickstart' / 'paper')")
    sim.add_argument(
        "--curves", required=True, help="A4NN commons CSV, a run's epochs.csv or a run directory"
    )
    sim.add_argument("--gpus", type=int, required=True, help="virtual GPUs (slots)")
    sim.add_argument("--times", help="take epoch times from this recording (same formats)")
    sim.add_argument("--epoch-seconds", type=float, help="constant epoch time when none recorded")
    sim.add_argument("--synthetic", type=int, help="resample the curves into this many, with noise")
    sim.add_argument("--noise", type=float, default=0.5, help="synthetic: accuracy noise, points")
    sim.add_argument("--seed", type=int, default=0, help="synthetic: random seed")
    sim.add_argument("--cost", default="auto", choices=["auto", "recorded", "space"])
    sim.add_argument("--save-state", default="every", choices=["every", "final"])
    sim.add_argument("--no-memo", action="store_true", help="replay every model's engine")
    sim.add_argument("--out", help="run directory (default: runs/<name>-simulated)")
    sim.add_argument("--json", help="also write the report as JSON to this file")
    sim.add_argument("--quiet", action="store_true", help="no progress lines")
    sim.set_defaults(func=_cmd_simulate)

    pub = sub.add_parser("publish", help="publish a run to a Dataverse collection")
    pub.add_argument("run_dir")
    pub.add_argument("--server", required=True)
    pub.add_argument("--collection", required=True)
    pub.add_argument("--release", choices=["major", "minor"], help="also publish a version")
    pub.add_argument("--metadata", help="dataset metadata YAML (default RUN_DIR/dataverse.yaml)")
    pub.add_argument("--checkpoints", action="store_true", help="include every checkpoint")
    pub.set_defaults(func=_cmd_publish)

    fetch = sub.add_parser("fetch", help="download a dataset from a Dataverse server")
    fetch.add_argument("doi")
    fetch.add_argument("--server", required=True)
    fetch.add_argument("--out", required=True)
    fetch.set_defaults(func=_cmd_fetch)

    report = sub.add_parser(
        "report", help="summarise runs and write one self-contained HTML report"
    )
    report.add_argument("run_dir", help="run directory, commons download or A4NN commons CSV")
    report.add_argument("--compare", nargs="+", metavar="RUN_DIR", help="more runs shown beside it")
    report.add_argument("--out", help="HTML file (default: RUN_DIR/report.html)")
    report.add_argument("--quiet", action="store_true", help="print only the report's path")
    report.set_defaults(func=_cmd_report)
    return p


def _user_errors() -> tuple[type[BaseException], ...]:
    """Exceptions whose message is the whole story: printed without a traceback."""
    from a4nn.faults import user_errors

    return user_errors()


EXIT_USER_ERROR = 2
"""A bad config, input file, value or folder: the message names it."""
EXIT_INFRASTRUCTURE = 3
"""The machine failed (disk, permissions, lost workers): `--resume` continues once fixed."""


def main(argv: list[str] | None = None) -> int:
    from a4nn.faults import is_machine_fault

    args = build_parser().parse_args(argv)
    try:
        return int(args.func(args) or 0)
    except _user_errors() as err:
        if os.environ.get("A4NN_DEBUG"):
            raise
        print(f"a4nn: error: {err}", file=sys.stderr)
        return EXIT_USER_ERROR
    except Exception as err:  # a machine's fault (InfrastructureError, a full disk): 3
        if os.environ.get("A4NN_DEBUG") or not is_machine_fault(err):
            raise  # anything else is a bug: its traceback is the report
        print(f"a4nn: stopped by a fault of the machine, not of a model: {err}", file=sys.stderr)
        return EXIT_INFRASTRUCTURE
    except KeyboardInterrupt:
        print(
            "a4nn: interrupted; resume with `a4nn run CONFIG --out DIR --resume`", file=sys.stderr
        )
        return 130


def entry() -> None:
    """The `a4nn` command."""
    sys.exit(main())


if __name__ == "__main__":
    entry()
