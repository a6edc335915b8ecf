"""Prefect flows over Dask: the only package that knows about Prefect and Dask.

Environment defaults for Prefect, set before any of it is imported (here, and in the
temporary API server `a4nn run` starts from this process): no telemetry (no internet on compute nodes),
a generous start-up timeout for loaded machines, and Prefect's per-task INFO lines off
(they would scroll the live progress view away; the UI still shows every task run;
PREFECT_LOGGING_LEVEL=INFO brings them back).
"""

import os

os.environ.setdefault("DO_NOT_TRACK", "1")
os.environ.setdefault("PREFECT_SERVER_ANALYTICS_ENABLED", "false")
os.environ.setdefault("PREFECT_SERVER_EPHEMERAL_STARTUP_TIMEOUT_SECONDS", "90")
os.environ.setdefault("PREFECT_LOGGING_LEVEL", "WARNING")
