#!/usr/bin/env bash
# Optional: make sure a persistent PostgreSQL server answers on 127.0.0.1:5432 with a
# database "test" the "postgres" role reaches without a password (the local server
# `tox -e postgres` tries first).  Nothing runs this any more: without that server the tests
# start a throwaway one themselves (tests/postgres_server.py).  Starts the installed cluster
# when it is down; installs PostgreSQL (Debian packages) when it is missing.  Run as root.
set -euo pipefail

HOST=127.0.0.1
PORT=5432
DATABASE=test

ready() { pg_isready -q -h "$HOST" -p "$PORT"; }

as_postgres() {
    if [ "$(id -un)" = postgres ]; then "$@"; else su postgres -s /bin/sh -c "$(printf '%q ' "$@")"; fi
}

if command -v pg_isready >/dev/null 2>&1 && ready; then
    echo "postgres: server on $HOST:$PORT is accepting connections"
else
    if ! command -v pg_ctlcluster >/dev/null 2>&1 || [ -z "$(ls /etc/postgresql 2>/dev/null)" ]; then
        echo "postgres: not installed, installing it from Debian's packages"
        export DEBIAN_FRONTEND=noninteractive
        apt-get update -qq
        apt-get install -y -qq postgresql >/dev/null
    fi
    version=$(ls /etc/postgresql | sort -V | tail -n 1)
    echo "postgres: starting cluster $version/main"
    pg_ctlcluster --skip-systemctl-redirect "$version" main start || true
    for _ in $(seq 1 60); do
        ready && break
        sleep 1
    done
    if ! ready; then
        echo "postgres: server on $HOST:$PORT did not become ready within 60 s" >&2
        exit 1
    fi
    echo "postgres: server on $HOST:$PORT is accepting connections"
fi

# A freshly installed cluster asks for passwords over TCP and has no database "test".
if ! psql -h "$HOST" -p "$PORT" -U postgres -d postgres -w -Atqc 'SELECT 1' >/dev/null 2>&1; then
    hba=$(as_postgres psql -p "$PORT" -Atqc 'SHOW hba_file')
    echo "postgres: allowing password-less local TCP connections in $hba"
    { printf 'host all all 127.0.0.1/32 trust\nhost all all ::1/128 trust\n'; cat "$hba"; } >"$hba.new"
    cat "$hba.new" >"$hba" && rm -f "$hba.new"
    as_postgres psql -p "$PORT" -Atqc 'SELECT pg_reload_conf()' >/dev/null
    sleep 1
fi
if [ "$(psql -h "$HOST" -p "$PORT" -U postgres -d postgres -w -Atqc \
    "SELECT count(*) FROM pg_database WHERE datname = '$DATABASE'")" = 0 ]; then
    echo "postgres: creating database $DATABASE"
    psql -h "$HOST" -p "$PORT" -U postgres -d postgres -w -qc "CREATE DATABASE $DATABASE"
fi
psql -h "$HOST" -p "$PORT" -U postgres -d "$DATABASE" -w -Atqc 'SELECT 1' >/dev/null
echo "postgres: postgresql://postgres@$HOST:$PORT/$DATABASE is ready"
