"""The Prefect API a search reports to when no `PREFECT_API_URL` is set: a local server.

`a4nn run` without a Prefect server configured starts `prefect server start` on loopback
(a free port, no UI) for the length of the run and points the flow and its workers at it
(`flows.search_flow.prefect_api`). Prefect's own ephemeral mode would start the same
server as a subprocess in a4nn's process group, so a Ctrl-C in the terminal, which goes
to that whole group, would stop the server while the flow still needs it to record that
it stopped: here the server runs in a session of its own and stops when `a4nn run` is
done with it.

It is started through this file run as a script (a small keeper, standard library only,
in that new session),
which runs the server as its child and stops it when the a4nn process goes away by any
means, a `kill -9` included: the keeper reads a pipe from the a4nn process and stops the
server when the pipe closes. No server outlives its run.
"""

from __future__ import annotations

import contextlib
import os
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Iterator


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def server_command(port: int) -> list[str]:
    """`prefect server start` on loopback, for one run: no UI, no deployment scheduling."""
    return [
        sys.executable,
        "-m",
        "prefect",
        "server",
        "start",
        "--host",
        "127.0.0.1",
        "--port",
        str(port),
        "--no-ui",
        "--no-scheduler",
        "--no-late-runs",
        "--analytics-off",
        "--log-level",
        "error",
    ]


def _healthy(url: str) -> bool:
    import httpx

    try:
        return httpx.get(f"{url}/health", timeout=2.0).status_code == 200
    except httpx.HTTPError:
        return False


@contextlib.contextmanager
def local_server(timeout: float) -> Iterator[str]:
    """A Prefect server on loopback for the `with` block; yields its API URL.

    Raises RuntimeError when it does not answer within `timeout` seconds (or exits)."""
    port = _free_port()
    url = f"http://127.0.0.1:{port}/api"
    with tempfile.TemporaryFile(mode="w+b") as log:
        keeper = subprocess.Popen(
            [sys.executable, os.path.abspath(__file__), *server_command(port)],
            stdin=subprocess.PIPE,  # its end closes when this process ends: the keeper stops
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,  # a Ctrl-C in the terminal does not reach the server
        )
        try:
            deadline = time.monotonic() + timeout
            while not _healthy(url):
                if keeper.poll() is not None or time.monotonic() > deadline:
                    log.seek(0)
                    tail = log.read().decode(errors="replace").strip().splitlines()[-3:]
                    why = (
                        f"it exited with status {keeper.returncode}"
                        if keeper.poll() is not None
                        else f"it did not answer within {timeout:.0f} s"
                    )
                    raise RuntimeError(f"{why}{': ' + ' | '.join(tail) if tail else ''}")
                time.sleep(0.1)
            yield url
        finally:
            _stop(keeper)


def _stop(keeper: subprocess.Popen) -> None:
    """Close the keeper's pipe (it stops the server and exits); wait for it a while."""
    with contextlib.suppress(OSError):
        if keeper.stdin is not None:
            keeper.stdin.close()
    try:
        keeper.wait(timeout=15)
    except subprocess.TimeoutExpired:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(keeper.pid, signal.SIGKILL)  # the keeper's own session: server too
        keeper.wait()


def _keep(command: list[str]) -> int:
    """Run `command` (the server) until stdin closes or this process is told to stop."""
    server = subprocess.Popen(command, stdin=subprocess.DEVNULL)

    def stop(*_: object) -> None:
        with contextlib.suppress(ProcessLookupError):
            server.terminate()

    signal.signal(signal.SIGTERM, stop)
    signal.signal(signal.SIGINT, stop)

    def watch() -> None:
        sys.stdin.buffer.read()  # returns when the a4nn process closes or loses the pipe
        stop()

    threading.Thread(target=watch, daemon=True).start()
    try:
        return server.wait(timeout=None)
    finally:
        with contextlib.suppress(subprocess.TimeoutExpired):
            server.wait(timeout=10)
        if server.poll() is None:
            server.kill()


if __name__ == "__main__":
    sys.exit(_keep(sys.argv[1:]))
