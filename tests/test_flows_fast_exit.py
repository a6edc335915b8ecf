"""The local workers' fast exit: only once the worker's close has run, and after Prefect's
own exit work (registered with `threading`, which runs before any `atexit` hook)."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]


def _run(body: str, tmp_path: Path) -> subprocess.CompletedProcess:
    """A process shaped like a worker: an exit hook registered before the preload (it
    runs after the preload's hook), the preload, then one registered later (runs before)."""
    code = (
        "import atexit, sys\n"
        f"atexit.register(lambda: open(r'{tmp_path / 'earlier'}', 'w').write('ran'))\n"
        "from flows import fast_exit\n"
        "fast_exit.dask_setup(None)\n"
        f"atexit.register(lambda: open(r'{tmp_path / 'later'}', 'w').write('ran'))\n" + body
    )
    return subprocess.run(
        [sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, timeout=60
    )


def test_a_closed_worker_ends_right_after_the_hooks_registered_after_the_preload(tmp_path):
    proc = _run("print('bye'); fast_exit.dask_teardown(None)\n", tmp_path)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout == "bye\n"  # flushed before the process ends
    assert (tmp_path / "later").read_text() == "ran"
    assert not (tmp_path / "earlier").exists()  # the process ended at the preload's hook


def test_a_worker_whose_close_did_not_run_exits_the_normal_way(tmp_path):
    proc = _run("sys.exit(3)\n", tmp_path)
    assert proc.returncode == 3
    assert (tmp_path / "later").read_text() == "ran"
    assert (tmp_path / "earlier").read_text() == "ran"


@pytest.mark.slow
def test_local_cluster_workers_run_the_fast_exit_preload():
    from distributed import Client

    from flows.cluster import local_cluster

    def armed() -> bool:
        from flows import fast_exit

        return fast_exit._armed and not fast_exit._closed_cleanly

    with local_cluster(1, 1) as cluster, Client(cluster, set_as_default=False) as client:
        assert list(client.run(armed).values()) == [True]
