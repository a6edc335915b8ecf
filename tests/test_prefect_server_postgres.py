"""The deployment for large searches (docs/flows.md): `scripts/prefect_server_postgres.sh`
starts PostgreSQL on loopback and a Prefect server on it, a tiny `a4nn run` reports to it,
and the script stops both cleanly. Skipped where PostgreSQL's server programs are not
installed (Debian: `apt-get install postgresql`)."""

from __future__ import annotations

import asyncio
import glob
import json
import os
import shutil
import subprocess
import sys
import tempfile
import urllib.request
from pathlib import Path

import pytest
import yaml

from tests.conftest import tiny_config_dict, write_blob_npz

REPO = Path(__file__).resolve().parents[1]
SCRIPT = REPO / "scripts" / "prefect_server_postgres.sh"


def _postgres_installed() -> bool:
    return bool(shutil.which("initdb") or glob.glob("/usr/lib/postgresql/*/bin/initdb"))


def _script(*args: str, env: dict[str, str]) -> str:
    proc = subprocess.run(
        ["bash", str(SCRIPT), *args],
        env=env,
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert proc.returncode == 0, proc.stderr
    return proc.stdout


def _flow_run_names(port: int, password: str) -> list[str]:
    import asyncpg

    async def names() -> list[str]:
        conn = await asyncpg.connect(
            host="127.0.0.1", port=port, user="prefect", password=password, database="prefect"
        )
        try:
            return [r["name"] for r in await conn.fetch("SELECT name FROM flow_run")]
        finally:
            await conn.close()

    return asyncio.run(names())


def _env_file(folder: Path) -> dict[str, str]:
    lines = (folder / "server.env").read_text().splitlines()
    return dict(line.split("=", 1) for line in lines if "=" in line)


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    return True


@pytest.mark.slow
@pytest.mark.skipif(not _postgres_installed(), reason="PostgreSQL's server programs are absent")
def test_a_search_reports_to_the_postgres_backed_server_and_the_script_stops_it(tmp_path):
    # as root the script runs PostgreSQL as `postgres`, which must reach the folder
    folder = Path(tempfile.mkdtemp(prefix="a4nn-pg-"))
    folder.chmod(0o755)
    env = {**os.environ, "PATH": f"{Path(sys.executable).parent}{os.pathsep}{os.environ['PATH']}"}
    env.pop("PREFECT_API_URL", None)
    try:
        out = _script("start", str(folder), env=env)
        export = [ln for ln in out.splitlines() if ln.startswith("export PREFECT_API_URL=")]
        assert len(export) == 1, out
        api = export[0].split("=", 1)[1]
        assert api.startswith("http://127.0.0.1:") and api.endswith("/api")
        running = _env_file(folder)
        with urllib.request.urlopen(f"{api}/health", timeout=10) as resp:
            assert resp.status == 200

        cfg = tiny_config_dict(
            write_blob_npz(tmp_path),
            name="on-postgres",
            orchestration={"runner": "prefect", "n_workers": 1, "threads_per_worker": 1},
            search={"options": {"pop_size": 2, "n_offspring": 1, "n_generations": 1}},
            train={"epochs": 2},
        )
        path = tmp_path / "tiny.yaml"
        path.write_text(yaml.safe_dump(cfg))
        run = subprocess.run(
            [
                sys.executable,
                "-m",
                "a4nn.cli",
                "run",
                str(path),
                "--out",
                str(tmp_path / "run"),
                "--quiet",
            ],
            cwd=REPO,
            env={**env, "PREFECT_API_URL": api},
            capture_output=True,
            text=True,
            timeout=600,
        )
        assert run.returncode == 0, run.stderr
        meta = json.loads((tmp_path / "run" / "run.json").read_text())
        assert meta["status"] == "finished"

        # the server kept the flow run in PostgreSQL, not in a SQLite file
        password = (folder / "pg-password").read_text().strip()
        assert "on-postgres" in _flow_run_names(int(running["PG_PORT"]), password)
        assert not list((folder / "prefect-home").glob("*.db"))
    finally:
        _script("stop", str(folder), env=env)
    assert not (folder / "server.env").exists()
    assert not (folder / "pg" / "postmaster.pid").exists()
    assert not _alive(int(running["PREFECT_PID"]))
    shutil.rmtree(folder, ignore_errors=True)
