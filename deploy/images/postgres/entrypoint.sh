#!/bin/sh
# The entry point of deploy/images/postgres: on an empty $PGDATA, initdb with
# POSTGRES_USER (postgres by default) as superuser and POSTGRES_PASSWORD, then
# CREATE DATABASE POSTGRES_DB in single-user mode (no server on any socket
# meanwhile, so pg_isready cannot report ready too early); then replaces
# itself with the server, run as postgres, listening on every address.
set -eu
user=${POSTGRES_USER:-postgres}
db=${POSTGRES_DB:-$user}
as_pg() { setpriv --reuid=postgres --regid=postgres --init-groups "$@"; }
mkdir -p "$PGDATA"
chown postgres:postgres "$PGDATA"
chmod 700 "$PGDATA"
if [ ! -s "$PGDATA/PG_VERSION" ]; then
    [ -n "${POSTGRES_PASSWORD:-}" ] || { echo "POSTGRES_PASSWORD is not set" >&2; exit 1; }
    pw=$(mktemp)
    printf '%s\n' "$POSTGRES_PASSWORD" >"$pw"
    chown postgres "$pw"
    as_pg initdb -D "$PGDATA" --username="$user" --pwfile="$pw" --encoding=UTF8 --locale=C.UTF-8 \
        --auth-local=trust --auth-host=scram-sha-256 >/dev/null
    rm -f "$pw"
    echo "host all all all scram-sha-256" >>"$PGDATA/pg_hba.conf"
    if [ "$db" != postgres ]; then
        echo "CREATE DATABASE \"$db\" OWNER \"$user\";" |
            as_pg postgres --single -D "$PGDATA" -j postgres >/dev/null
    fi
    echo "imgfeed-postgres: new cluster in $PGDATA, superuser $user, database $db"
fi
exec setpriv --reuid=postgres --regid=postgres --init-groups postgres -D "$PGDATA" \
    -c listen_addresses='*' "$@"
