"""The local workers' fast exit: only after a clean close, and after every other exit hook."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def _run(body: str, tmp_path: Path) -> subprocess.CompletedProcess:
    code = (
        "import atexit, sys\n"
        "from flows import fast_exit\n"
        "fast_exit.dask_setup(None)  # as a preload: before Prefect registers its hooks\n"
        f"atexit.register(lambda: open(r'{tmp_path / 'flushed'}', 'w').write('yes'))\n" + body
    )
    return subprocess.run(
        [sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, timeout=60
    )


def test_a_cleanly_closed_worker_runs_the_other_exit_hooks_then_exits_zero(tmp_path):
    proc = _run("print('bye'); fast_exit.dask_teardown(None)\n", tmp_path)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout == "bye\n"  # flushed before the process ends
    assert (tmp_path / "flushed").read_text() == "yes"  # e.g. Prefect's event drain


def test_a_worker_that_did_not_close_cleanly_keeps_its_exit_code(tmp_path):
    proc = _run("sys.exit(3)\n", tmp_path)
    assert proc.returncode == 3
    assert (tmp_path / "flushed").read_text() == "yes"


def test_local_cluster_workers_load_the_fast_exit_preload():
    from distributed import Client

    from flows.cluster import local_cluster

    with local_cluster(1, 1) as cluster, Client(cluster, set_as_default=False) as client:
        loaded = client.run(lambda: "flows.fast_exit" in sys.modules)
    assert list(loaded.values()) == [True]
