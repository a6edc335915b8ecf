#!/usr/bin/env bash
# Time the README's first command from a fresh clone (install + quickstart search) and
# record wall time and epochs saved in benchmarks/quickstart/RESULTS.md.
#   bash benchmarks/quickstart/measure.sh
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
repo=$(cd "$here/../.." && pwd)
work=$(mktemp -d)
git clone -q "$repo" "$work/a4nn"
cd "$work/a4nn"
start=$(date +%s.%N)
bash scripts/quickstart.sh --quiet > "$work/quickstart.log" 2>&1
end=$(date +%s.%N)
wall=$(python3 -c "print(f'{$end - $start:.0f}')")
install=$(grep -m1 -o "== installed" "$work/quickstart.log" >/dev/null && echo yes || echo no)
summary=$(sed -n '/^Run directory:/,$p' "$work/quickstart.log")
{
  echo "# Quickstart (README's first command)"
  echo
  echo "Machine: $(uname -srm), $(nproc) cores, $(python3 --version 2>&1); $(date -u +%Y-%m-%d)."
  echo "Command: \`bash scripts/quickstart.sh --quiet\` in a fresh clone (creates .venv, installs, simulates the data, runs the search)."
  echo
  echo "Wall time, install included: **${wall} s** (target: at most 900 s)."
  echo
  echo '```'
  echo "$summary"
  echo '```'
} > "$here/RESULTS.md"
cat "$here/RESULTS.md"
rm -rf "$work"
