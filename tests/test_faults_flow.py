"""Errors raised inside the Prefect flow reach the user as one message and a status.

A user's error found inside the flow (a config that differs on --resume, a broken
adapter, a run directory in use) exits 2, a fault of the machine exits 3; either way no
Prefect traceback reaches the console and the run directory is not left `running`
(issue: reliability). Real flow runs on a one-worker local Dask cluster, against the
session's Prefect test server (`prefect_api` in conftest.py); the quick tests at the end
check the pieces without Prefect.
"""

from __future__ import annotations

import contextlib
import json
import sqlite3
from pathlib import Path

import pytest
import yaml

from a4nn.cli import main
from tests.conftest import tiny_config_dict, write_blob_npz

ONE_WORKER = {"runner": "prefect", "n_workers": 1, "threads_per_worker": 1}
NOISE = ("Traceback", "Error logging to API", "Encountered exception", "Crash detected")


def _config(folder: Path, **over) -> Path:
    orch = {**ONE_WORKER, **over.pop("orchestration", {})}
    cfg = tiny_config_dict(write_blob_npz(folder), orchestration=orch, **over)
    path = folder / "flow.yaml"
    path.write_text(yaml.safe_dump(cfg))
    return path


REPO = Path(__file__).resolve().parents[1]


def _a4nn_run(api: str, *args: str) -> tuple[int, str]:
    """`a4nn run ARGS` in a subprocess, as from a terminal: (exit status, its stderr)."""
    import os
    import subprocess
    import sys

    env = {**os.environ, "PREFECT_API_URL": api}
    env.pop("PREFECT_LOGGING_LEVEL", None)  # the CLI's own default, not the test session's
    proc = subprocess.run(
        [sys.executable, "-m", "a4nn.cli", "run", *args, "--quiet"],
        cwd=REPO,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )
    return proc.returncode, proc.stderr


def _one_message(err: str, text: str) -> None:
    """`err` (the console's stderr) is the one `a4nn:` line, naming `text`."""
    assert text in err, err
    for noise in NOISE:
        assert noise not in err, err
    lines = [ln for ln in err.splitlines() if ln.strip()]
    assert len(lines) == 1 and lines[0].startswith("a4nn: "), err


def _no_traceback_logged(caplog) -> None:
    logged = [r for r in caplog.records if r.exc_info or r.levelname == "ERROR"]
    assert not logged, [r.getMessage() for r in logged]


def _status(out: Path) -> str:
    return json.loads((out / "run.json").read_text())["status"]


@pytest.mark.slow
def test_a_broken_adapter_in_the_flow_is_one_message_and_status_2(tmp_path, prefect_api):
    cfg = _config(
        tmp_path, plugins=["tests.stalling_plugin"], search={"adapter": "nsganet-stalling"}
    )
    out = tmp_path / "run"
    status, err = _a4nn_run(prefect_api, str(cfg), "--out", str(out))
    assert status == 2, err
    _one_message(err, "adapter 'nsganet' proposed no candidate")
    assert _status(out) == "stopped"


@pytest.mark.slow
def test_a_fault_of_the_machine_in_the_flow_is_one_message_and_status_3(tmp_path, prefect_api):
    """Model 0's checkpoint folder cannot be made (a file stands there): the worker's
    task fails with InfrastructureError, the search stops with it, no model is failed."""
    cfg = _config(tmp_path, train={"epochs": 2})
    out = tmp_path / "run"
    blocked = out / "models" / "00000"
    blocked.mkdir(parents=True)
    (blocked / "checkpoints").write_text("")
    status, err = _a4nn_run(prefect_api, str(cfg), "--out", str(out))
    assert status == 3, err
    _one_message(err, "model 0 could not be recorded")
    assert _status(out) == "stopped"
    assert "result" not in json.loads((blocked / "model.json").read_text())


@pytest.mark.slow
@pytest.mark.usefixtures("prefect_api")
def test_a_config_that_differs_on_resume_is_found_in_the_flow(tmp_path, caplog):
    """The resumed run's config is checked inside the flow (`SearchSession.open`): the
    flow run ends Failed with the message, which `run_search_flow` raises as it was."""
    from a4nn.config import load_config
    from flows.search_flow import run_search_flow
    from lineage.run_dir import RunDir

    cfg = _config(tmp_path)
    out = tmp_path / "run"
    stored = load_config(cfg).model_dump(mode="json")
    RunDir.create(out, yaml.safe_dump(stored), {"name": "tiny"}).update_meta(status="stopped")
    changed = load_config(_config(tmp_path, train={"epochs": 9}))
    with pytest.raises(ValueError, match=r"train\.epochs \(run: 7, now: 9\)"):
        run_search_flow(changed, out, resume=True)
    _no_traceback_logged(caplog)
    assert _status(out) == "stopped"  # untouched: the session never opened


@pytest.mark.slow
@pytest.mark.usefixtures("prefect_api")
def test_a_run_directory_in_use_is_refused_inside_the_flow(tmp_path, caplog):
    """Two runs that passed the CLI's check at once: the flow's own lock refuses one,
    with the RunInUseError itself and no traceback logged."""
    from a4nn.config import load_config
    from flows.search_flow import run_search_flow
    from lineage.run_lock import RunInUseError, RunLock

    cfg = load_config(_config(tmp_path))
    out = tmp_path / "busy"
    lock = RunLock(out).acquire()
    try:
        with pytest.raises(RunInUseError, match="is in use by another a4nn run"):
            run_search_flow(cfg, out)
    finally:
        lock.release()
    _no_traceback_logged(caplog)
    assert not (out / "run.json").exists()


@pytest.mark.slow
@pytest.mark.usefixtures("prefect_api")
def test_the_deployment_entry_checks_the_data_and_fails_with_its_message(tmp_path, caplog):
    """`a4nn_search` (prefect.yaml) runs the CLI's checks: missing data ends the run
    Failed with the message, before any cluster starts, and no traceback is logged."""
    from flows.search_flow import a4nn_search

    cfg = _config(tmp_path)
    (tmp_path / "blobs.npz").unlink()
    out = tmp_path / "run"
    state = a4nn_search(str(cfg), str(out), return_state=True)
    assert state.is_failed()
    assert "blobs.npz does not exist" in state.message
    errors = [r for r in caplog.records if r.levelname == "ERROR"]
    assert [r.getMessage() for r in errors] == [f"a4nn: {state.message.split(': ', 1)[1]}"]
    assert not any(r.exc_info for r in caplog.records)
    assert not (out / "run.json").exists()


# -- without Prefect -----------------------------------------------------------------------
class _Future:
    def __init__(self, err: BaseException):
        self.err = err

    def result(self):
        raise self.err


def _executor_with(err: BaseException, tmp_path: Path):
    from a4nn.config import load_config
    from a4nn.types import Candidate
    from flows.search_flow import PrefectDaskExecutor
    from lineage.run_dir import RunDir

    cfg = load_config(_config(tmp_path))
    ex = PrefectDaskExecutor(cfg, RunDir(tmp_path / "run"), slots=1)
    submitted = []
    ex.submit = lambda cand, prior: submitted.append(cand.model_id)  # type: ignore[method-assign]
    cand = Candidate(model_id=4, arch=[[0]], space="nsganet-macro")
    ex.attempts[4] = 0
    ex.done.put((cand, [], _Future(err)))
    return ex, submitted


def test_data_that_a_worker_cannot_load_stops_the_search_at_once(tmp_path):
    """The data vanished or broke under a running search: no resubmission, no model
    failed; the search stops with the data's message (a user's error: status 2)."""
    from a4nn.data.loaders import DataError

    ex, submitted = _executor_with(DataError("npz file /d/blobs.npz does not exist"), tmp_path)
    with pytest.raises(DataError, match=r"model 4: a worker could not load the run's data: npz"):
        ex.next_result()
    assert submitted == []


def test_a_task_lost_on_every_attempt_is_a_fault_of_the_machine(tmp_path):
    from a4nn.faults import InfrastructureError

    ex, submitted = _executor_with(RuntimeError("worker lost"), tmp_path)
    ex.resubmits = 0
    with pytest.raises(InfrastructureError, match="could not be trained on any attempt"):
        ex.next_result()
    assert submitted == []


def test_prefect_does_not_retry_data_that_does_not_load():
    from prefect.states import Failed

    from a4nn.data.loaders import DataError
    from flows.search_flow import _worth_retrying

    assert not _worth_retrying(None, None, Failed(data=DataError("gone")))
    assert _worth_retrying(None, None, Failed(data=RuntimeError("worker lost")))


def test_a_failed_flow_state_raises_its_own_error():
    from prefect.exceptions import FailedRun
    from prefect.states import Completed, Failed

    from a4nn.faults import InfrastructureError
    from flows.search_flow import _failed, raise_failure

    err = InfrastructureError("disk full")
    state = _failed(err)
    assert state.is_failed() and state.message == "InfrastructureError: disk full"
    with pytest.raises(InfrastructureError, match="disk full"):
        raise_failure(state)
    with pytest.raises(FailedRun, match="gone"):  # a Failed state without an error
        raise_failure(Failed(message="gone"))
    assert raise_failure(Completed(data={"models": 3})) == {"models": 3}


@pytest.mark.parametrize(
    ("err", "reported", "machine"),
    [
        (ValueError("bad value"), True, False),
        (PermissionError(13, "denied"), True, False),  # a folder the user chose
        (OSError(28, "No space left on device"), True, True),
        (OSError(5, "Input/output error"), True, True),
        (OSError(110, "timed out"), False, False),
        (KeyError("bug"), False, False),
    ],
)
def test_which_errors_are_one_message(err, reported, machine):
    from a4nn.faults import is_machine_fault, is_reported

    assert is_reported(err) is reported and is_machine_fault(err) is machine


def test_a_full_disk_outside_training_exits_3(tmp_path, capsys, monkeypatch):
    """An OSError of the machine raised outside a model (e.g. writing the run's tables)
    is status 3 with one message, like an InfrastructureError."""
    import a4nn.cli as cli

    def full(args):
        raise OSError(28, "No space left on device", str(tmp_path / "models.csv"))

    monkeypatch.setattr(cli, "_cmd_report", full)
    assert main(["report", str(tmp_path)]) == 3
    err = capsys.readouterr().err
    assert err.startswith("a4nn: stopped by a fault of the machine") and "No space left" in err


@pytest.mark.slow
def test_ctrl_c_under_the_default_prefect_runner_is_one_line_130_and_resumes(tmp_path):
    """SIGINT to the process group of a running `a4nn run` (as a Ctrl-C in its terminal
    sends it), on the default API (no PREFECT_API_URL: a4nn's own local server, in a
    session of its own): one line naming the stop and how to resume, status 130, soon,
    the run directory `stopped`, nothing left running; `--resume` then finishes it.

    The resumed run is also the check of a whole run on the default API (flows/api_server.py,
    once a test of its own in tests/test_flows_prefect_api.py): it reports to a4nn's
    temporary server, whose database is in PREFECT_HOME and holds every model's task run,
    prints its summary, and nothing outlives it (server, workers)."""
    import os
    import signal
    import subprocess
    import sys
    import time
    import uuid

    cfg = _config(tmp_path, train={"epochs": 12})
    out = tmp_path / "run"
    mark = uuid.uuid4().hex
    env = {
        **os.environ,
        "PREFECT_HOME": str(tmp_path / "prefect-home"),  # its own database
        "PREFECT_SERVER_EPHEMERAL_STARTUP_TIMEOUT_SECONDS": "600",  # a new database, busy CPUs
        "A4NN_TEST_MARK": mark,
    }
    env.pop("PREFECT_API_URL", None)
    env.pop("PREFECT_LOGGING_LEVEL", None)
    cmd = [sys.executable, "-m", "a4nn.cli", "run", str(cfg), "--out", str(out), "--quiet"]
    proc = subprocess.Popen(
        cmd, cwd=REPO, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True,
        start_new_session=True,  # its own process group, as a terminal's foreground job
    )  # fmt: skip
    deadline = time.monotonic() + 900
    while not list(out.glob("models/*/checkpoints/*")) and time.monotonic() < deadline:
        assert proc.poll() is None, proc.stderr.read()
        time.sleep(0.2)
    os.killpg(proc.pid, signal.SIGINT)  # what Ctrl-C in the terminal does
    t0 = time.monotonic()
    _, err = proc.communicate(timeout=120)
    took = time.monotonic() - t0
    assert proc.returncode == 130, err
    _one_message(err, "interrupted")
    assert "--resume" in err and "KeyboardInterrupt" not in err
    assert took < 45, f"{took:.0f} s from SIGINT to exit"  # not ~75 s of retries to a dead API
    assert _status(out) == "stopped"
    left = _left_running(mark)
    assert not left, f"still running after the interrupted run: {left}"
    done = subprocess.run(
        [*cmd, "--resume"], cwd=REPO, env=env, capture_output=True, text=True, timeout=900
    )
    assert done.returncode == 0, done.stdout[-2000:] + done.stderr[-3000:]
    assert _status(out) == "finished"
    assert "Models trained: 5" in done.stdout, done.stdout[-2000:]
    db = tmp_path / "prefect-home" / "prefect.db"  # the temporary server's
    assert db.exists()
    with contextlib.closing(sqlite3.connect(db)) as con:
        rows = con.execute("SELECT name FROM task_run WHERE state_type = 'COMPLETED'")
        reported = {name for (name,) in rows}
    assert reported == {f"model-{i}" for i in range(5)}  # the workers reported to it
    left = _left_running(mark)
    assert not left, f"still running after `a4nn run --resume` ended: {left}"


def _left_running(mark: str) -> list[str]:
    """The command lines of processes carrying `mark` still alive after up to 20 s."""
    import time

    import psutil

    deadline = time.monotonic() + 20
    while time.monotonic() < deadline and any(_marked(p, mark) for p in psutil.process_iter()):
        time.sleep(0.2)
    return [" ".join(p.cmdline())[:100] for p in psutil.process_iter() if _marked(p, mark)]


def _alive(proc) -> bool:
    import psutil

    try:
        return proc.status() != psutil.STATUS_ZOMBIE
    except psutil.Error:
        return False


def _marked(proc, mark: str) -> bool:
    import psutil

    try:
        return _alive(proc) and proc.environ().get("A4NN_TEST_MARK") == mark
    except psutil.Error:
        return False
