"""prefect.yaml's steps, verbatim, on a fresh Prefect server (issue 19, item 5).

A real Prefect server on loopback (its own PREFECT_HOME), then the commands listed in
prefect.yaml's header, exactly as written there and in docs/flows.md: both work pools,
`prefect --no-prompt deploy --all`, a worker, and a run of the quickstart deployment with a
tiny config; the run directory must hold the finished run.
"""

from __future__ import annotations

import json
import os
import re
import shlex
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest
import yaml

from tests.conftest import write_tiny_config

ROOT = Path(__file__).resolve().parents[1]
PREFECT = str(Path(sys.executable).with_name("prefect"))


def documented_steps() -> list[str]:
    """The `prefect ...` command lines of prefect.yaml's header comment."""
    steps = []
    for line in (ROOT / "prefect.yaml").read_text().splitlines():
        if not line.startswith("#   prefect "):
            continue
        steps.append(line[len("#   ") :].split("  #", 1)[0].strip())
    return steps


def test_prefect_yaml_steps_create_every_pool_and_match_the_docs():
    spec = yaml.safe_load((ROOT / "prefect.yaml").read_text())
    steps = documented_steps()
    pools = {d["work_pool"]["name"] for d in spec["deployments"]}
    for pool in pools:
        assert f"prefect work-pool create {pool} --type process --overwrite" in steps
    assert "prefect --no-prompt deploy --all" in steps
    docs = (ROOT / "docs/flows.md").read_text()
    for step in steps:
        assert step in docs, f"docs/flows.md lacks the step {step!r}"
    # nothing is resolved from the environment at run time (a missing variable would be
    # stored literally): the working directory is the one `prefect deploy` runs in
    assert "{{" not in (ROOT / "prefect.yaml").read_text()
    assert "pull" not in spec


def test_deployment_configs_cache_data_outside_the_packages():
    from a4nn.config import load_config

    spec = yaml.safe_load((ROOT / "prefect.yaml").read_text())
    for dep in spec["deployments"]:
        cfg = load_config(ROOT / dep["parameters"]["config_path"])
        cache = cfg.data.cache_dir.resolve()
        assert cache == ROOT / "data", (dep["name"], cache)
        assert not (Path(dep["parameters"]["out"]).is_absolute())


def _api(api: str, path: str) -> dict:
    """GET `path` from the Prefect server's REST API, as JSON."""
    with urllib.request.urlopen(f"{api}{path}", timeout=30) as r:
        return json.load(r)


def _wait_for_final_state(api: str, flow_run_id: str, worker, folder: Path) -> str:
    """Poll the flow run's state (twice a second, on the REST API) until it is final."""
    deadline = time.monotonic() + 600
    while time.monotonic() < deadline:
        state = (_api(api, f"/flow_runs/{flow_run_id}").get("state") or {}).get("type")
        if state in ("COMPLETED", "FAILED", "CRASHED", "CANCELLED"):
            return state
        assert worker.poll() is None, (folder / "worker.log").read_text()
        time.sleep(0.5)
    raise AssertionError(f"flow run {flow_run_id} not over in 600 s (last state {state})")


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.mark.slow
def test_documented_steps_deploy_and_run_on_a_fresh_server(tmp_path):
    port = _free_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith("PREFECT_") and k != "A4NN_REPO"}
    env.update(
        PREFECT_HOME=str(tmp_path / "prefect-home"),
        PREFECT_SERVER_ANALYTICS_ENABLED="false",
        PREFECT_UI_ENABLED="false",
        DO_NOT_TRACK="1",
        PYTHONPATH=str(ROOT),
    )
    log = open(tmp_path / "server.log", "w")  # noqa: SIM115 (closed in finally)
    server = subprocess.Popen(
        [PREFECT, "server", "start", "--host", "127.0.0.1", "--port", str(port)],
        env=env,
        stdout=log,
        stderr=subprocess.STDOUT,
        start_new_session=True,
    )
    api = f"http://127.0.0.1:{port}/api"
    env["PREFECT_API_URL"] = api
    # Prefect's CLI output fits the terminal (80 columns without one) and would wrap or
    # truncate what this test reads (the flow run's UUID): give it room
    env["COLUMNS"] = "400"
    try:
        deadline = time.monotonic() + 240
        while True:
            try:
                with urllib.request.urlopen(f"{api}/health", timeout=5) as r:
                    if r.status == 200:
                        break
            except OSError:
                pass
            assert server.poll() is None, (tmp_path / "server.log").read_text()
            assert time.monotonic() < deadline, "the Prefect server did not start"
            time.sleep(0.25)

        def run(cmd: str, timeout: float = 300) -> str:
            argv = shlex.split(cmd)
            argv[0] = PREFECT  # the documented `prefect`, from this environment
            done = subprocess.run(
                argv, cwd=ROOT, env=env, capture_output=True, text=True, timeout=timeout
            )
            assert done.returncode == 0, f"{cmd}\n{done.stdout}\n{done.stderr}"
            return done.stdout

        for step in documented_steps():
            if step.startswith(("prefect work-pool create", "prefect --no-prompt deploy")):
                run(step)
        # what `prefect deployment inspect` shows, read from the server's REST API (one
        # `prefect` process less: each costs seconds of imports)
        deployed = _api(api, "/deployments/name/a4nn-search-deployment/quickstart")
        assert deployed["work_pool_name"] == "a4nn-local"
        # the working directory recorded at deploy time
        assert {"prefect.deployments.steps.set_working_directory": {"directory": str(ROOT)}} in (
            deployed["pull_steps"]
        ), deployed["pull_steps"]

        config = write_tiny_config(
            tmp_path,
            train={"epochs": 2},
            orchestration={"runner": "prefect", "n_workers": 1, "threads_per_worker": 1},
        )
        out = tmp_path / "deployed-run"
        created = run(
            "prefect deployment run 'a4nn-search-deployment/quickstart' "
            f"--param config_path={config} --param out={out}"
        )
        flow_run_id = re.search(r"UUID: ([0-9a-f-]{36})", created)
        assert flow_run_id, created
        # the documented worker, in its own process group, until the flow run is over
        with open(tmp_path / "worker.log", "w") as wlog:
            worker = subprocess.Popen(
                [PREFECT, "worker", "start", "--pool", "a4nn-local"],
                cwd=ROOT,
                env=env,
                stdout=wlog,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )
            try:
                state = _wait_for_final_state(api, flow_run_id[1], worker, tmp_path)
            finally:
                os.killpg(worker.pid, 15)
                worker.wait(timeout=60)
        wtext = (tmp_path / "worker.log").read_text()
        assert state == "COMPLETED", wtext[-3000:]
        assert (out / "run.json").is_file(), wtext[-3000:]
        record = json.loads((out / "run.json").read_text())
        assert record["status"] == "finished"
        assert (out / "models.csv").read_text().count("\n") > 2
    finally:
        os.killpg(server.pid, 15)
        try:
            server.wait(timeout=30)
        except subprocess.TimeoutExpired:
            os.killpg(server.pid, 9)
        log.close()


def test_no_flows_module_shadows_the_standard_library():
    """Prefect puts an entrypoint's folder (flows/) on sys.path, and the Dask workers a flow
    run spawns inherit it: a flows/secrets.py made numpy's `from secrets import randbits`
    fail in every worker of a deployed run."""
    shadowing = [p.name for p in (ROOT / "flows").glob("*.py") if p.stem in sys.stdlib_module_names]
    assert shadowing == []
