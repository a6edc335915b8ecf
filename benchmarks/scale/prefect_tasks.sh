#!/usr/bin/env bash
# prefect_tasks.py against one deployment, each on an empty Prefect database:
#
#   bash benchmarks/scale/prefect_tasks.sh ephemeral      WORKDIR N...   # PREFECT_API_URL unset
#   bash benchmarks/scale/prefect_tasks.sh server-sqlite  WORKDIR N...   # prefect server start
#   bash benchmarks/scale/prefect_tasks.sh server-postgres WORKDIR N...  # scripts/prefect_server_postgres.sh
#
# from the repository root, with `prefect` and the project's Python on PATH (PYTHON=...).
# WORKDIR/<deployment> holds the database and the server's log. Results are merged into
# benchmarks/scale/PREFECT.json / PREFECT.md.
set -euo pipefail
dep=$1
work=$2
shift 2
py=${PYTHON:-python}
home=$work/$dep
mkdir -p "$home"
export PREFECT_SERVER_EPHEMERAL_STARTUP_TIMEOUT_SECONDS=${PREFECT_SERVER_EPHEMERAL_STARTUP_TIMEOUT_SECONDS:-900}
export PREFECT_SERVER_ANALYTICS_ENABLED=false
bench=(benchmarks/scale/prefect_tasks.py --deployment "$dep" --n "$@")

wait_health() {
    for _ in $(seq 1200); do
        "$py" -c 'import sys, urllib.request; urllib.request.urlopen(sys.argv[1], timeout=2)' "$1" 2>/dev/null && return 0
        sleep 0.5
    done
    echo "no answer from $1" >&2
    return 1
}

case $dep in
ephemeral)
    PREFECT_HOME=$home/home env -u PREFECT_API_URL "$py" "${bench[@]}"
    ;;
server-sqlite)
    port=$("$py" -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
    PREFECT_HOME=$home/home prefect server start --host 127.0.0.1 --port "$port" >"$home/prefect.log" 2>&1 &
    pid=$!
    trap 'kill -TERM $pid; wait $pid || true' EXIT
    wait_health "http://127.0.0.1:$port/api/health"
    PREFECT_API_URL=http://127.0.0.1:$port/api "$py" "${bench[@]}"
    ;;
server-postgres)
    trap 'bash scripts/prefect_server_postgres.sh stop "$home"' EXIT
    line=$(bash scripts/prefect_server_postgres.sh start "$home" | grep '^export PREFECT_API_URL=')
    PREFECT_API_URL=${line#export PREFECT_API_URL=} "$py" "${bench[@]}"
    ;;
*)
    echo "unknown deployment $dep" >&2
    exit 2
    ;;
esac
