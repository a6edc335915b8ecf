#!/usr/bin/env bash
# Measure the README's first command from a fresh clone, and the same search with the
# engine off, then record both in benchmarks/quickstart/RESULTS.md and results.json:
#   bash benchmarks/quickstart/measure.sh
# 1. `bash scripts/quickstart.sh --quiet` in a fresh clone, timed: creates .venv, installs
#    (JupyterLab included), simulates the data, runs the search, writes the report;
# 2. the same config with `engine: {preset: "off"}` (every model trained to the budget);
# 3. `a4nn report` of both side by side, rendered by headless Chromium when installed;
# 4. compare.py: epochs saved, the best model's accuracy with and without the engine,
#    wall times, against the targets (>= 25% saved, within 1 point, <= 300 s).
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
repo=$(cd "$here/../.." && pwd)
work=${A4NN_MEASURE_DIR:-$(mktemp -d)}
git clone -q "$repo" "$work/a4nn"
cd "$work/a4nn"
echo "== fresh clone in $work/a4nn ($(git log --oneline -1))"
start=$(date +%s.%N)
bash scripts/quickstart.sh --quiet > "$work/quickstart.log" 2>&1
end=$(date +%s.%N)
python3 -c "print(f'{$end - $start:.1f}')" > "$work/quickstart.seconds"
echo "== quickstart: $(cat "$work/quickstart.seconds") s"
# the engine-off twin: the embedded config with only the engine changed
.venv/bin/python - <<'PY'
import yaml
from a4nn.config import embedded_config_path
cfg = yaml.safe_load(embedded_config_path("quickstart").read_text())
cfg["name"] = "quickstart-engine-off"
cfg["engine"] = {"preset": "off"}
open("quickstart-engine-off.yaml", "w").write(yaml.safe_dump(cfg, sort_keys=False))
PY
start=$(date +%s.%N)
.venv/bin/a4nn run quickstart-engine-off.yaml --out runs/quickstart-engine-off --quiet \
  > "$work/engine-off.log" 2>&1
end=$(date +%s.%N)
python3 -c "print(f'{$end - $start:.1f}')" > "$work/engine-off.seconds"
echo "== engine off: $(cat "$work/engine-off.seconds") s"
.venv/bin/a4nn report runs/quickstart --compare runs/quickstart-engine-off \
  --out "$work/report.html" --quiet
if command -v chromium > /dev/null; then
  bash scripts/screenshot_report.sh "$work/report.html" "$work/report.png" 1240 1700 > /dev/null
fi
.venv/bin/python "$here/compare.py" runs/quickstart runs/quickstart-engine-off \
  --quickstart-seconds "$(cat "$work/quickstart.seconds")" \
  --off-seconds "$(cat "$work/engine-off.seconds")" \
  --log "$work/quickstart.log" --out "$here"
echo "== work folder (logs, report.html, report.png): $work"
