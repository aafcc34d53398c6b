#!/usr/bin/env bash
# pg.sh -- a throw-away PostgreSQL 15 cluster for the tests, run by Debian's own binaries as
# the unprivileged `postgres` user (initdb refuses root), in a folder of our own, on a free
# port, its socket in that folder. Nothing of the machine's own PostgreSQL is touched.
#
#   pg.sh start DIR      initdb + start (fsync off: test data), prints the port
#   pg.sh stop DIR       fast shutdown, then removes DIR
#   pg.sh createdb DIR NAME
#   pg.sh psql DIR [psql args...]
#   pg.sh available      exit 0 when the binaries are installed (scripts/deps.sh installs them)
#   pg.sh run CMD...     CMD with MP_TEST_PG_DIR set to a cluster of its own, started before
#                        and stopped after (unit tests); exit 77 (ctest: skipped) when the
#                        binaries are missing
set -euo pipefail
BIN=$(ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V | tail -1)
as_pg() { if [ "$(id -u)" = 0 ]; then runuser -u postgres -- "$@"; else "$@"; fi; }
port_of() { cat "$1/port"; }

case "${1:-}" in
available)
  [ -n "$BIN" ] && [ -x "$BIN/initdb" ] && [ -x "$BIN/pg_ctl" ] ;;
start)
  dir=$2
  [ -n "$BIN" ] || { echo "pg.sh: PostgreSQL server binaries not installed" >&2; exit 2; }
  mkdir -p "$dir"
  # the postgres user must reach it: a test's private temp folder (mode 700) gets o+x
  [ "$(id -u)" = 0 ] && { chown postgres: "$dir"; chmod o+x "$(dirname "$dir")"; }
  chmod 700 "$dir"
  as_pg "$BIN/initdb" -D "$dir/data" -A trust -U postgres --no-sync -E UTF8 --locale=C >"$dir/initdb.log" 2>&1 \
    || { cat "$dir/initdb.log" >&2; exit 1; }
  for attempt in 1 2 3 4 5; do
    port=$(/usr/bin/python3 "$(dirname "${BASH_SOURCE[0]}")/free_port.py")
    if as_pg "$BIN/pg_ctl" -D "$dir/data" -l "$dir/server.log" -w -t 30 \
        -o "-p $port -k $dir -c listen_addresses=127.0.0.1 -c fsync=off -c synchronous_commit=off -c full_page_writes=off -c max_connections=300" \
        start >/dev/null 2>&1; then
      echo "$port" > "$dir/port"; [ "$(id -u)" = 0 ] && chown postgres: "$dir/port"
      echo "$port"; exit 0
    fi
  done
  cat "$dir/server.log" >&2; exit 1 ;;
stop)
  dir=$2
  [ -d "$dir/data" ] && as_pg "$BIN/pg_ctl" -D "$dir/data" -m fast -w stop >/dev/null 2>&1 || true
  rm -rf "$dir" ;;
createdb)
  as_pg "$BIN/createdb" -h "$2" -p "$(port_of "$2")" -U postgres "$3" ;;
run)
  shift
  [ -n "$BIN" ] || { echo "pg.sh: PostgreSQL server binaries not installed (scripts/deps.sh installs postgresql): skipped" >&2; exit 77; }
  dir=$(mktemp -d /tmp/mp-pg.XXXXXX)/pg
  "$0" start "$dir" >/dev/null
  rc=0
  MP_TEST_PG_DIR=$dir "$@" || rc=$?
  "$0" stop "$dir"
  rmdir "$(dirname "$dir")" 2>/dev/null || true
  exit $rc ;;
psql)
  dir=$2; shift 2
  as_pg "$BIN/psql" -h "$dir" -p "$(port_of "$dir")" -U postgres -v ON_ERROR_STOP=1 -qAt "$@" ;;
*)
  sed -n '2,15p' "$0" >&2; exit 2 ;;
esac
