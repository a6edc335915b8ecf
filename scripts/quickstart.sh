#!/usr/bin/env bash
# The README's first command: set everything up, then run the quickstart search on the
# embedded default (simulated XFEL data, NSGA-Net, the paper's engine).
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
export DO_NOT_TRACK=1 PREFECT_SERVER_EPHEMERAL_STARTUP_TIMEOUT_SECONDS=${PREFECT_SERVER_EPHEMERAL_STARTUP_TIMEOUT_SECONDS:-90}
out=${A4NN_OUT:-runs/quickstart}
if [ -f "$out/run.json" ]; then
  echo "== $out already holds a run: resuming it (delete it to start afresh)"
  exec .venv/bin/a4nn run quickstart --out "$out" --resume "$@"
fi
exec .venv/bin/a4nn run quickstart --out "$out" "$@"
