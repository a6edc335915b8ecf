"""The temporary Prefect API that `a4nn run` starts when no PREFECT_API_URL is set."""

from __future__ import annotations

import contextlib
import os
import subprocess
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path

import pytest

from flows import ephemeral_api
from flows.ephemeral_api import EphemeralAPI


@pytest.mark.slow
def test_ephemeral_api_answers_then_stops():
    server = EphemeralAPI().start()
    try:
        url = server.wait_ready(timeout=90)
        with urllib.request.urlopen(f"{url}/health", timeout=5) as resp:
            assert resp.status == 200
    finally:
        server.stop()
    assert server.proc is None
    with pytest.raises((urllib.error.URLError, OSError)):
        urllib.request.urlopen(f"{url}/health", timeout=2)


@pytest.mark.slow
def test_a_fresh_temporary_server_saves_and_loads_blocks(tmp_path, monkeypatch):
    # the server skips Prefect's block-type registration at start (a cost paid on every
    # run); on a brand-new database a block must still save and load, as the Dataverse
    # token's Prefect Secret does
    monkeypatch.setenv("PREFECT_HOME", str(tmp_path / "prefect-home"))
    server = EphemeralAPI().start()
    try:
        url = server.wait_ready(timeout=120)
        code = (
            "from prefect.blocks.system import Secret\n"
            "Secret(value='s3cr3t').save('a4nn-test-block')\n"
            "assert Secret.load('a4nn-test-block').get() == 's3cr3t'\n"
        )
        env = {**os.environ, "PREFECT_API_URL": url}
        subprocess.run([sys.executable, "-c", code], env=env, check=True, timeout=120)
    finally:
        server.stop()
    assert (tmp_path / "prefect-home" / "prefect.db").exists()


def test_a_server_that_exits_is_reported_with_its_exit_code():
    server = EphemeralAPI()
    server.proc = subprocess.Popen([sys.executable, "-c", "raise SystemExit(3)"])
    server.proc.wait()
    with pytest.raises(RuntimeError, match="exited with code 3"):
        server.wait_ready(timeout=5)


def test_a_server_that_never_answers_times_out_with_its_url():
    server = EphemeralAPI()
    server.proc = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(30)"])
    try:
        with pytest.raises(RuntimeError, match=r"no answer from http://127\.0\.0\.1:\d+/api"):
            server.wait_ready(timeout=0.5)
    finally:
        server.stop()


def test_no_server_is_prestarted_when_an_api_url_is_set(monkeypatch):
    monkeypatch.setenv("PREFECT_API_URL", "http://127.0.0.1:4200/api")
    ephemeral_api.prestart()
    assert ephemeral_api.take_prestarted() is None


def _dummy_server() -> EphemeralAPI:
    server = EphemeralAPI()
    server.proc = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(30)"])
    return server


@pytest.fixture()
def prestarted_dummy(monkeypatch) -> EphemeralAPI:
    """No PREFECT_API_URL, and a stand-in for the server the CLI would have prestarted."""
    monkeypatch.delenv("PREFECT_API_URL", raising=False)
    server = _dummy_server()
    monkeypatch.setattr(ephemeral_api, "_prestarted", server)
    return server


def test_flows_on_the_temporary_server_send_no_heartbeats(prestarted_dummy):
    """Heartbeats let a lasting server spot crashed flow runs; a temporary one ends with
    the run, and Prefect would wait up to a second for the heartbeat thread at the end."""
    from prefect.settings import (
        PREFECT_API_URL,
        PREFECT_FLOWS_HEARTBEAT_FREQUENCY,
        temporary_settings,
    )

    from flows.search_flow import prefect_api

    server = prestarted_dummy
    with temporary_settings(restore_defaults={PREFECT_API_URL}), prefect_api():
        assert PREFECT_API_URL.value() == server.url
        assert PREFECT_FLOWS_HEARTBEAT_FREQUENCY.value() is None
    assert server.proc is None  # stopped with the run


def test_clients_of_the_temporary_server_load_a_one_certificate_bundle(tmp_path, prestarted_dummy):
    """Its API is plain HTTP; Prefect still builds a TLS context per client (two per task
    run), and loading a full CA bundle costs 20 ms each time."""
    import ssl

    from prefect.settings import (
        PREFECT_API_SSL_CERT_FILE,
        PREFECT_API_URL,
        PREFECT_HOME,
        temporary_settings,
    )

    from flows.search_flow import prefect_api

    user_bundle = str(tmp_path / "corporate-ca.pem")
    settings = {PREFECT_HOME: str(tmp_path / "home"), PREFECT_API_SSL_CERT_FILE: user_bundle}
    with temporary_settings(updates=settings, restore_defaults={PREFECT_API_URL}):
        with prefect_api():
            ca_file = Path(PREFECT_API_SSL_CERT_FILE.value())
            assert ca_file.parent == tmp_path / "home"
            assert ca_file.read_text().count("BEGIN CERTIFICATE") == 1
            ssl.create_default_context(cafile=str(ca_file))  # a valid bundle
        assert PREFECT_API_SSL_CERT_FILE.value() == user_bundle  # for the run only


def test_an_unwritable_prefect_home_only_keeps_the_full_bundle(tmp_path, prestarted_dummy):
    from prefect.settings import (
        PREFECT_API_SSL_CERT_FILE,
        PREFECT_API_URL,
        PREFECT_HOME,
        temporary_settings,
    )

    from flows.search_flow import prefect_api

    (tmp_path / "a-file").write_text("")
    settings = {PREFECT_HOME: str(tmp_path / "a-file" / "home"), PREFECT_API_SSL_CERT_FILE: "x"}
    with (
        temporary_settings(updates=settings, restore_defaults={PREFECT_API_URL}),
        prefect_api(),
    ):
        assert PREFECT_API_SSL_CERT_FILE.value() == "x"


def test_flows_on_a_lasting_server_keep_their_heartbeats():
    from prefect.settings import (
        PREFECT_API_SSL_CERT_FILE,
        PREFECT_API_URL,
        PREFECT_FLOWS_HEARTBEAT_FREQUENCY,
        temporary_settings,
    )

    from flows.search_flow import prefect_api

    lasting = {
        PREFECT_API_URL: "http://127.0.0.1:4200/api",
        PREFECT_FLOWS_HEARTBEAT_FREQUENCY: 180,  # Prefect's default
        PREFECT_API_SSL_CERT_FILE: "/etc/my-ca.pem",
    }
    with temporary_settings(updates=lasting), prefect_api():
        assert PREFECT_API_URL.value() == "http://127.0.0.1:4200/api"
        assert PREFECT_FLOWS_HEARTBEAT_FREQUENCY.value() == 180
        assert PREFECT_API_SSL_CERT_FILE.value() == "/etc/my-ca.pem"  # the user's own


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    with contextlib.suppress(FileNotFoundError):  # a zombie is as good as gone
        return Path(f"/proc/{pid}/stat").read_text().split()[2] != "Z"
    return True


@pytest.mark.slow
def test_the_server_shuts_down_when_the_run_is_killed_outright():
    """`kill -9` of `a4nn run` (or a batch job's time limit) runs no exit hook; the
    server notices its parent is gone and ends instead of lingering."""
    code = (
        "import time; from flows.ephemeral_api import EphemeralAPI\n"
        "s = EphemeralAPI().start(); s.wait_ready(90)\n"
        "print(s.proc.pid, flush=True); time.sleep(120)\n"
    )
    parent = subprocess.Popen([sys.executable, "-c", code], stdout=subprocess.PIPE, text=True)
    server_pid = int(parent.stdout.readline())  # it answered: up and serving
    try:
        assert _alive(server_pid)
        parent.kill()
        parent.wait()
        deadline = time.monotonic() + 30
        while _alive(server_pid) and time.monotonic() < deadline:
            time.sleep(0.2)
        assert not _alive(server_pid), "the temporary API outlived the killed run"
    finally:
        if _alive(server_pid):
            os.kill(server_pid, 9)
