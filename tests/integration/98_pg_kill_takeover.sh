#!/usr/bin/env bash
# Two processes on one PostgreSQL index and one storage folder under load, one killed -9:
# - 8 REST uploaders and 4 storescu associations split across processes A and B, deletes on
#   B, and an anonymization job running on A;
# - A is killed -9 while its job is partly done: B keeps serving, takes the orphaned job over
#   (its process's advisory lock is gone) and finishes it into ONE anonymized study;
# - afterwards index and files agree exactly (no orphan, no missing file, no duplicate), the
#   counts are exact, and A restarted finds nothing to recover twice.
source "$(dirname "$0")/lib.sh"
"$MP_SRC/tests/tools/pg.sh" available || fail "PostgreSQL server binaries missing (scripts/deps.sh installs postgresql)"
PGD="$T/pgcluster"
PID_B=""
cleanup_hook() {
  [ -n "${PID_B:-}" ] && kill -9 "$PID_B" 2>/dev/null
  "$MP_SRC/tests/tools/pg.sh" stop "$PGD" >/dev/null 2>&1 || true
}
PGPORT=$("$MP_SRC/tests/tools/pg.sh" start "$PGD")
"$MP_SRC/tests/tools/pg.sh" createdb "$PGD" shared
write_config "\"ConcurrentJobs\": 1, \"PostgreSQL\": {\"EnableIndex\": true, \"Host\": \"127.0.0.1\", \"Port\": $PGPORT, \"Database\": \"shared\", \"Username\": \"postgres\", \"Lock\": false}"
sed -i '/"PostgreSQL": {"EnableIndex": true, "Host": "127.0.0.1", "Port": [0-9]*, "Database": "it_/d' "$T/Orthanc.json"
start_server
URL_A=$URL
HTTP_B=$(free_port); DICOM_B=$(free_port)
sed -e "s/\"HttpPort\": $HTTP_PORT/\"HttpPort\": $HTTP_B/" -e "s/\"DicomPort\": $DICOM_PORT/\"DicomPort\": $DICOM_B/" "$T/Orthanc.json" > "$T/b.json"
"$MINIPACS_BIN" "$T/b.json" >> "$T/server-b.log" 2>&1 & PID_B=$!
URL_B="http://127.0.0.1:$HTTP_B"
for _ in $(seq 1 200); do curl -sf "$URL_B/system" >/dev/null && break; sleep 0.05; done

# The study the job anonymizes, stored through A.
$PY "$MP_SRC/tests/tools/gen_study.py" "$T/job" 300 --size 32 --patient JOBPAT --seed 3 >/dev/null
for f in "$T"/job/*.dcm; do curl -sf -X POST --data-binary @"$f" "$URL_A/instances" >/dev/null || fail "upload $f"; done
S=$(curl -sf "$URL_A/studies" | json 'j[0]')
# The load: other patients, split across A and B.
$PY "$MP_SRC/tests/tools/gen_study.py" "$T/rest" 160 --size 32 --patient RESTPAT --seed 4 >/dev/null
$PY "$MP_SRC/tests/tools/gen_study.py" "$T/dimse" 80 --size 32 --patient DIMSEPAT --seed 5 >/dev/null
rest=( "$T"/rest/*.dcm ); dimse=( "$T"/dimse/*.dcm ); loaders=()
for k in 0 1 2 3 4 5 6 7; do
  url=$URL_A; [ $((k % 2)) = 1 ] && url=$URL_B
  ( for ((i = k; i < ${#rest[@]}; i += 8)); do
      curl -s -o /dev/null -w '%{http_code} %{url_effective}\n' -X POST --data-binary @"${rest[$i]}" "$url/instances" || true
    done > "$T/up.$k" ) &
  loaders+=($!)
done
for k in 0 1 2 3; do
  port=$DICOM_PORT; [ $((k % 2)) = 1 ] && port=$DICOM_B
  chunk=(); for ((i = k; i < ${#dimse[@]}; i += 4)); do chunk+=("${dimse[$i]}"); done
  ( storescu -aec ORTHANC 127.0.0.1 "$port" "${chunk[@]}" > "$T/scu.$k" 2>&1 || true ) &
  loaders+=($!)
done

J=$(curl -sf -X POST "$URL_A/studies/$S/anonymize" -d '{"Asynchronous": true}' | json 'j["ID"]')
for _ in $(seq 1 3000); do
  p=$(curl -sf "$URL_A/jobs/$J" | json '"%s %s" % (j["State"], j["Progress"])')
  case "$p" in "Running 0"|Pending*) ;; Running*) break;; *) fail "job $p before the kill";; esac
done
kill9_server
echo "A killed -9 with its job at '$p'"
# B keeps serving during the load and after.
wait "${loaders[@]}" 2>/dev/null || true
[ "$(curl -s -o /dev/null -w '%{http_code}' "$URL_B/system")" = 200 ] || fail "B stopped serving"
for _ in $(seq 1 600); do
  st=$(curl -sf "$URL_B/jobs/$J" 2>/dev/null | json 'j["State"]' 2>/dev/null || echo none)
  case $st in Success|Failure) break;; esac; sleep 0.1
done
[ "$st" = Success ] || { tail -20 "$T/server-b.log"; fail "B did not finish the orphaned job (state $st)"; }
grep -q "took over the orphaned job $J" "$T/server-b.log" || fail "no takeover logged by B"
A=$(curl -sf "$URL_B/jobs/$J" | json 'j["Content"]["ID"]')
[ "$(curl -sf "$URL_B/studies/$A/instances" | json 'len(j)')" = 300 ] || fail "anonymized study incomplete"
anon=$(curl -sf "$URL_B/patients?expand" | json 'len([p for p in j if p["MainDicomTags"].get("PatientID") not in ("JOBPAT", "RESTPAT", "DIMSEPAT")])')
[ "$anon" = 1 ] || fail "$anon anonymized patients: the job wrote more than one new patient"
pass "B took over A's job after the kill -9 and finished it into one study of 300 instances"

# Deletes through B of what the REST load stored, then the audit.
for id in $(curl -sf "$URL_B/patients?expand" | json '" ".join(p["ID"] for p in j if p["MainDicomTags"].get("PatientID") == "RESTPAT")'); do
  curl -sf -X DELETE "$URL_B/patients/$id" >/dev/null || fail "delete on B"
done
start_server   # A again, a new process: recovers what its dead predecessor left pending
for u in "$URL_A" "$URL_B"; do
  n=$(curl -sf "$u/instances" | json 'len(j)')
  files=$(find "$T/db" -type f ! -name '*.tmp' | wc -l)
  tmps=$(find "$T/db" -name '*.tmp' | wc -l)
  [ "$tmps" = 0 ] || fail "temp files left"
  [ "$files" = "$n" ] || fail "$u: files ($files) != instances ($n)"
  [ "$(curl -sf "$u/statistics" | json 'j["CountInstances"]')" = "$n" ] || fail "statistics disagree"
done
$PY - "$URL_B" "$T/db" <<'PY' || fail "index and files disagree"
import json, os, sys, urllib.request
u = sys.argv[1]
ids = json.load(urllib.request.urlopen(u + "/instances"))
uuids = set()
for i in ids:
    a = json.load(urllib.request.urlopen(u + "/instances/%s/attachments/dicom/info" % i))
    uuids.add(a["Uuid"])
on_disk = {f for _, _, fs in os.walk(sys.argv[2]) for f in fs}
assert len(uuids) == len(ids), "two instances share a file"
assert uuids == on_disk, (len(uuids - on_disk), len(on_disk - uuids))
PY
pass "after the kill and the restart: every instance has its file, every file its instance ($n)"
kill -TERM $PID_B; wait $PID_B 2>/dev/null || true; PID_B=""
