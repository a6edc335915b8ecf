"""`a4nn` ends without the interpreter's teardown, after every exit hook and flush."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]


def _run(body: str, tmp_path: Path) -> subprocess.CompletedProcess:
    """Arm first, then what a run registers later: a log file, an exit hook, and a file
    left open with its write still buffered, which only the interpreter's teardown
    flushes (every file A4NN writes is closed at once: lineage/atomic.py)."""
    code = (
        "import atexit, logging, sys\n"
        "from a4nn import quick_exit\n"
        "quick_exit.arm()\n"
        f"logging.basicConfig(filename=r'{tmp_path / 'run.log'}', level=logging.INFO)\n"
        f"atexit.register(lambda: open(r'{tmp_path / 'hook'}', 'w').write('ran'))\n"
        f"left_open = open(r'{tmp_path / 'teardown'}', 'w')\n"
        "left_open.write('flushed at teardown')\n"
        "logging.getLogger('a4nn').info('search finished')\n"
        "print('summary', end='')\n" + body
    )
    return subprocess.run(
        [sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, timeout=60
    )


def test_after_done_the_process_skips_teardown_but_not_hooks_or_flushes(tmp_path):
    proc = _run("quick_exit.done(3)\nsys.exit(3)\n", tmp_path)
    assert proc.returncode == 3, proc.stderr
    assert proc.stdout == "summary"  # flushed
    assert "search finished" in (tmp_path / "run.log").read_text()  # logging shut down
    assert (tmp_path / "hook").read_text() == "ran"  # registered later: ran first
    assert (tmp_path / "teardown").read_text() == ""  # module teardown skipped


def test_without_done_the_process_exits_the_normal_way(tmp_path):
    proc = _run("raise RuntimeError('boom')\n", tmp_path)
    assert proc.returncode == 1
    assert "RuntimeError: boom" in proc.stderr
    assert (tmp_path / "hook").read_text() == "ran"
    assert (tmp_path / "teardown").read_text() == "flushed at teardown"


@pytest.mark.slow
def test_the_a4nn_command_keeps_its_exit_codes_and_messages(tmp_path):
    proc = subprocess.run(
        [sys.executable, "-m", "a4nn.cli", "run", str(tmp_path / "missing.yaml")],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert proc.returncode == 2
    assert proc.stderr.startswith("a4nn: error:") and "missing.yaml" in proc.stderr
