"""Prefect's ephemeral API server for a run with no `PREFECT_API_URL`, started early.

`a4nn run` with no Prefect server configured needs a local, temporary one. Prefect's own
`SubprocessASGIServer` serves that purpose, but reaching it means importing Prefect's
server package (FastAPI app and models: about 3 s here) before the subprocess even starts,
and then waiting about 3 s more for it to answer. This module starts the very same
subprocess (`uvicorn prefect.server.api.server:create_app`, UI off, the environment
variables Prefect sets for its ephemeral server) without importing Prefect at all, so the
CLI can launch it first thing and let it boot while torch, Prefect and Dask are imported
and the Dask cluster starts.

The server ends with the run: `stop()` (also at exit) terminates it, and, should the run's
process be killed outright (`kill -9`, an HPC job's time limit), the server notices that
its parent is gone within a second and shuts itself down instead of lingering.
"""

from __future__ import annotations

import atexit
import contextlib
import importlib.util
import os
import signal
import socket
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.request
from pathlib import Path

from lineage.atomic import atomic_write_text

_SERVER_ENV = {
    "PREFECT_UI_ENABLED": "0",
    "PREFECT__SERVER_EPHEMERAL": "1",
    "PREFECT__SERVER_FINAL": "1",
}
# Defaults the user's environment may override. Registering Prefect's block types at every
# start first imports every installed Prefect collection (prefect-dask, hence Dask) only to
# find them registered already: about 0.3 s of CPU per run. A block type is registered
# anyway when a block of that type is first saved (`Secret(...).save(...)`), and a
# `prefect server start` on the same database registers them all.
_SERVER_DEFAULTS = {
    "PREFECT_API_BLOCKS_REGISTER_ON_START": "false",
    "PREFECT_MEMOIZE_BLOCK_AUTO_REGISTRATION": "false",
}
_prestarted: EphemeralAPI | None = None

# The server process runs this very file (not `-m flows.ephemeral_api`, which a `flows`
# folder in the user's working directory could shadow), with `-P`: no such folder on
# its path either.
_SERVE_THIS_FILE = (
    "import importlib.util, sys; "
    "spec = importlib.util.spec_from_file_location('a4nn_ephemeral_api', sys.argv[1]); "
    "mod = importlib.util.module_from_spec(spec); spec.loader.exec_module(mod); "
    "mod._serve(sys.argv[2:])"
)


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


class EphemeralAPI:
    """One temporary Prefect API server process on a free local port."""

    def __init__(self) -> None:
        self.port = free_port()
        self.proc: subprocess.Popen | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}/api"

    def start(self) -> EphemeralAPI:
        spec = importlib.util.find_spec("prefect")
        if spec is None or spec.origin is None:
            raise RuntimeError("Prefect is not installed: pip install prefect")
        app_dir = Path(spec.origin).parent.parent  # the folder holding the prefect package
        cmd = [
            sys.executable,
            "-P",
            "-c",
            _SERVE_THIS_FILE,  # uvicorn, plus a watch on this process (see _serve)
            str(Path(__file__).resolve()),
            "--parent",
            str(os.getpid()),
            "--",
            "--app-dir",
            str(app_dir),
            "--factory",
            "prefect.server.api.server:create_app",
            "--host",
            "127.0.0.1",
            "--port",
            str(self.port),
            "--log-level",
            "error",
            "--lifespan",
            "on",
        ]
        env = {**_SERVER_DEFAULTS, **os.environ, **_SERVER_ENV}
        self.proc = subprocess.Popen(cmd, env=env)
        atexit.register(self.stop)
        return self

    def wait_ready(self, timeout: float) -> str:
        """Block until the API answers its health check; returns its URL."""
        if self.proc is None:
            self.start()
        t_end = time.monotonic() + timeout
        while time.monotonic() < t_end:
            code = self.proc.poll()
            if code is not None:
                raise RuntimeError(f"the server process exited with code {code}")
            with (
                contextlib.suppress(urllib.error.URLError, OSError),
                urllib.request.urlopen(f"{self.url}/health", timeout=2) as resp,
            ):
                if resp.status == 200:
                    return self.url
            time.sleep(0.05)
        raise RuntimeError(f"no answer from {self.url} within {timeout:.0f} s")

    def stop(self) -> None:
        proc, self.proc = self.proc, None
        if proc is None or proc.poll() is not None:
            return
        proc.terminate()
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


def loopback_ca_file(folder: Path) -> str:
    """A one-certificate CA bundle for Prefect clients of the temporary (plain HTTP) API.

    The temporary API is `http://127.0.0.1`: no TLS, no certificate is ever checked. Yet
    every Prefect client builds a TLS context from `PREFECT_API_SSL_CERT_FILE` (the
    system's or certifi's bundle of about 150 roots: 20 ms to load), and a Dask worker
    creates two clients per task run: 40 ms per model. With this bundle (certifi's first
    root certificate, public data) a context takes 0.4 ms. Only the temporary API's
    clients get it, for the run's flow: a server set by `PREFECT_API_URL` keeps the
    user's own setting. The file goes in `folder` (Prefect's home, private to the user):
    workers that do not share this file system (an existing scheduler elsewhere) could not
    reach a temporary API on 127.0.0.1 anyway. Raises OSError or ValueError (no
    certificate in the bundle); the caller then keeps the default bundle.
    """
    import certifi

    bundle = Path(certifi.where()).read_text(encoding="ascii")
    end = "-----END CERTIFICATE-----"
    first = bundle[bundle.index("-----BEGIN CERTIFICATE-----") : bundle.index(end) + len(end)]
    path = folder / "a4nn-loopback-ca.pem"
    if not path.exists() or path.read_text(encoding="ascii") != first + "\n":
        atomic_write_text(path, first + "\n")  # concurrent runs never read half a file
    return str(path)


def prestart() -> None:
    """Start the ephemeral server now if this run will need one (no PREFECT_API_URL)."""
    global _prestarted
    if _prestarted is None and not os.environ.get("PREFECT_API_URL"):
        _prestarted = EphemeralAPI().start()


def prestarted_url() -> str | None:
    """The URL of the server `prestart` launched (still to be taken), if any."""
    return _prestarted.url if _prestarted is not None else None


def take_prestarted() -> EphemeralAPI | None:
    """The server `prestart` launched, handed over once (None if there is none)."""
    global _prestarted
    server, _prestarted = _prestarted, None
    return server


def _exit_with_parent(parent: int, poll_seconds: float = 1.0) -> None:
    """Shut this server down once `parent` is gone (this process was re-parented)."""
    while os.getppid() == parent:
        time.sleep(poll_seconds)
    os.kill(os.getpid(), signal.SIGTERM)  # uvicorn's graceful shutdown
    time.sleep(10)
    os._exit(1)  # still here: it did not shut down


def _serve(argv: list[str]) -> None:
    """`--parent PID -- UVICORN_ARGS...`: uvicorn, shut down once process PID is gone."""
    if len(argv) < 3 or argv[0] != "--parent" or "--" not in argv:
        raise SystemExit("usage: ephemeral_api.py --parent PID -- UVICORN_ARGS...")
    parent = int(argv[1])
    rest = argv[argv.index("--") + 1 :]
    threading.Thread(target=_exit_with_parent, args=(parent,), daemon=True).start()
    from uvicorn.main import main

    main(args=rest, prog_name="uvicorn")


if __name__ == "__main__":
    _serve(sys.argv[1:])
