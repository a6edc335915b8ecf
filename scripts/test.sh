#!/usr/bin/env bash
# The README's second command: install (if needed), lint, check the package contracts, and
# run the whole test suite.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
export DO_NOT_TRACK=1 PREFECT_SERVER_EPHEMERAL_STARTUP_TIMEOUT_SECONDS=${PREFECT_SERVER_EPHEMERAL_STARTUP_TIMEOUT_SECONDS:-90}
.venv/bin/ruff check .
.venv/bin/ruff format --check .
.venv/bin/lint-imports   # the package contracts in pyproject.toml
exec .venv/bin/python -m pytest -q "$@"
