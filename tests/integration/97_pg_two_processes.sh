#!/usr/bin/env bash
# Two server processes on one PostgreSQL database and one storage folder ("Lock": false),
# on a throw-away PostgreSQL cluster of this scenario (tests/tools/pg.sh; scripts/deps.sh
# installs the server, so this never skips on CI):
# - the same instance sent to both processes at once, 100 times: stored once each time (one
#   Success, one AlreadyStored), one row and one file;
# - one change log: /changes is the same from both, with one global Seq;
# - /statistics agree between the processes and with the files on disk;
# - a third process with "Lock": true on the same database is refused at start;
# - PostgreSQL stopped: requests get 503 with Orthanc's JSON error, nothing half-written;
#   restarted: the processes reconnect by themselves, take their advisory locks again and
#   serve again.
source "$(dirname "$0")/lib.sh"
"$MP_SRC/tests/tools/pg.sh" available || fail "PostgreSQL server binaries missing (scripts/deps.sh installs postgresql)"
PGD="$T/pgcluster"
cleanup_hook() {
  [ -n "${PID_B:-}" ] && kill -9 "$PID_B" 2>/dev/null
  "$MP_SRC/tests/tools/pg.sh" stop "$PGD" >/dev/null 2>&1 || true
}
PGPORT=$("$MP_SRC/tests/tools/pg.sh" start "$PGD")
"$MP_SRC/tests/tools/pg.sh" createdb "$PGD" shared
PG_SECTION="\"PostgreSQL\": {\"EnableIndex\": true, \"Host\": \"127.0.0.1\", \"Port\": $PGPORT, \"Database\": \"shared\", \"Username\": \"postgres\", \"Lock\": false, \"IndexConnectionsCount\": 4}"

write_config "$PG_SECTION"
sed -i '/"PostgreSQL": {"EnableIndex": true, "Host": "127.0.0.1", "Port": [0-9]*, "Database": "it_/d' "$T/Orthanc.json"
start_server
URL_A=$URL
# Process B: same storage, same database, its own ports.
HTTP_B=$(free_port); DICOM_B=$(free_port)
sed -e "s/\"HttpPort\": $HTTP_PORT/\"HttpPort\": $HTTP_B/" -e "s/\"DicomPort\": $DICOM_PORT/\"DicomPort\": $DICOM_B/" \
  "$T/Orthanc.json" > "$T/b.json"
"$MINIPACS_BIN" "$T/b.json" >> "$T/server-b.log" 2>&1 &
PID_B=$!
URL_B="http://127.0.0.1:$HTTP_B"
for _ in $(seq 1 200); do curl -sf "$URL_B/system" >/dev/null && break; sleep 0.05; done
curl -sf "$URL_B/system" >/dev/null || { cat "$T/server-b.log"; fail "process B did not start"; }
pass "two processes on one database and one storage folder"

$PY "$MP_SRC/tests/tools/gen_study.py" "$T/in" 100 --size 32 >/dev/null
$PY - "$T/in" "$URL_A" "$URL_B" <<'PY' || fail "same instance to both processes"
import glob, json, sys, threading, urllib.request
files = sorted(glob.glob(sys.argv[1] + "/*.dcm"))
urls = sys.argv[2:4]
bad = []
for f in files:
    body = open(f, "rb").read()
    res = [None, None]
    def send(i):
        rq = urllib.request.Request(urls[i] + "/instances", data=body, method="POST")
        try:
            res[i] = json.load(urllib.request.urlopen(rq, timeout=60))["Status"]
        except Exception as e:
            res[i] = "error: %s" % e
    ts = [threading.Thread(target=send, args=(i,)) for i in (0, 1)]
    [t.start() for t in ts]; [t.join() for t in ts]
    if sorted(res) != ["AlreadyStored", "Success"]:
        bad.append((f, res))
if bad:
    sys.exit("not stored exactly once: %d of %d, e.g. %s" % (len(bad), len(files), bad[:3]))
print("100 instances sent to both processes at once: one Success and one AlreadyStored each")
PY
for u in "$URL_A" "$URL_B"; do
  [ "$(curl -sf "$u/instances" | json 'len(j)')" = 100 ] || fail "$u does not list 100 instances"
done
files=$(find "$T/db" -type f ! -name 'index.sqlite*' ! -name '*.tmp' | wc -l)
[ "$files" = 100 ] || fail "$files files in the shared storage, expected 100 (a loser's file was left behind)"
pass "same instance to both processes 100 times: stored once each time, 100 files"

a=$(curl -sf "$URL_A/changes?limit=1000"); b=$(curl -sf "$URL_B/changes?limit=1000")
[ "$a" = "$b" ] || fail "/changes differ between the processes"
echo "$a" | $PY -c '
import json, sys
j = json.load(sys.stdin); seqs = [c["Seq"] for c in j["Changes"]]
assert seqs == sorted(set(seqs)), "Seq not unique and increasing"
types = [c["ChangeType"] for c in j["Changes"]]
assert types.count("NewInstance") == 100, types.count("NewInstance")
assert types.count("NewPatient") == 1 and types.count("NewStudy") == 1 and types.count("NewSeries") == 1, types
' || fail "change log"
pass "one change log: the same from both processes, 100 NewInstance, one New* per level"

sa=$(curl -sf "$URL_A/statistics"); sb=$(curl -sf "$URL_B/statistics")
[ "$sa" = "$sb" ] || fail "statistics differ: $sa / $sb"
disk=$(find "$T/db" -type f ! -name '*.tmp' -printf '%s\n' | awk '{s+=$1} END {print s}')
[ "$(echo "$sa" | json 'j["TotalDiskSize"]')" = "$disk" ] || fail "TotalDiskSize $(echo "$sa" | json 'j["TotalDiskSize"]') != files $disk"
[ "$(echo "$sa" | json 'j["CountInstances"]')" = 100 ] || fail "CountInstances"
pass "statistics agree between the processes and with the files on disk"

# A delete on B is seen by A at once (no per-process copy of the index).
I=$(curl -sf "$URL_A/instances" | json 'j[0]')
curl -sf -X DELETE "$URL_B/instances/$I" >/dev/null || fail "delete on B"
[ "$(curl -s -o /dev/null -w '%{http_code}' "$URL_A/instances/$I")" = 404 ] || fail "A still serves an instance B deleted"
pass "a delete through B is seen by A"

# "Lock": true on a shared database is refused.
sed -e 's/"Lock": false/"Lock": true/' -e "s/\"HttpPort\": $HTTP_PORT/\"HttpPort\": $(free_port)/" \
  -e "s/\"DicomPort\": $DICOM_PORT/\"DicomPort\": $(free_port)/" "$T/Orthanc.json" > "$T/c.json"
# (A and B hold no exclusive lock; a first "Lock": true process takes it, a second is refused.)
"$MINIPACS_BIN" "$T/c.json" > "$T/server-c.log" 2>&1 & PID_C=$!
for _ in $(seq 1 100); do grep -q ready "$T/server-c.log" && break; kill -0 $PID_C 2>/dev/null || break; sleep 0.05; done
sed -e "s/\"HttpPort\": [0-9]*/\"HttpPort\": $(free_port)/" -e "s/\"DicomPort\": [0-9]*/\"DicomPort\": $(free_port)/" "$T/c.json" > "$T/d.json"
if timeout 20 "$MINIPACS_BIN" "$T/d.json" > "$T/server-d.log" 2>&1; then fail "a second Lock:true process started"; fi
grep -q 'locked by another server process' "$T/server-d.log" || { cat "$T/server-d.log"; fail "no clear message for the lock"; }
kill $PID_C; wait $PID_C 2>/dev/null || true
pass "\"Lock\": true: a second process on the same database is refused with a clear message"

# PostgreSQL away: 503 JSON; back: served again without restarting our processes.
"$MP_SRC/tests/tools/pg.sh" psql "$PGD" -d postgres -c "SELECT 1" >/dev/null
BIN=$(ls -d /usr/lib/postgresql/*/bin | sort -V | tail -1)
runuser -u postgres -- "$BIN/pg_ctl" -D "$PGD/data" -m fast -w stop >/dev/null
code=$(curl -s -o "$T/e.json" -w '%{http_code}' "$URL_A/instances")
[ "$code" = 503 ] || fail "with PostgreSQL stopped: $code $(cat "$T/e.json")"
json 'j["HttpStatus"]' < "$T/e.json" | grep -qx 503 || fail "503 without its JSON body"
f=$(ls "$T"/in/*.dcm | head -1)
code=$(curl -s -o "$T/e.json" -w '%{http_code}' -X POST --data-binary @"$f" "$URL_B/instances")
[ "$code" = 503 ] || fail "upload with PostgreSQL stopped: $code"
pass "PostgreSQL away: 503 with Orthanc's JSON error"
runuser -u postgres -- "$BIN/pg_ctl" -D "$PGD/data" -l "$PGD/server.log" -w -o "-p $PGPORT -k $PGD -c listen_addresses=127.0.0.1 -c fsync=off" start >/dev/null
ok=""
for _ in $(seq 1 50); do
  if [ "$(curl -s -o /dev/null -w '%{http_code}' "$URL_A/instances")" = 200 ] && \
     [ "$(curl -s -o /dev/null -w '%{http_code}' "$URL_B/instances")" = 200 ]; then ok=1; break; fi
  sleep 0.2
done
[ -n "$ok" ] || fail "the processes did not reconnect"
[ "$(curl -sf "$URL_A/instances" | json 'len(j)')" = 99 ] || fail "instances after the restart"
files=$(find "$T/db" -type f ! -name '*.tmp' | wc -l)
[ "$files" = 99 ] || fail "$files files after the refused upload, expected 99 (half-written?)"
pass "PostgreSQL back: both processes reconnected by themselves, nothing half-written"
# Each process holds its advisory lock (7420, owner) again: without it, the other process's
# jobs claimer would take its jobs and pending files for a dead process's.
locks=""
for _ in $(seq 1 50); do
  locks=$("$MP_SRC/tests/tools/pg.sh" psql "$PGD" -d shared -c "SELECT count(*) FROM pg_locks WHERE locktype = 'advisory' AND classid = 7420 AND objsubid = 2 AND granted")
  [ "$locks" = 2 ] && break; sleep 0.1
done
[ "$locks" = 2 ] || fail "$locks process locks held after the restart, expected 2 (one per process)"
pass "after the restart each process holds its own advisory lock again (its jobs stay its own)"
kill -TERM $PID_B; wait $PID_B 2>/dev/null || true; PID_B=""
