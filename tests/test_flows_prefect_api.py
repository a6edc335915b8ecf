"""Which Prefect API a search reports to (flows/search_flow.py:prefect_api): the one
`PREFECT_API_URL` names, else the temporary local server `a4nn run` starts (flows/api_server.py),
which ends with the run.

A whole `a4nn run` without `PREFECT_API_URL` (the temporary server's database in
PREFECT_HOME, the workers reporting to it, nothing outliving the command) is checked by
the resumed run of tests/test_faults_flow.py's Ctrl-C test, which runs that command
anyway: one such run instead of two, each of which starts a new Prefect server.
"""

from __future__ import annotations

import os


def test_a_set_api_url_goes_to_the_flow_and_the_workers_for_the_run_only(monkeypatch):
    from prefect.settings import PREFECT_API_URL, temporary_settings

    from flows.search_flow import prefect_api

    monkeypatch.delenv("PREFECT_API_URL", raising=False)
    url = "http://127.0.0.1:4200/api"
    with temporary_settings(updates={PREFECT_API_URL: url}), prefect_api() as used:
        assert used == url
        assert os.environ["PREFECT_API_URL"] == url  # local workers inherit it
        assert PREFECT_API_URL.value() == url  # prefect-dask ships it with every task
    assert "PREFECT_API_URL" not in os.environ
