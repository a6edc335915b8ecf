#!/usr/bin/env bash
# Create .venv (if missing) and install A4NN with its test tools. Idempotent.
set -euo pipefail
cd "$(dirname "$0")/.."
PY=${PYTHON:-python3}
if [ ! -x .venv/bin/python ]; then
  echo "== creating .venv with $($PY --version)"
  "$PY" -m venv .venv
fi
# torch==2.13.0 is pinned in pyproject.toml: pip takes the CPU build from this machine's disk.
echo "== installing a4nn (pip install -e '.[dev,notebooks]')"
.venv/bin/python -m pip install --quiet --disable-pip-version-check -e '.[dev,notebooks]' 2>&1 \
  | grep -v "is ignored: it is neither a file nor a directory" || true
# the notebooks' kernel, "Python 3 (A4NN)": this .venv's Python, for `.venv/bin/jupyter lab`
.venv/bin/python -m ipykernel install --sys-prefix --name a4nn --display-name "Python 3 (A4NN)" \
  > /dev/null
.venv/bin/python -c "import a4nn, engine, adapters, lineage, torch; print('== installed: torch', torch.__version__)"
