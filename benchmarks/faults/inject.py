"""Fault injection: each fault of the reliability issue, with real `a4nn` processes.

    python benchmarks/faults/inject.py [--work DIR] [--seed S] [--repeats N] [--quick]

Every row runs `a4nn` as a user would (a subprocess, its own process group), injects one
fault, and checks what the user gets: the exit status, the console (one message, no
traceback, no 'Error logging to API'), and for the faults a search survives, that the
run ends (after `--resume` where the fault stopped it) with every model in its tables
and the same results as an uninterrupted reference run: per model its arch, status,
epochs trained and fitness (models.csv), per epoch its validation accuracy and
prediction (epochs.csv), no lineage row twice.

Faults (README.md beside this file says what each injects and expects):
  bad data under the default Prefect runner: a truncated TIFF, an empty folder, a
  missing folder; a download archive escaping its folder (`a4nn fetch` from a local
  Dataverse stand-in); a full disk (the run directory on a small tmpfs, as root; then
  remounted larger and resumed); a file where a checkpoint folder goes; the run's data
  removed under a running search (its workers then killed, so they must reload it);
  two processes on one run; the smaller message items; a Dask worker killed, the whole
  process group killed, a checkpoint corrupted after a kill, and a Ctrl-C (SIGINT to the
  process group, on the default API), at random moments.

The searches are the tests' tiny kind (tests/conftest.py: blob images, 8-channel
NSGA-Net macro models, 6 models of 5 epochs, two CPU workers). Flow runs report to one
Prefect test server started here (PREFECT_API_URL), except the bad-data and Ctrl-C rows,
which use the default (a4nn's own local server), as `a4nn run` would with nothing set.

Writes DIR/results.json and prints the table (Markdown); `--table FILE` writes it too.
"""

from __future__ import annotations

import argparse
import contextlib
import io
import json
import os
import platform
import random
import shutil
import signal
import subprocess
import sys
import tarfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import yaml

REPO = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(REPO))

from tests.conftest import tiny_config_dict  # noqa: E402
from tests.support_flows import write_blobs, write_flow_config  # noqa: E402

NOISE = (
    "Traceback",
    "Error logging to API",
    "| ERROR",
    " - ERROR - ",
    "Crash detected",
    "Encountered exception",
)


# -- processes -----------------------------------------------------------------------------
@dataclass
class Proc:
    """An `a4nn` process started in its own process group; its console goes to a file."""

    popen: subprocess.Popen
    log: Path
    t0: float

    @property
    def pid(self) -> int:
        return self.popen.pid

    def wait(self, timeout: float = 600) -> int:
        try:
            return self.popen.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            self.killpg()
            self.popen.wait(timeout=60)
            return 124
        finally:
            self.killpg()  # nothing of it outlives it (a worker orphaned by a kill)

    def killpg(self) -> None:
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(self.pid, signal.SIGKILL)

    def console(self) -> str:
        return self.log.read_text(errors="replace")


class Bench:
    def __init__(self, work: Path, api: str | None, seed: int):
        self.work = work
        self.api = api
        self.rng = random.Random(seed)
        self.n = 0

    def env(self, api: bool = True) -> dict[str, str]:
        env = {
            **os.environ,
            "DO_NOT_TRACK": "1",
            "PREFECT_SERVER_EPHEMERAL_STARTUP_TIMEOUT_SECONDS": "90",
            "PYTHONUNBUFFERED": "1",
            "PYTHONPATH": str(REPO),  # this checkout, tests.stalling_plugin included
        }
        env.pop("PREFECT_API_URL", None)
        env.pop("PREFECT_LOGGING_LEVEL", None)
        if api and self.api:
            env["PREFECT_API_URL"] = self.api
        return env

    def start(self, *args: str, api: bool = True) -> Proc:
        self.n += 1
        log = self.work / "logs" / f"{self.n:03d}-{args[0]}.log"
        log.parent.mkdir(parents=True, exist_ok=True)
        with open(log, "wb") as fh:
            popen = subprocess.Popen(
                [sys.executable, "-m", "a4nn.cli", *args],
                cwd=REPO,
                env=self.env(api),
                stdout=fh,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )
        return Proc(popen, log, time.monotonic())

    def run(self, *args: str, api: bool = True) -> tuple[int, str]:
        proc = self.start(*args, api=api)
        rc = proc.wait()
        return rc, proc.console()


def noise(text: str) -> list[str]:
    """Console lines a user should not see: tracebacks, Prefect errors, logging errors."""
    return [ln.strip()[:160] for ln in text.splitlines() if any(n in ln for n in NOISE)]


def errors(text: str) -> list[str]:
    return [ln for ln in text.splitlines() if ln.startswith("a4nn: ")]


def workers(pid: int) -> list[Any]:
    import psutil

    try:
        kids = psutil.Process(pid).children(recursive=True)
    except psutil.NoSuchProcess:
        return []
    out = []
    for p in kids:
        with contextlib.suppress(psutil.Error):
            if "spawn_main" in " ".join(p.cmdline()):
                out.append(p)
    return out


# -- run directories -----------------------------------------------------------------------
def checkpointed(out: Path, unfinished_only: bool = True) -> dict[int, Path]:
    """Per model still training: its last checkpoint recorded with a SHA-256."""
    found = {}
    for d in sorted((out / "models").glob("*")):
        meta, ep = d / "model.json", d / "epochs.csv"
        try:
            if unfinished_only and '"result"' in meta.read_text():
                continue
            df = pd.read_csv(ep)
        except (OSError, ValueError, pd.errors.EmptyDataError):
            continue
        done = df[df["checkpoint_sha256"].notna()]
        if len(done):
            found[int(d.name)] = d / str(done["checkpoint"].iloc[-1])
    return found


def finished_models(out: Path) -> int:
    return sum('"result"' in p.read_text() for p in (out / "models").glob("*/model.json"))


def compare(out: Path, ref: Path) -> tuple[bool, str]:
    """Whether `out` finished with every model of `ref` and the same results."""
    try:
        meta = json.loads((out / "run.json").read_text())
        models, epochs = pd.read_csv(out / "models.csv"), pd.read_csv(out / "epochs.csv")
    except (OSError, ValueError) as err:
        return False, f"tables unreadable: {err}"
    rm, re_ = pd.read_csv(ref / "models.csv"), pd.read_csv(ref / "epochs.csv")
    if meta.get("status") != "finished":
        return False, f"status {meta.get('status')}"
    if sorted(models["model_id"]) != sorted(rm["model_id"]):
        return False, f"models {sorted(models['model_id'])} != {sorted(rm['model_id'])}"
    if epochs.duplicated(["model_id", "epoch"]).any():
        return False, "an epoch row twice"
    a, b = models.set_index("model_id").sort_index(), rm.set_index("model_id").sort_index()
    for col in ("arch", "status", "epochs_trained"):
        if not a[col].equals(b[col]):
            return False, f"models.csv {col} differs"
    if not np.allclose(a["fitness"], b["fitness"], rtol=1e-6, equal_nan=True):
        return False, "fitness differs"
    key = ["model_id", "epoch"]
    ea, eb = (
        epochs.sort_values(key).reset_index(drop=True),
        re_.sort_values(key).reset_index(drop=True),
    )
    if not ea[key].equals(eb[key]):
        return False, "epochs.csv rows differ"
    for col in ("val_acc", "prediction"):
        if not np.allclose(ea[col], eb[col], rtol=1e-6, equal_nan=True):
            return False, f"epochs.csv {col} differs"
    return True, ""


# -- the rows ------------------------------------------------------------------------------
@dataclass
class Row:
    fault: str
    expect: str
    runs: list[dict[str, Any]] = field(default_factory=list)

    def add(self, ok: bool, statuses: list[int], console: str, note: str = "", **extra: Any):
        self.runs.append(
            {
                "ok": bool(ok),
                "statuses": statuses,
                "noise": noise(console)[:3],
                "note": note,
                **extra,
            }
        )


def write_data(folder: Path) -> Path:
    return write_blobs(folder / "blobs.npz", n_train=320)


def search_config(folder: Path, npz: Path, name: str = "search.yaml") -> Path:
    """6 models (2 + 2 x 2 generations) of up to 5 epochs on two CPU workers."""
    return write_flow_config(folder / name, npz, "faults", epochs=5)


def bad_data(b: Bench, row: Row, kind: str) -> None:
    folder = b.work / f"bad-{kind}"
    imgs = folder / "imgs"
    if kind == "truncated-tiff":
        for split in ("trainset", "testset"):
            (imgs / split).mkdir(parents=True)
            (imgs / split / "xfel_1e15_1n0u_ptm0.tiff").write_bytes(b"II*\x00trunc")
        want = "cannot be read as TIFF"
    elif kind == "empty-folder":
        for split in ("trainset", "testset"):
            (imgs / split).mkdir(parents=True)
        want = "holds no"
    else:
        folder.mkdir(parents=True)
        want = "does not exist"
    cfg = tiny_config_dict(
        folder / "unused.npz",
        data={"source": "folder", "path": str(imgs), "normalize": "none"},
        orchestration={"runner": "prefect"},  # the default runner, on its default API
    )
    path = folder / "cfg.yaml"
    path.write_text(yaml.safe_dump(cfg))
    out = folder / "run"
    rc, console = b.run("run", str(path), "--out", str(out), "--quiet", api=False)
    ok = rc == 2 and len(errors(console)) == 1 and want in console and not noise(console)
    row.add(ok and not (out / "run.json").exists(), [rc], console)


def archive_escape(b: Bench, row: Row, kind: str) -> None:
    from lineage.dataverse import RetryPolicy, publish_bundle
    from lineage.dataverse.metadata import Author, Contact, DatasetMetadata
    from tests.dataverse_standin import DataverseStandin

    meta = DatasetMetadata(
        title="t", authors=[Author("Doe, J")], contacts=[Contact("J", "j@example.org")],
        description="d",
    )  # fmt: skip
    folder = b.work / f"escape-{kind}"
    bundle = folder / "bundle"
    bundle.mkdir(parents=True)
    buf = io.BytesIO()
    if kind == "tar":
        with tarfile.open(fileobj=buf, mode="w") as tf:
            info = tarfile.TarInfo("../../evil.txt")
            info.size = 4
            tf.addfile(info, io.BytesIO(b"evil"))
        (bundle / "ckpts.tar").write_bytes(buf.getvalue())
    else:
        import zipfile

        with zipfile.ZipFile(buf, "w") as zf:
            zf.writestr("../../evil.txt", b"evil")
        (bundle / "ckpts.zip").write_bytes(buf.getvalue())
    with DataverseStandin(tokens={"tok": "@admin"}, collections=("a4nn",), seed=1) as dv:
        rep = publish_bundle(
            bundle, server=dv.url, collection="a4nn", metadata=meta, token="tok",
            release="major", retry=RetryPolicy(attempts=2, backoff=0.01, timeout=5.0),
            progress=False,
        )  # fmt: skip
        out = folder / "a" / "b" / "out"
        rc, console = b.run("fetch", rep.persistent_id, "--server", dv.url, "--out", str(out))
    escaped = [str(p) for p in b.work.rglob("evil*")]
    ok = rc == 2 and len(errors(console)) == 1 and not noise(console) and not escaped
    row.add(ok, [rc], console, note="escaped: " + ", ".join(escaped) if escaped else "")


def message_item(b: Bench, row: Row, item: str, ref_cfg: Path, ref: Path) -> None:
    folder = b.work / f"msg-{item}"
    folder.mkdir(parents=True)
    api = False
    if item == "binary config":
        cfg = folder / "model.pt"
        cfg.write_bytes(bytes(range(256)) * 4)
        args, want = ["run", str(cfg), "--out", str(folder / "o")], "is not a text file"
    elif item == "binary curves (engine replay)":
        curves = folder / "curves.csv"
        curves.write_bytes(bytes(range(256)) * 4)
        args, want = ["engine", "replay", str(curves)], "is not a text CSV file"
    elif item == "--out under a file":
        (folder / "file").write_text("x")
        args, want = ["run", str(ref_cfg), "--out", str(folder / "file" / "run")], "file"
    elif item == "--resume without a run":
        args, want = ["run", str(ref_cfg), "--out", str(folder / "none"), "--resume"], "no run"
    elif item == "report of a folder without a run":
        args, want = ["report", str(folder)], str(folder)
    elif item == "resume with another config (found in the flow)":
        out = folder / "run"
        shutil.copytree(ref, out)
        other = search_config(folder, Path(yaml.safe_load(ref_cfg.read_text())["data"]["path"]))
        cfg = yaml.safe_load(other.read_text())
        cfg["train"]["epochs"] = 9
        other.write_text(yaml.safe_dump(cfg))
        args, want = ["run", str(other), "--out", str(out), "--resume", "--quiet"], "train.epochs"
        api = True
    else:  # a broken adapter (found in the flow)
        cfg = yaml.safe_load(ref_cfg.read_text())
        cfg.update(
            plugins=["tests.stalling_plugin"],
            search={**cfg["search"], "adapter": "nsganet-stalling"},
        )
        path = folder / "cfg.yaml"
        path.write_text(yaml.safe_dump(cfg))
        args, want = ["run", str(path), "--out", str(folder / "run"), "--quiet"], "proposed no"
        api = True
    rc, console = b.run(*args, api=api)
    ok = rc == 2 and len(errors(console)) == 1 and want in console and not noise(console)
    row.add(ok, [rc], console)


def resume(b: Bench, cfg: Path, out: Path) -> tuple[int, str]:
    return b.run("run", str(cfg), "--out", str(out), "--quiet", "--resume")


def wait_for(pred, proc: Proc, timeout: float = 300) -> bool:
    t_end = time.monotonic() + timeout
    while time.monotonic() < t_end:
        if pred():
            return True
        if proc.popen.poll() is not None:
            return False
        time.sleep(0.05)
    return False


def recorded_checkpoints(out: Path) -> int:
    """Checkpoints recorded (with a SHA-256) so far, over every model."""
    n = 0
    for ep in (out / "models").glob("*/epochs.csv"):
        with contextlib.suppress(OSError, ValueError, pd.errors.EmptyDataError, KeyError):
            n += int(pd.read_csv(ep)["checkpoint_sha256"].notna().sum())
    return n


def random_moment(b: Bench, proc: Proc, out: Path, total_epochs: int) -> str:
    """Wait for a random moment of the search: once k checkpoints are recorded (k drawn
    from the first 80% of the run's epochs) and a model is mid-training, plus up to 1 s.
    By progress, not by the clock: the moment falls inside the search whatever the load."""
    k = b.rng.randint(1, max(1, int(0.8 * total_epochs)))
    extra = b.rng.uniform(0.0, 1.0)
    wait_for(lambda: recorded_checkpoints(out) >= k and bool(checkpointed(out)), proc)
    t_end = time.monotonic() + extra
    while time.monotonic() < t_end and proc.popen.poll() is None:
        time.sleep(0.02)
    return f"after {k} checkpoints + {extra:.2f} s"


def worker_kill(b: Bench, row: Row, cfg: Path, ref: Path, i: int, window: int) -> None:
    out = b.work / f"worker-kill-{i}"
    proc = b.start("run", str(cfg), "--out", str(out), "--quiet")
    at = random_moment(b, proc, out, window)
    ws = workers(proc.pid)
    training = sorted(checkpointed(out))
    landed = bool(ws) and proc.popen.poll() is None
    if landed:
        with contextlib.suppress(Exception):
            b.rng.choice(ws).kill()
    note = f"a worker killed {at}, models {training} mid-training"
    rc = proc.wait()
    console = proc.console()
    equal, why = compare(out, ref)
    if not landed:
        why = "the run ended before the kill (not counted as injected)"
    row.add(landed and rc == 0 and equal and not noise(console), [rc], console, note=why or note)


def group_kill(
    b: Bench, row: Row, cfg: Path, ref: Path, i: int, window: int, corrupt: bool = False
) -> None:
    out = b.work / f"{'corrupt' if corrupt else 'group-kill'}-{i}"
    proc = b.start("run", str(cfg), "--out", str(out), "--quiet")
    at = random_moment(b, proc, out, window)
    if corrupt:  # kill the moment a model mid-training has a checkpoint to corrupt
        wait_for(lambda: bool(checkpointed(out)), proc)
    alive = proc.popen.poll() is None
    proc.killpg()
    rc1 = proc.wait()
    console = proc.console()
    note = f"killed {at}, {finished_models(out)} models done"
    if corrupt:
        ckpts = checkpointed(out)
        if ckpts:
            model, path = b.rng.choice(sorted(ckpts.items()))
            data = bytearray(path.read_bytes())
            for k in range(0, len(data), 97):
                data[k] ^= 0xFF
            path.write_bytes(bytes(data))
            note += f"; corrupted {path.relative_to(out)}"
        else:
            note += "; no checkpoint of an unfinished model to corrupt"
    rc2, console2 = resume(b, cfg, out)
    equal, why = compare(out, ref)
    said = not corrupt or "resuming before epoch" in console2
    if not alive:
        why = "the run ended before the kill (not counted as injected)"
    row.add(
        alive and rc2 == 0 and equal and said and not noise(console + console2),
        [rc1, rc2],
        console + console2,
        note=why or note + ("" if said else "; the corrupt checkpoint was not reported"),
    )


def ctrl_c(b: Bench, row: Row, cfg: Path, ref: Path, i: int, window: int) -> None:
    """SIGINT to the run's process group (a Ctrl-C in its terminal), on the default API
    (a4nn's own local Prefect server): 130 with one line soon, `stopped`; --resume."""
    out = b.work / f"ctrl-c-{i}"
    proc = b.start("run", str(cfg), "--out", str(out), "--quiet", api=False)
    at = random_moment(b, proc, out, window)
    alive = proc.popen.poll() is None
    t0 = time.monotonic()
    with contextlib.suppress(ProcessLookupError):
        os.killpg(proc.pid, signal.SIGINT)
    rc1 = proc.wait()
    seconds = time.monotonic() - t0
    console = proc.console()
    status = None
    with contextlib.suppress(OSError, ValueError):
        status = json.loads((out / "run.json").read_text()).get("status")
    said = len(errors(console)) == 1 and "--resume" in errors(console)[0]
    rc2, console2 = b.run("run", str(cfg), "--out", str(out), "--quiet", "--resume", api=False)
    equal, why = compare(out, ref)
    note = f"SIGINT {at}, exit {seconds:.1f} s later, run.json {status}"
    if not alive:
        why = "the run ended before the signal (not counted as injected)"
    row.add(
        alive and rc1 == 130 and said and status == "stopped" and rc2 == 0 and equal
        and not noise(console + console2),
        [rc1, rc2],
        console + console2,
        note=why or note,
        exit_seconds=round(seconds, 1),
    )  # fmt: skip


def disk_full(b: Bench, row: Row, cfg: Path, ref: Path, i: int, footprint: int) -> None:
    mnt = b.work / f"disk-full-{i}"
    mnt.mkdir()
    size_kb = int(footprint * b.rng.uniform(0.25, 0.75) / 1024)
    r = subprocess.run(
        ["mount", "-t", "tmpfs", "-o", f"size={size_kb}k", "tmpfs", str(mnt)], capture_output=True
    )
    if r.returncode != 0:
        row.add(False, [], "", note=f"cannot mount a tmpfs: {r.stderr.decode().strip()}")
        return
    try:
        out = mnt / "run"
        rc1, console = b.run("run", str(cfg), "--out", str(out), "--quiet")
        meta = {}
        with contextlib.suppress(OSError, ValueError):
            meta = json.loads((out / "run.json").read_text())
        failed = []
        with contextlib.suppress(OSError, ValueError):
            failed = (
                pd.read_csv(out / "models.csv").query("status == 'failed'")["model_id"].tolist()
            )
        note = f"tmpfs of {size_kb} KiB ({size_kb * 1024 / footprint:.0%} of the run); status {meta.get('status')}"
        subprocess.run(["mount", "-o", "remount,size=262144k", str(mnt)], check=True)
        rc2, console2 = resume(b, cfg, out)
        equal, why = compare(out, ref)
        expected_stop = rc1 == 3 and len(errors(console)) == 1 and "fault of the machine" in console
        row.add(
            expected_stop and not failed and rc2 == 0 and equal and not noise(console + console2),
            [rc1, rc2],
            console + console2,
            note=why or note + (f"; failed models {failed}" if failed else ""),
        )
    finally:
        subprocess.run(["umount", "-l", str(mnt)], capture_output=True)


def blocked_checkpoints(b: Bench, row: Row, cfg: Path, ref: Path) -> None:
    out = b.work / "blocked"
    model = b.rng.randrange(0, 6)
    blocked = out / "models" / f"{model:05d}"
    blocked.mkdir(parents=True)
    (blocked / "checkpoints").write_text("")
    rc1, console = b.run("run", str(cfg), "--out", str(out), "--quiet")
    stopped = json.loads((out / "run.json").read_text()).get("status")
    (blocked / "checkpoints").unlink()
    rc2, console2 = resume(b, cfg, out)
    equal, why = compare(out, ref)
    ok = rc1 == 3 and f"model {model} could not be recorded" in console and stopped == "stopped"
    row.add(
        ok and rc2 == 0 and equal and not noise(console + console2),
        [rc1, rc2],
        console + console2,
        note=why or f"a file at models/{model:05d}/checkpoints",
    )


def data_removed(b: Bench, row: Row, cfg: Path, ref: Path, window: int) -> None:
    """The run's data deleted under a running search, then every worker killed: the
    workers Dask restarts cannot load it. The search must stop with the data's message
    (status 2, no model failed), and resume once the data is back."""
    folder = b.work / "data-removed"
    npz = write_data(folder)
    own = search_config(folder, npz)
    out = folder / "run"
    proc = b.start("run", str(own), "--out", str(out), "--quiet")
    at = random_moment(b, proc, out, window)
    hidden = npz.with_suffix(".hidden")
    npz.rename(hidden)
    for w in workers(proc.pid):
        with contextlib.suppress(Exception):
            w.kill()
    rc1 = proc.wait()
    console = proc.console()
    hidden.rename(npz)
    failed = []
    with contextlib.suppress(OSError, ValueError):
        failed = pd.read_csv(out / "models.csv").query("status == 'failed'")["model_id"].tolist()
    rc2, console2 = resume(b, own, out)
    equal, why = compare(out, ref)
    stop_ok = rc1 == 2 and "could not load the run's data" in console
    note = f"data removed and every worker killed {at}"
    if rc1 == 0:
        note += "; the run finished without reloading the data"
    row.add(
        (stop_ok or rc1 == 0)
        and not failed
        and rc2 == 0
        and equal
        and not noise(console + console2),
        [rc1, rc2],
        console + console2,
        note=why or note + (f"; failed models {failed}" if failed else ""),
    )


def two_processes(b: Bench, row: Row, cfg: Path, ref: Path) -> None:
    out = b.work / "two"
    first = b.start("run", str(cfg), "--out", str(out), "--quiet")
    wait_for(lambda: (out / "run.json").exists(), first)
    rc2, console2 = b.run("run", str(cfg), "--out", str(out), "--quiet", "--resume")
    rc1 = first.wait()
    console1 = first.console()
    equal, why = compare(out, ref)
    refused = (
        rc2 == 2 and len(errors(console2)) == 1 and "is in use by another a4nn run" in console2
    )
    row.add(
        refused and rc1 == 0 and equal and not noise(console1 + console2),
        [rc1, rc2],
        console1 + console2,
        note=why or "the second (`--resume` on the same --out) started once the first had",
    )


# -- main ------------------------------------------------------------------------------------
def du(path: Path) -> int:
    return sum(p.stat().st_size for p in path.rglob("*") if p.is_file())


def table(rows: list[Row]) -> str:
    lines = [
        "| fault | expected | runs | as expected (complete, equal to the reference) | exit statuses | console noise |",
        "|---|---|---:|---:|---|---|",
    ]
    for r in rows:
        statuses = ", ".join("→".join(str(s) for s in run["statuses"]) for run in r.runs)
        noisy = sum(bool(run["noise"]) for run in r.runs)
        lines.append(
            f"| {r.fault} | {r.expect} | {len(r.runs)} | {sum(run['ok'] for run in r.runs)} "
            f"| {statuses} | {noisy or 'none'} |"
        )
    return "\n".join(lines)


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--work", type=Path, default=Path(f"/tmp/a4nn-faults-{os.getpid()}"))
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--repeats", type=int, default=3, help="runs per kill fault")
    p.add_argument("--quick", action="store_true", help="one run per fault")
    p.add_argument("--table", type=Path, help="also write the Markdown table here")
    args = p.parse_args()
    reps = 1 if args.quick else args.repeats
    work = args.work
    work.mkdir(parents=True, exist_ok=True)
    os.environ.setdefault("PREFECT_SERVER_ANALYTICS_ENABLED", "false")
    os.environ.setdefault("DO_NOT_TRACK", "1")
    from prefect.settings import PREFECT_API_URL
    from prefect.testing.utilities import prefect_test_harness

    rows: list[Row] = []
    t_all = time.monotonic()
    with prefect_test_harness(server_startup_timeout=90):
        b = Bench(work, PREFECT_API_URL.value(), args.seed)
        npz = write_data(work / "data")
        cfg = search_config(work, npz)
        ref = work / "reference"
        t0 = time.monotonic()
        rc, console = b.run("run", str(cfg), "--out", str(ref), "--quiet")
        ref_seconds = time.monotonic() - t0
        if rc != 0:
            print(console[-3000:])
            return 1
        window = int(pd.read_csv(ref / "models.csv")["epochs_trained"].sum())  # its epochs
        footprint = du(ref)
        print(f"reference: {ref_seconds:.0f} s, {footprint / 1024:.0f} KiB, {window} epochs")

        def section(fault: str, expect: str) -> Row:
            rows.append(Row(fault, expect))
            print(f"[{time.monotonic() - t_all:5.0f} s] {fault}", flush=True)
            return rows[-1]

        for kind in ("truncated-tiff", "empty-folder", "missing-folder"):
            bad_data(
                b,
                section(
                    f"bad data: {kind.replace('-', ' ')} (default Prefect runner)",
                    "2, one message, no run started",
                ),
                kind,
            )
        for kind in ("tar", "zip"):
            archive_escape(
                b,
                section(
                    f"download archive escaping its folder ({kind})",
                    "2, one message, nothing written outside",
                ),
                kind,
            )
        row = section("smaller message items", "2, one message naming it")
        for item in (
            "binary config",
            "binary curves (engine replay)",
            "--out under a file",
            "--resume without a run",
            "report of a folder without a run",
            "resume with another config (found in the flow)",
            "broken adapter (found in the flow)",
        ):
            message_item(b, row, item, cfg, ref)
            row.runs[-1]["item"] = item
        two_processes(
            b, section("two processes on one run", "second 2 (in use); first 0, complete"), cfg, ref
        )
        blocked_checkpoints(
            b,
            section(
                "a file where a checkpoint folder goes", "3, no model failed; --resume 0, complete"
            ),
            cfg,
            ref,
        )
        row = section(
            "disk full (run directory on a small tmpfs)",
            "3, no model failed; remount larger, --resume 0, complete",
        )
        for i in range(max(1, reps - 1)):
            disk_full(b, row, cfg, ref, i, footprint)
        data_removed(
            b,
            section(
                "data removed under a running search (+ its workers killed)",
                "2 (data) or 0, no model failed; --resume 0, complete",
            ),
            cfg,
            ref,
            window,
        )
        row = section(
            "a Dask worker killed (SIGKILL) at a random moment",
            "0, complete (the task reruns from its checkpoint)",
        )
        for i in range(reps):
            worker_kill(b, row, cfg, ref, i, window)
        row = section(
            "the process group killed (SIGKILL) at a random moment", "-9; --resume 0, complete"
        )
        for i in range(reps):
            group_kill(b, row, cfg, ref, i, window)
        row = section(
            "corrupt checkpoint after a group kill", "-9; --resume 0 (says it goes back), complete"
        )
        for i in range(max(1, reps - 1)):
            group_kill(b, row, cfg, ref, i, window, corrupt=True)
        row = section(
            "Ctrl-C (SIGINT to the process group, default Prefect API) at a random moment",
            "130, one line, stopped, soon; --resume 0, complete",
        )
        for i in range(max(1, reps - 1)):
            ctrl_c(b, row, cfg, ref, i, window)
    total = time.monotonic() - t_all
    md = table(rows)
    print()
    print(md)
    print(f"\ntotal {total / 60:.1f} min")
    result = {
        "machine": {
            "host": platform.node(),
            "cpus": os.cpu_count(),
            "python": platform.python_version(),
            "load_at_end": os.getloadavg(),
        },
        "command": " ".join(sys.argv),
        "seed": args.seed,
        "reference_seconds": ref_seconds,
        "total_seconds": total,
        "rows": [{"fault": r.fault, "expect": r.expect, "runs": r.runs} for r in rows],
    }
    (work / "results.json").write_text(json.dumps(result, indent=2, default=str))
    if args.table:
        args.table.write_text(md + "\n")
    print(f"details: {work / 'results.json'}, consoles: {work / 'logs'}")
    return 0 if all(run["ok"] for r in rows for run in r.runs) else 1


if __name__ == "__main__":
    sys.exit(main())
