#!/usr/bin/env bash
# The README's first command: set everything up, run the quickstart search on the
# embedded default (simulated XFEL data, NSGA-Net, the prediction engine stopping models
# early), then write the run's HTML report and print its path.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
export DO_NOT_TRACK=1 PREFECT_SERVER_EPHEMERAL_STARTUP_TIMEOUT_SECONDS=${PREFECT_SERVER_EPHEMERAL_STARTUP_TIMEOUT_SECONDS:-90}
out=${A4NN_OUT:-runs/quickstart}
if [ -f "$out/run.json" ]; then
  echo "== $out already holds a run: resuming it (delete it to start afresh)"
  .venv/bin/a4nn run quickstart --out "$out" --resume "$@"
else
  .venv/bin/a4nn run quickstart --out "$out" "$@"
fi
.venv/bin/a4nn report "$out" --quiet
