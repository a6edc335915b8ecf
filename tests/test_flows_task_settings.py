"""Task runs on a Dask worker reuse the flow's validated Prefect settings
(flows/task_settings.py), and still see exactly the settings of the flow that sent them."""

from __future__ import annotations

from typing import Any

import pytest
from prefect import flow, task
from prefect.cache_policies import NO_CACHE
from prefect.settings import PREFECT_CLIENT_MAX_RETRIES, temporary_settings
from prefect_dask import DaskTaskRunner

from flows.cluster import local_cluster


@task(cache_policy=NO_CACHE, persist_result=False)
def report_settings() -> dict[str, Any]:
    """What the task run sees, then the caching wrapper put in place for the next ones."""
    from prefect.settings import get_current_settings

    from flows import task_settings

    seen = {"retries": get_current_settings().client.max_retries, **task_settings.stats()}
    seen["installed"] = task_settings.install()
    return seen


@pytest.mark.slow
def test_task_runs_reuse_the_validated_settings_of_their_own_flow(prefect_api):
    with local_cluster(1, 1, dashboard_address=":0") as cluster:
        runner = DaskTaskRunner(address=cluster.scheduler_address)

        @flow(task_runner=runner)
        def three_task_runs() -> list[dict[str, Any]]:
            return [report_settings.submit().result() for _ in range(3)]

        with temporary_settings(updates={PREFECT_CLIENT_MAX_RETRIES: 3}):
            first = three_task_runs()
        with temporary_settings(updates={PREFECT_CLIENT_MAX_RETRIES: 4}):
            second = three_task_runs()

    # every task run sees the settings of the flow run that submitted it
    assert [r["retries"] for r in first] == [3, 3, 3]
    assert [r["retries"] for r in second] == [4, 4, 4]
    assert all(r["installed"] for r in first + second)
    # one worker process: the first task run ran before the wrapper was in place, the
    # second validated the first flow's settings, the third reused them; the second
    # flow's settings differ, so they were validated once, then reused
    counts = [(r["validated"], r["reused"]) for r in first + second]
    assert counts == [(0, 0), (1, 0), (1, 1), (2, 1), (2, 2), (2, 3)]


def test_settings_key_tells_values_apart_and_ignores_set_order():
    from datetime import timedelta

    from flows.task_settings import _key_part

    assert _key_part({"b", "a"}) == _key_part({"a", "b"}) == ["'a'", "'b'"]
    assert _key_part(timedelta(seconds=5)) != _key_part(timedelta(seconds=6))


@pytest.mark.slow
def test_cached_context_matches_prefects_nests_and_serves_threads(monkeypatch):
    """In this process, without replacing Prefect's own function: the wrapper is called
    directly, so other tests keep Prefect's behaviour."""
    import threading
    from collections import OrderedDict

    from prefect.context import hydrated_context, serialize_context
    from prefect.settings import PREFECT_API_KEY, get_current_settings

    from flows import task_settings

    monkeypatch.setattr(task_settings, "_original", hydrated_context)
    monkeypatch.setattr(task_settings, "_cache", OrderedDict())
    monkeypatch.setattr(task_settings, "_stats", {"validated": 0, "reused": 0})
    wrapper = task_settings.cached_hydrated_context
    forms = {}
    for key in ("key-one", "key-two"):
        with temporary_settings(updates={PREFECT_CLIENT_MAX_RETRIES: 9, PREFECT_API_KEY: key}):
            forms[key] = serialize_context()
    outside = get_current_settings().client.max_retries

    with hydrated_context(forms["key-one"]):
        prefects = get_current_settings().model_dump()
    with wrapper(forms["key-one"]):
        assert get_current_settings().model_dump() == prefects
        with wrapper(forms["key-one"]):  # nested: each run enters its own copy
            assert get_current_settings().api.key.get_secret_value() == "key-one"
    with wrapper(forms["key-two"]):  # another secret is other settings
        assert get_current_settings().api.key.get_secret_value() == "key-two"
    assert get_current_settings().client.max_retries == outside

    errors: list[BaseException] = []

    def task_runs() -> None:
        try:
            for _ in range(10):
                with wrapper(forms["key-one"]):
                    assert get_current_settings().api.key.get_secret_value() == "key-one"
        except BaseException as err:  # reported below
            errors.append(err)

    threads = [threading.Thread(target=task_runs) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert errors == []
    assert task_settings.stats() == {"validated": 2, "reused": 41}


def test_flow_side_serializes_each_settings_context_once(monkeypatch):
    """The flow's submits reuse one serialized form per settings context, identical to
    Prefect's own, a fresh copy each time, and secrets masked or not as asked."""
    from collections import OrderedDict

    from prefect.context import SettingsContext
    from prefect.settings import PREFECT_API_KEY

    from flows import task_settings

    prefects = task_settings._original_serialize or SettingsContext.serialize
    calls = []

    def counted(ctx, include_secrets=True):
        calls.append(include_secrets)
        return prefects(ctx, include_secrets=include_secrets)

    monkeypatch.setattr(task_settings, "_original_serialize", counted)
    monkeypatch.setattr(task_settings, "_serialized", OrderedDict())
    wrapper = task_settings.cached_serialize
    with temporary_settings(updates={PREFECT_CLIENT_MAX_RETRIES: 9, PREFECT_API_KEY: "k-1"}):
        ctx = SettingsContext.get()
        first = wrapper(ctx)
        assert first == prefects(ctx)
        first["settings"]["client"]["max_retries"] = 0  # a caller changing its copy
        again = wrapper(ctx)
        assert again["settings"]["client"]["max_retries"] == 9
        assert again["settings"]["api"]["key"] == "k-1"
        masked = wrapper(ctx, include_secrets=False)
        assert "k-1" not in str(masked)
        assert wrapper(ctx, include_secrets=False) == masked
    assert calls == [True, False]  # once per context and secrets choice
    with temporary_settings(updates={PREFECT_CLIENT_MAX_RETRIES: 4}):
        other = wrapper(SettingsContext.get())
    assert other["settings"]["client"]["max_retries"] == 4
    assert calls == [True, False, True]
