"""The search as a Prefect flow on a real local Dask cluster (flows/search_flow.py).

One Prefect test server serves the whole session (`prefect_api` in conftest.py). The
searches are tiny (12x12 images, a handful of 4-channel models, a few epochs).
"""

from __future__ import annotations

import contextlib
import csv
import dataclasses
import json
from pathlib import Path

import pandas as pd
import pytest

from a4nn.config import load_config
from a4nn.registry import register_adapter
from a4nn.search import run_search_local
from lineage.run_dir import RunDir
from tests.support_flows import FLOW, write_blobs, write_flow_config

pytestmark = [pytest.mark.usefixtures("prefect_api"), pytest.mark.slow]


def _flow_config(tiny_config, **over):
    orch = {**FLOW, **over.pop("orchestration", {})}
    return load_config(tiny_config(orchestration=orch, **over))


def _tables(out: Path) -> tuple[pd.DataFrame, pd.DataFrame]:
    return pd.read_csv(out / "models.csv"), pd.read_csv(out / "epochs.csv")


@pytest.fixture(scope="module")
def reference_runs(tmp_path_factory):
    """The medium search run once as a flow and once as the plain loop (same seeds).

    The fault test replays it with kills and must end with the same tables.
    """
    from flows.search_flow import run_search_flow

    base = tmp_path_factory.mktemp("ref")
    config = _medium_config(base)
    cfg = load_config(config)
    run_search_flow(cfg, base / "flow")
    run_search_local(cfg, base / "plain")
    return config, base / "flow", base / "plain"


def test_flow_trains_the_same_models_as_the_plain_loop(reference_runs):
    _, flow_out, plain_out = reference_runs
    fm, fe = _tables(flow_out)
    pm, pe = _tables(plain_out)
    key = ["model_id"]
    fm, pm = fm.sort_values(key).reset_index(drop=True), pm.sort_values(key).reset_index(drop=True)
    pd.testing.assert_series_equal(fm["genome"], pm["genome"])
    pd.testing.assert_series_equal(fm["epochs_trained"], pm["epochs_trained"])
    pd.testing.assert_series_equal(fm["fitness"], pm["fitness"], rtol=1e-6)
    cols = ["model_id", "epoch", "val_acc", "train_loss", "prediction"]
    fe = fe.sort_values(["model_id", "epoch"]).reset_index(drop=True)[cols]
    pe = pe.sort_values(["model_id", "epoch"]).reset_index(drop=True)[cols]
    pd.testing.assert_frame_equal(fe, pe, rtol=1e-6)
    assert (_tables(flow_out)[1]["engine_family"] == "previous_builds").any()
    meta = json.loads((flow_out / "run.json").read_text())
    assert meta["status"] == "finished" and meta["orchestration"]["slots"] == 2
    assert RunDir(flow_out).load_in_flight() == []


def test_prefect_records_one_task_run_per_model(reference_runs):
    from prefect import get_client
    from prefect.client.schemas.filters import FlowRunFilter, FlowRunFilterName
    from prefect.utilities.asyncutils import run_coro_as_sync

    config, flow_out, _ = reference_runs
    name = load_config(config).name
    models = set(_tables(flow_out)[0]["model_id"])

    async def task_run_names() -> list[str]:
        async with get_client() as client:
            runs = await client.read_flow_runs(
                flow_run_filter=FlowRunFilter(name=FlowRunFilterName(any_=[name]))
            )
            names: list[str] = []
            for fr in runs:
                trs = await client.read_task_runs(
                    flow_run_filter=FlowRunFilter(id={"any_": [fr.id]})
                )
                names += [t.name for t in trs if t.state and t.state.is_completed()]
            return names

    names = run_coro_as_sync(task_run_names())
    assert sorted(names) == sorted(f"model-{m}" for m in models)


class BreakOne:
    """NSGA-Net in steady state, except that model 1's architecture builds no network."""

    def __init__(self, inner):
        self.inner = inner

    def __getattr__(self, name):
        return getattr(self.inner, name)

    def ask(self, *a, **k):
        out = []
        for c in self.inner.ask(*a, **k):
            if c.model_id == 1:
                c = dataclasses.replace(c, arch=[[7, 7]])
            out.append(c)
        return out


def make_break_one(space, options, seed):
    from a4nn.registry import create_adapter

    return BreakOne(create_adapter("nsganet", space, options, seed))


register_adapter("nsganet-break-one", make_break_one, replace=True)


def test_async_mode_and_a_model_that_raises(tiny_config, tmp_path):
    """Steady-state mode with an adapter (a plugin: this file) whose second proposal has
    an architecture no network can be built from: that model is recorded as failed,
    with the error, and the search goes on to the end of its budget."""
    from flows.search_flow import run_search_flow

    search = {
        "adapter": "nsganet-break-one",
        "options": {
            "preset": "quickstart",
            "pop_size": 3,
            "n_offspring": 2,
            "n_generations": 2,
            "mode": "steady_state",
        },
    }
    cfg = _flow_config(tiny_config, plugins=[__name__], search=search)
    out = tmp_path / "async"
    summary = run_search_flow(cfg, out)
    models, epochs = _tables(out)
    assert summary["models"] == len(models) == 5 and summary["failed"] == 1
    by_id = models.set_index("model_id")
    assert by_id.loc[1, "status"] == "failed"
    assert "architecture cannot build a network" in by_id.loc[1, "reason"]
    assert (by_id.drop(index=1)["status"] != "failed").all()
    assert len(epochs) == models["epochs_trained"].sum()
    assert not epochs.duplicated(["model_id", "epoch"]).any()
    meta = json.loads((out / "run.json").read_text())
    assert RunDir(out).load_in_flight() == [] and meta["orchestration"]["mode"] == "steady_state"
    state = json.loads((out / "adapter_state.json").read_text())
    assert state["mode"] == "steady_state" and state["counters"]["told"] == 5


def test_worker_cache_loads_data_once_per_worker(tiny_config):
    """Two models on one worker process: the data is loaded once, then reused."""
    from distributed import Client

    from flows import worker_cache
    from flows.cluster import local_cluster

    cfg = load_config(tiny_config())
    config = cfg.model_dump(mode="json")
    with local_cluster(1, 1, dashboard_address=":0") as cluster, Client(cluster) as client:
        for _ in range(2):
            ctx_key = client.submit(
                lambda c: worker_cache.get_context(c).key, config, pure=False
            ).result()
        info = next(iter(client.run(worker_cache.cache_info).values()))
    assert info["loads"] == 1 and info["cached"] == [ctx_key]


# -- faults, with real processes ------------------------------------------------------------
def _medium_config(root: Path) -> Path:
    """A search whose epochs take a fraction of a second, so kills land mid-training."""
    npz = write_blobs(root / "medium.npz", n_train=480)
    return write_flow_config(root / "medium.yaml", npz, "medium", epochs=6)


def _start_run(config: Path, out: Path, api: str, *extra: str):
    import os
    import subprocess
    import sys

    env = {**os.environ, "PREFECT_API_URL": api, "PYTHONUNBUFFERED": "1"}
    log = open(out.parent / f"{out.name}.log", "ab")  # noqa: SIM115 (closed by the caller)
    proc = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "a4nn.cli",
            "run",
            str(config),
            "--out",
            str(out),
            "--quiet",
            *extra,
        ],
        env=env,
        stdout=log,
        stderr=subprocess.STDOUT,
        start_new_session=True,  # its own process group: the flow-kill test kills it whole
    )
    return proc, log


def _wait_for(pred, proc, timeout: float, what: str) -> None:
    import time

    t_end = time.monotonic() + timeout
    while time.monotonic() < t_end:
        if pred():
            return
        if proc.poll() is not None:
            raise AssertionError(f"the run exited ({proc.returncode}) before {what}")
        time.sleep(0.05)
    raise AssertionError(f"timed out waiting for {what}")


def _checkpointed(out: Path) -> dict[int, int]:
    """Verified checkpoints (recorded with their SHA-256) of models still training.

    Read with the csv module, not pandas: it is polled every 50 ms while the run trains,
    on the same two cores (a tenth of the CPU time per poll)."""
    rows = {}
    for d in (out / "models").glob("*"):
        meta, epochs = d / "model.json", d / "epochs.csv"
        if not (epochs.exists() and meta.exists()) or '"result"' in meta.read_text():
            continue
        try:
            with epochs.open(newline="") as f:
                reader = csv.DictReader(f)
                if reader.fieldnames is None:  # not even its header yet
                    continue
                records = list(reader)
        except FileNotFoundError:
            continue
        rows[int(d.name)] = sum(bool(r.get("checkpoint_sha256")) for r in records)
    return rows


def _resumed(out: Path) -> list[int]:
    """`resumed_from_epoch` of every model whose folder records one (0 otherwise)."""
    values = []
    for path in (out / "models").glob("*/model.json"):
        with contextlib.suppress(ValueError, OSError):
            values.append(int(json.loads(path.read_text()).get("resumed_from_epoch", 0)))
    return values


def _dask_workers(pid: int) -> list:
    import psutil

    kids = psutil.Process(pid).children(recursive=True)
    return [p for p in kids if "spawn_main" in " ".join(p.cmdline())]


def _finished_epochs(out: Path) -> dict[str, bytes]:
    """`epochs.csv` of every model whose `model.json` holds a result."""
    return {
        d.name: (d / "epochs.csv").read_bytes()
        for d in (out / "models").glob("*")
        if '"result"' in (d / "model.json").read_text()
    }


def _resume_to_the_end(config: Path, out: Path, api: str, finished: dict[str, bytes]) -> None:
    """`a4nn run --resume` to completion; the models finished before are not retrained."""
    import os
    import signal

    proc, log = _start_run(config, out, api, "--resume")
    try:
        assert proc.wait(timeout=600) == 0, (out.parent / f"{out.name}.log").read_text()[-3000:]
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
        log.close()
    for name, before in finished.items():
        assert (out / "models" / name / "epochs.csv").read_bytes() == before


def test_worker_kill_then_flow_kill_then_resume(reference_runs, tmp_path, prefect_api):
    """Real processes: `kill -9` a Dask worker mid-model, later kill the whole flow
    (process group) mid-generation, then `a4nn run --resume`. The run must end with
    exactly the tables of the uninterrupted reference: the same proposals (adapter state
    restored), the same training (the killed model resumed from its last checkpoint),
    no lineage row twice, and the models finished before the flow kill left untouched.
    """
    import os
    import signal

    config, ref, _ = reference_runs
    out = tmp_path / "faults"
    proc, log = _start_run(config, out, prefect_api)
    try:
        # 1. both workers mid-model (a verified checkpoint, epochs still to go): kill one
        _wait_for(
            lambda: len(r := _checkpointed(out)) >= 2 and all(1 <= v <= 4 for v in r.values()),
            proc,
            300,
            "two models with a checkpointed epoch",
        )
        workers = _dask_workers(proc.pid)
        assert len(workers) == 2
        training = _checkpointed(out)
        os.kill(workers[0].pid, signal.SIGKILL)
        # the killed worker's model is taken up again, from its checkpoint
        _wait_for(lambda: max(_resumed(out), default=0) >= 1, proc, 300, "the model to resume")
        # 2. a generation told (adapter state saved), a model mid-training: kill everything
        _wait_for(
            lambda: (
                (out / "adapter_state.json").exists()
                and any(1 <= v <= 4 for v in _checkpointed(out).values())
            ),
            proc,
            300,
            "the second generation to start",
        )
        os.killpg(proc.pid, signal.SIGKILL)  # flow process and its workers, at once
        proc.wait(timeout=60)
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
        log.close()
    # the model of the killed worker went on from its checkpoint (and kept that record)
    assert max(_resumed(out)) >= 1, f"training at the kill: {training}"
    finished = _finished_epochs(out)
    assert finished, "no model had finished before the flow was killed"
    _resume_to_the_end(config, out, prefect_api, finished)
    models, epochs = _tables(out)
    ref_models, ref_epochs = _tables(ref)
    assert (models["status"] != "failed").all()
    assert not epochs.duplicated(["model_id", "epoch"]).any()  # no lineage row twice
    a = models.set_index("model_id").sort_index()
    b = ref_models.set_index("model_id").sort_index()
    for col in ("genome", "parents", "generation"):  # the same proposals
        pd.testing.assert_series_equal(a[col], b[col])
    pd.testing.assert_series_equal(a["fitness"], b["fitness"], rtol=1e-6)
    cols, key = ["model_id", "epoch", "val_acc", "prediction"], ["model_id", "epoch"]
    pd.testing.assert_frame_equal(  # the same training, epoch by epoch
        epochs.sort_values(key).reset_index(drop=True)[cols],
        ref_epochs.sort_values(key).reset_index(drop=True)[cols],
        rtol=1e-6,
    )
    assert json.loads((out / "run.json").read_text())["status"] == "finished"


def test_async_flow_kill_then_resume_proposes_what_it_would_have(
    reference_runs, tmp_path, prefect_api
):
    """Async (steady-state) mode on one GPU slot, so that the uninterrupted order is
    deterministic: kill the whole flow (process group) after some models were told and
    with one in flight, then `--resume`. Finished models are not retrained, the in-flight
    one resumes, and the adapter proposes exactly what the uninterrupted search proposed.

    The uninterrupted search is the plain loop's (one slot too, the same scheduler): the
    killed and resumed flow must match it, proposals and training."""
    import os
    import signal

    import yaml

    medium, _, _ = reference_runs
    cfg = yaml.safe_load(Path(medium).read_text())
    cfg["orchestration"] = {**cfg["orchestration"], "n_workers": 1}
    cfg["search"]["options"]["mode"] = "steady_state"
    config = tmp_path / "async.yaml"
    config.write_text(yaml.safe_dump(cfg))
    ref = tmp_path / "ref"
    run_search_local(load_config(config), ref)

    out = tmp_path / "killed"
    proc, log = _start_run(config, out, prefect_api)
    try:
        _wait_for(
            lambda: (
                sum('"result"' in p.read_text() for p in (out / "models").glob("*/model.json")) >= 3
                and any(1 <= v <= 4 for v in _checkpointed(out).values())
            ),
            proc,
            300,
            "three models told and one mid-training",
        )
        os.killpg(proc.pid, signal.SIGKILL)
        proc.wait(timeout=60)
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
        log.close()
    assert RunDir(out).load_in_flight(), "nothing was in flight"
    _resume_to_the_end(config, out, prefect_api, _finished_epochs(out))
    assert max(_resumed(out)) >= 1  # the in-flight model went on from its checkpoint
    models, epochs = _tables(out)
    ref_models, ref_epochs = _tables(ref)
    assert not epochs.duplicated(["model_id", "epoch"]).any()
    a = models.set_index("model_id").sort_index()
    b = ref_models.set_index("model_id").sort_index()
    for col in ("genome", "parents", "generation"):  # the same proposals
        pd.testing.assert_series_equal(a[col], b[col])
    cols, key = ["model_id", "epoch", "val_acc", "prediction"], ["model_id", "epoch"]
    pd.testing.assert_frame_equal(
        epochs.sort_values(key).reset_index(drop=True)[cols],
        ref_epochs.sort_values(key).reset_index(drop=True)[cols],
        rtol=1e-6,
    )
    meta = json.loads((out / "run.json").read_text())
    assert meta["status"] == "finished" and RunDir(out).load_in_flight() == []
