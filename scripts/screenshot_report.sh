#!/usr/bin/env bash
# Render an `a4nn report` HTML file to a PNG with headless Chromium (Debian: apt-get
# install chromium), to look at what a user sees:
#   bash scripts/screenshot_report.sh REPORT.html OUT.png [WIDTH] [HEIGHT]
set -euo pipefail
html=$(realpath "$1")
out=$(realpath -m "$2")
width=${3:-1280}
height=${4:-2400}
browser=$(command -v chromium || command -v chromium-browser || command -v google-chrome || true)
if [ -z "$browser" ]; then
  echo "screenshot_report.sh: no chromium found (apt-get install chromium)" >&2
  exit 2
fi
profile=$(mktemp -d)
trap 'rm -rf "$profile"' EXIT
"$browser" --headless --no-sandbox --disable-gpu --hide-scrollbars --user-data-dir="$profile" \
  --window-size="${width},${height}" --screenshot="$out" "file://$html" >/dev/null 2>&1
test -s "$out"
echo "$out"
