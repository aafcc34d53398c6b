# lib.sh -- sourced by every integration scenario (NN_<scenario>.sh).
# Gives a temp dir, free ports, a config, the real server started and waited for, and
# stops it on exit, printing its log when the scenario failed.
# Environment (set by ctest): MINIPACS_BIN, MP_SRC, PYDICOM_FILES.
set -euo pipefail
: "${MINIPACS_BIN:?MINIPACS_BIN not set (run through ctest)}"
: "${MP_SRC:=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)}"
: "${PYDICOM_FILES:=/usr/lib/python3/dist-packages/pydicom/data/test_files}"
PY=/usr/bin/python3
export TCP_NODELAY=1

T=$(mktemp -d /tmp/mp-it.XXXXXX)
SERVER_PID=""
fail() { echo "FAIL: $*" >&2; exit 1; }
pass() { echo "PASS: $*"; }

# a port for a listener this test starts (never one given before in this test): see the tool
free_port() { $PY "$MP_SRC/tests/tools/free_port.py" "$T/.ports"; }
HTTP_PORT=$(free_port)
DICOM_PORT=$(free_port)
URL="http://127.0.0.1:$HTTP_PORT"

# The index backend under test: sqlite (default) or postgresql, set by ctest when the build
# was configured with -DMINIPACS_TEST_INDEX=postgresql (scripts/test.sh with
# MINIPACS_INDEX=postgresql). With postgresql, ctest's fixture started one throw-away cluster
# (tests/tools/pg.sh, folder MP_PG_DIR) and each scenario gets a database of its own.
INDEX_BACKEND=${MINIPACS_INDEX:-sqlite}
PG_DB=""
if [ "$INDEX_BACKEND" = postgresql ]; then
  : "${MP_PG_DIR:?MP_PG_DIR not set (the pg fixture did not run)}"
  PG_DB="it_$(basename "$T" | tr -dc 'a-zA-Z0-9' | tr 'A-Z' 'a-z')"
  "$MP_SRC/tests/tools/pg.sh" createdb "$MP_PG_DIR" "$PG_DB" || { echo "FAIL: createdb $PG_DB" >&2; exit 1; }
  PG_PORT=$(cat "$MP_PG_DIR/port")
fi
# The PostgreSQL section of a configuration for this scenario's database ("" with SQLite).
pg_config() {
  [ "$INDEX_BACKEND" = postgresql ] || return 0
  printf '"PostgreSQL": {"EnableIndex": true, "Host": "127.0.0.1", "Port": %s, "Database": "%s", "Username": "postgres", "Password": "", "Lock": false},' "$PG_PORT" "$PG_DB"
}
# reset_store: an empty store again (files and index), whichever the backend.
reset_store() {
  rm -rf "$T/db"
  if [ "$INDEX_BACKEND" = postgresql ]; then
    "$MP_SRC/tests/tools/pg.sh" psql "$MP_PG_DIR" -d postgres -c "DROP DATABASE IF EXISTS $PG_DB WITH (FORCE)" >/dev/null
    "$MP_SRC/tests/tools/pg.sh" createdb "$MP_PG_DIR" "$PG_DB"
  fi
}
# index_sql SQL: runs SQL on the index of this scenario, whichever the backend (tests that
# prepare or inspect rows, e.g. pending uuids). Output: one row per line, '|' between columns.
index_sql() {
  if [ "$INDEX_BACKEND" = postgresql ]; then
    "$MP_SRC/tests/tools/pg.sh" psql "$MP_PG_DIR" -d "$PG_DB" -c "$1"
  else
    sqlite3 "$T/db/index.sqlite" "$1"
  fi
}

# write_config [extra JSON members, e.g. '"OverwriteInstances": true']
write_config() {
  local extra="${1:-}"
  cat > "$T/Orthanc.json" <<JSON
{
  // written by lib.sh
  "Name": "it",
  "StorageDirectory": "$T/db",
  "IndexDirectory": "$T/db",
  "HttpPort": $HTTP_PORT,
  "DicomPort": $DICOM_PORT,
  "SyncStorageArea": false,
  $(pg_config)
  "LogLevel": "info"${extra:+,
  $extra}
}
JSON
}

start_server() {
  [ -f "$T/Orthanc.json" ] || write_config
  "$MINIPACS_BIN" "$T/Orthanc.json" >>"$T/server.log" 2>&1 &
  SERVER_PID=$!
  for _ in $(seq 1 200); do
    if curl -sf "$URL/system" >/dev/null 2>&1; then return 0; fi
    kill -0 "$SERVER_PID" 2>/dev/null || { cat "$T/server.log" >&2; fail "server exited at start"; }
    sleep 0.05
  done
  fail "server did not answer /system"
}

stop_server() {
  if [ -n "$SERVER_PID" ] && kill -0 "$SERVER_PID" 2>/dev/null; then
    kill -TERM "$SERVER_PID"
    for _ in $(seq 1 100); do kill -0 "$SERVER_PID" 2>/dev/null || break; sleep 0.05; done
    kill -KILL "$SERVER_PID" 2>/dev/null || true
    wait "$SERVER_PID" 2>/dev/null || true
  fi
  SERVER_PID=""
}

kill9_server() {
  [ -n "$SERVER_PID" ] && kill -KILL "$SERVER_PID" 2>/dev/null || true
  wait "$SERVER_PID" 2>/dev/null || true
  SERVER_PID=""
}

on_exit() {
  local rc=$?
  # A scenario with more to stop (a second server, its own PostgreSQL) defines cleanup_hook.
  if declare -F cleanup_hook >/dev/null; then cleanup_hook || true; fi
  stop_server
  # Under ASan/UBSan (MINIPACS_SANITIZE) or TSan (MINIPACS_TSAN) a report in the server's log
  # fails the scenario, even when every request was answered (a leak is only reported at exit).
  local san='ERROR: (Address|Leak)Sanitizer|runtime error: |WARNING: ThreadSanitizer'
  if grep -aqE "$san" "$T/server.log" 2>/dev/null; then
    echo "FAIL: sanitizer report in the server log" >&2
    grep -aE -A40 "$san" "$T/server.log" | head -80 >&2
    [ $rc -ne 0 ] || rc=1
  fi
  if [ $rc -ne 0 ]; then
    echo "---- server log ($T/server.log) ----" >&2
    tail -n 80 "$T/server.log" >&2 2>/dev/null || true
  else
    rm -rf "$T"
  fi
  if [ -n "$PG_DB" ] && [ $rc -eq 0 ]; then
    "$MP_SRC/tests/tools/pg.sh" psql "$MP_PG_DIR" -d postgres -c "DROP DATABASE IF EXISTS $PG_DB WITH (FORCE)" >/dev/null 2>&1 || true
  fi
  exit $rc
}
trap on_exit EXIT

# http METHOD PATH [curl args...] -> body on stdout, status in $T/status
http() {
  local m=$1 p=$2; shift 2
  curl -s -o "$T/body" -w '%{http_code}' -X "$m" "$URL$p" "$@" > "$T/status" || true
  cat "$T/body"
}
status() { cat "$T/status"; }
# json EXPR: evaluates a Python expression on the JSON read from stdin (bound to j)
json() { $PY -c "import json,sys; j=json.load(sys.stdin); r=($1); print(r if not isinstance(r,(dict,list)) else json.dumps(r))"; }
upload() { curl -sf -X POST --data-binary @"$1" -H 'Content-Type: application/dicom' "$URL/instances"; }
