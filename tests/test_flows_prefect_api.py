"""Which Prefect API a search reports to (flows/search_flow.py:prefect_api): the one
`PREFECT_API_URL` names, else the temporary local server `a4nn run` starts (flows/api_server.py),
which ends with the run."""

from __future__ import annotations

import os
import subprocess
import sys
import time
import uuid
from pathlib import Path

import psutil
import pytest

from tests.conftest import write_tiny_config

ROOT = Path(__file__).resolve().parents[1]


def test_a_set_api_url_goes_to_the_flow_and_the_workers_for_the_run_only(monkeypatch):
    from prefect.settings import PREFECT_API_URL, temporary_settings

    from flows.search_flow import prefect_api

    monkeypatch.delenv("PREFECT_API_URL", raising=False)
    url = "http://127.0.0.1:4200/api"
    with temporary_settings(updates={PREFECT_API_URL: url}), prefect_api() as used:
        assert used == url
        assert os.environ["PREFECT_API_URL"] == url  # local workers inherit it
        assert PREFECT_API_URL.value() == url  # prefect-dask ships it with every task
    assert "PREFECT_API_URL" not in os.environ


def _marked(mark: str) -> list[psutil.Process]:
    """Processes still alive whose environment carries `mark` (the run and its children)."""
    found = []
    for proc in psutil.process_iter():
        try:
            if proc.environ().get("A4NN_TEST_MARK") == mark and proc.status() != "zombie":
                found.append(proc)
        except (psutil.NoSuchProcess, psutil.AccessDenied, psutil.ZombieProcess):
            continue
    return found


@pytest.mark.slow  # starts a Prefect server or a Dask cluster
def test_a_run_without_api_url_uses_prefects_temporary_server_and_ends_cleanly(tmp_path):
    """`a4nn run` with no Prefect server configured: a4nn starts its temporary server,
    the Dask workers report to it, and nothing outlives the command (server, workers)."""
    config = write_tiny_config(
        tmp_path,
        orchestration={"runner": "prefect", "n_workers": 1, "threads_per_worker": 1},
        search={"options": {"preset": "quickstart", "pop_size": 3, "n_generations": 1}},
    )
    mark = uuid.uuid4().hex
    env = {
        **os.environ,
        "PREFECT_HOME": str(tmp_path / "prefect-home"),  # its own database
        "A4NN_TEST_MARK": mark,
    }
    env.pop("PREFECT_API_URL", None)
    out = tmp_path / "run"
    proc = subprocess.run(
        [sys.executable, "-m", "a4nn.cli", "run", str(config), "--out", str(out), "--quiet"],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert proc.returncode == 0, proc.stdout[-2000:] + proc.stderr[-2000:]
    assert "Models trained: 3" in proc.stdout
    assert (tmp_path / "prefect-home" / "prefect.db").exists()  # the temporary server's
    deadline = time.monotonic() + 20
    while _marked(mark) and time.monotonic() < deadline:
        time.sleep(0.2)
    left = [" ".join(p.cmdline())[:120] for p in _marked(mark)]
    assert not left, f"still running after `a4nn run` ended: {left}"
