#!/usr/bin/env bash
# A Prefect server backed by PostgreSQL, on loopback, for large searches (docs/flows.md).
#
#   bash scripts/prefect_server_postgres.sh start DIR [PREFECT_PORT]   # prints the export line
#   export PREFECT_API_URL=http://127.0.0.1:PORT/api                   # as printed
#   a4nn run my.yaml --out runs/big
#   bash scripts/prefect_server_postgres.sh stop DIR
#
# DIR holds everything: the database cluster (DIR/pg, made by initdb on the first start and
# reused after), its password (DIR/pg-password, mode 600), sockets (DIR/run), logs
# (DIR/logs), Prefect's home (DIR/prefect-home) and the settings of the running pair
# (DIR/server.env). PostgreSQL listens on 127.0.0.1 only and asks for the password;
# Prefect gets it through its own setting PREFECT_API_DATABASE_CONNECTION_URL
# (postgresql+asyncpg://..., asyncpg is installed with Prefect's server extras).
#
# Needs PostgreSQL's server programs (Debian: apt-get install postgresql; initdb and
# pg_ctl on PATH, or in /usr/lib/postgresql/*/bin) and `prefect` on PATH (PREFECT=...
# names another). PostgreSQL refuses to run as root: as root, the database's programs run
# as the user `postgres` (PG_USER=...), which must be able to reach DIR.
set -euo pipefail

cmd=${1:-}
dir=${2:-}
if [[ -z $cmd || -z $dir ]]; then
    sed -n '2,8p' "$0" >&2
    exit 2
fi
mkdir -p "$dir"
dir=$(cd "$dir" && pwd)
PREFECT=${PREFECT:-prefect}
# the Python that runs Prefect (it has asyncpg), for creating the database
PYTHON=${PYTHON:-$(dirname "$(command -v "$PREFECT" || echo /usr/bin/python3)")/python}
[[ -x $PYTHON ]] || PYTHON=python3

pg_bin() { # initdb / pg_ctl: on PATH, else Debian's versioned folder
    if command -v "$1" >/dev/null 2>&1; then
        command -v "$1"
        return
    fi
    local found
    found=$(ls -d /usr/lib/postgresql/*/bin/"$1" 2>/dev/null | sort -V | tail -n 1 || true)
    if [[ -z $found ]]; then
        echo "prefect_server_postgres: $1 not found (install PostgreSQL's server package)" >&2
        exit 3
    fi
    echo "$found"
}

as_pg() { # run a PostgreSQL program as a non-root user
    if [[ $(id -u) -eq 0 ]]; then
        runuser -u "${PG_USER:-postgres}" -- "$@"
    else
        "$@"
    fi
}

free_port() {
    python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'
}

wait_http() { # url seconds
    local i
    for ((i = 0; i < $2 * 2; i++)); do
        if python3 -c 'import sys, urllib.request; urllib.request.urlopen(sys.argv[1], timeout=2)' "$1" 2>/dev/null; then
            return 0
        fi
        sleep 0.5
    done
    return 1
}

start() {
    local initdb pg_ctl pg_port api_port pw url
    initdb=$(pg_bin initdb)
    pg_ctl=$(pg_bin pg_ctl)
    mkdir -p "$dir/logs" "$dir/run" "$dir/prefect-home"
    if [[ -f $dir/server.env ]]; then
        echo "prefect_server_postgres: $dir/server.env exists: stop the running server first" >&2
        exit 4
    fi
    if [[ $(id -u) -eq 0 ]]; then # the database's files belong to its user
        chown "${PG_USER:-postgres}" "$dir/logs" "$dir/run"
    fi
    if [[ ! -f $dir/pg/PG_VERSION ]]; then
        (umask 077 && python3 -c 'import secrets; print(secrets.token_urlsafe(24))' >"$dir/pg-password")
        mkdir -p "$dir/pg"
        chmod 700 "$dir/pg"
        if [[ $(id -u) -eq 0 ]]; then
            chown "${PG_USER:-postgres}" "$dir/pg" "$dir/pg-password"
        fi
        as_pg "$initdb" -D "$dir/pg" -U prefect --pwfile="$dir/pg-password" \
            --auth=scram-sha-256 -E UTF8 >"$dir/logs/initdb.log" 2>&1 || {
            cat "$dir/logs/initdb.log" >&2
            exit 5
        }
    fi
    pw=$(cat "$dir/pg-password")
    pg_port=${PG_PORT:-$(free_port)}
    api_port=${3:-${PREFECT_PORT:-$(free_port)}}
    as_pg "$pg_ctl" -D "$dir/pg" -l "$dir/logs/postgres.log" -w -t 120 \
        -o "-c listen_addresses=127.0.0.1 -p $pg_port -k $dir/run" start >/dev/null
    # the database Prefect uses (kept between starts)
    "$PYTHON" - "$pg_port" "$pw" <<'EOF'
import asyncio, sys

import asyncpg

async def main(port: int, pw: str) -> None:
    conn = await asyncpg.connect(host="127.0.0.1", port=port, user="prefect", password=pw,
                                 database="postgres")
    try:
        if not await conn.fetchval("SELECT 1 FROM pg_database WHERE datname = 'prefect'"):
            await conn.execute("CREATE DATABASE prefect")
    finally:
        await conn.close()

asyncio.run(main(int(sys.argv[1]), sys.argv[2]))
EOF
    url="postgresql+asyncpg://prefect:${pw}@127.0.0.1:${pg_port}/prefect"
    PREFECT_HOME="$dir/prefect-home" \
        PREFECT_API_DATABASE_CONNECTION_URL="$url" \
        PREFECT_SERVER_ANALYTICS_ENABLED=false \
        nohup "$PREFECT" server start --host 127.0.0.1 --port "$api_port" \
        >"$dir/logs/prefect.log" 2>&1 </dev/null &
    local pid=$!
    {
        echo "PREFECT_PID=$pid"
        echo "PG_PORT=$pg_port"
        echo "PREFECT_API_URL=http://127.0.0.1:$api_port/api"
    } >"$dir/server.env"
    if ! wait_http "http://127.0.0.1:$api_port/api/health" "${START_TIMEOUT:-300}"; then
        echo "prefect_server_postgres: the Prefect server did not answer; $dir/logs/prefect.log:" >&2
        tail -n 30 "$dir/logs/prefect.log" >&2
        stop
        exit 6
    fi
    echo "export PREFECT_API_URL=http://127.0.0.1:$api_port/api"
}

stop() {
    local pg_ctl
    pg_ctl=$(pg_bin pg_ctl)
    if [[ -f $dir/server.env ]]; then
        local pid
        pid=$(sed -n 's/^PREFECT_PID=//p' "$dir/server.env")
        if [[ -n $pid ]] && kill -0 "$pid" 2>/dev/null; then
            kill -TERM "$pid"
            for _ in $(seq 60); do
                kill -0 "$pid" 2>/dev/null || break
                sleep 0.5
            done
            if kill -0 "$pid" 2>/dev/null; then
                echo "prefect_server_postgres: the Prefect server ($pid) did not stop in 30 s; killing it" >&2
                kill -KILL "$pid" 2>/dev/null || true
            fi
        fi
        rm -f "$dir/server.env"
    fi
    if [[ -f $dir/pg/postmaster.pid ]]; then
        as_pg "$pg_ctl" -D "$dir/pg" -m fast -w stop >/dev/null
    fi
}

case $cmd in
start) start "$@" ;;
stop) stop ;;
*)
    echo "prefect_server_postgres: unknown command $cmd (start | stop)" >&2
    exit 2
    ;;
esac
