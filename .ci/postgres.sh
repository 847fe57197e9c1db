#!/usr/bin/env bash
# A throwaway PostgreSQL server for the tests, as a user scaling sweeps out would run one:
#   eval "$(.ci/postgres.sh start)"   # prints: export WORKBENCH_TEST_POSTGRES=postgresql+psycopg://...; export WORKBENCH_PG_DIR=...
#   .ci/postgres.sh stop              # stops it and removes its folder ($WORKBENCH_PG_DIR)
# initdb and postgres refuse to run as root: as root, they run as the `postgres` account through runuser.
# The server listens on a unix socket in its own folder only (no TCP port), with trust authentication
# for that socket: nothing outside this machine can reach it.
set -euo pipefail
PG_BIN="${PG_BIN:-$(ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V | tail -1)}"
as_pg() {
  if [ "$(id -u)" = 0 ]; then runuser -u postgres -- "$@"; else "$@"; fi
}
case "${1:-}" in
  start)
    if [ -z "$PG_BIN" ] || [ ! -x "$PG_BIN/initdb" ]; then
      echo "postgres.sh: no PostgreSQL binaries (apt-get install postgresql)" >&2; exit 3
    fi
    dir="$(mktemp -d /tmp/workbench-pg.XXXXXX)"
    chmod 755 "$dir"
    [ "$(id -u)" = 0 ] && chown postgres: "$dir"
    as_pg "$PG_BIN/initdb" -D "$dir/data" -U workbench --auth=trust -E UTF8 >"$dir/initdb.log" 2>&1 \
      || { cat "$dir/initdb.log" >&2; exit 1; }
    as_pg "$PG_BIN/pg_ctl" -D "$dir/data" -l "$dir/server.log" -w -t 60 \
      -o "-c listen_addresses='' -c unix_socket_directories='$dir' -c max_connections=50 -c fsync=off" start >/dev/null \
      || { cat "$dir/server.log" >&2; exit 1; }
    as_pg "$PG_BIN/createdb" -h "$dir" -U workbench sweeps
    echo "export WORKBENCH_PG_DIR='$dir'"
    echo "export WORKBENCH_TEST_POSTGRES='postgresql+psycopg://workbench@/sweeps?host=$dir'"
    ;;
  stop)
    dir="${2:-${WORKBENCH_PG_DIR:-}}"
    [ -n "$dir" ] && [ -d "$dir/data" ] || { echo "postgres.sh: no server folder to stop" >&2; exit 0; }
    as_pg "$PG_BIN/pg_ctl" -D "$dir/data" -m fast -w stop >/dev/null || true
    rm -rf "$dir"
    ;;
  *)
    echo "usage: $0 start|stop [DIR]" >&2; exit 2 ;;
esac
