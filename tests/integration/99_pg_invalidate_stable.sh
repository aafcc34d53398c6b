#!/usr/bin/env bash
# Two server processes on one PostgreSQL database and one storage folder ("Lock": false), on a
# throw-away cluster of this scenario (tests/tools/pg.sh), for the per-process state:
# - the DICOM cache: process A reads an instance through its cache (/tags, twice: a hit), then
#   B deletes it, stores it again with other content, overwrites it: A never keeps answering
#   the old content (LISTEN/NOTIFY invalidations), and A's /modify reads the new file;
# - stable-resource detection: a study whose instances went to both processes gets exactly one
#   StableSeries/StableStudy/StablePatient (not one per process), after the last instance
#   whichever process received it, and one more of each after it received a new instance.
source "$(dirname "$0")/lib.sh"
"$MP_SRC/tests/tools/pg.sh" available || fail "PostgreSQL server binaries missing (scripts/deps.sh installs postgresql)"
PGD="$T/pgcluster"
cleanup_hook() {
  [ -n "${PID_B:-}" ] && kill -TERM "$PID_B" 2>/dev/null && wait "$PID_B" 2>/dev/null
  "$MP_SRC/tests/tools/pg.sh" stop "$PGD" >/dev/null 2>&1 || true
}
PGPORT=$("$MP_SRC/tests/tools/pg.sh" start "$PGD")
"$MP_SRC/tests/tools/pg.sh" createdb "$PGD" shared
PG_SECTION="\"PostgreSQL\": {\"EnableIndex\": true, \"Host\": \"127.0.0.1\", \"Port\": $PGPORT, \"Database\": \"shared\", \"Username\": \"postgres\", \"Lock\": false, \"IndexConnectionsCount\": 4}"
write_config "$PG_SECTION, \"StableAge\": 2, \"OverwriteInstances\": true"
sed -i '/"PostgreSQL": {"EnableIndex": true, "Host": "127.0.0.1", "Port": [0-9]*, "Database": "it_/d' "$T/Orthanc.json"
start_server
URL_A=$URL
HTTP_B=$(free_port); DICOM_B=$(free_port)
sed -e "s/\"HttpPort\": $HTTP_PORT/\"HttpPort\": $HTTP_B/" -e "s/\"DicomPort\": $DICOM_PORT/\"DicomPort\": $DICOM_B/" \
  "$T/Orthanc.json" > "$T/b.json"
# B's log goes to server.log too: lib.sh fails the scenario on a sanitizer report in it
"$MINIPACS_BIN" "$T/b.json" >> "$T/server.log" 2>&1 &
PID_B=$!
URL_B="http://127.0.0.1:$HTTP_B"
for _ in $(seq 1 200); do curl -sf "$URL_B/system" >/dev/null && break; sleep 0.05; done
curl -sf "$URL_B/system" >/dev/null || fail "process B did not start"

# ---- the DICOM cache -----------------------------------------------------------------------
# One instance in four versions: the same UIDs (so the same instance ID), ImageComments v1..v4.
$PY - "$T" "$PYDICOM_FILES/CT_small.dcm" <<'PY'
import sys, pydicom
for v in (1, 2, 3, 4):
    ds = pydicom.dcmread(sys.argv[2])
    ds.ImageComments = "v%d" % v
    ds.save_as("%s/v%d.dcm" % (sys.argv[1], v))
PY
post() { curl -sf -X POST --data-binary @"$2" "$1/instances"; }
comments() { curl -s "$1/instances/$I/tags?simplify" | json 'j.get("ImageComments")'; }
hits() { curl -sf "$URL_A/tools/metrics-prometheus" | awk '/^minipacs_dicom_cache_hits_total/ {print $2}'; }
# until_a EXPECTED: A's answer for the instance becomes EXPECTED within 5 s (an invalidation
# is one NOTIFY away); a cache that is never told keeps the old answer for ever.
until_a() {
  local got=""
  for _ in $(seq 1 50); do
    got=$(curl -s -o "$T/a.json" -w '%{http_code}' "$URL_A/instances/$I/tags?simplify")
    [ "$got" = 200 ] && got=$(json 'j.get("ImageComments")' < "$T/a.json")
    [ "$got" = "$1" ] && return 0
    sleep 0.1
  done
  fail "process A still answers '$got' for the instance, expected '$1' ($2)"
}

I=$(post "$URL_A" "$T/v1.dcm" | json 'j["ID"]')
[ "$(comments "$URL_A")" = v1 ] || fail "A /tags after the upload"
h0=$(hits)
[ "$(comments "$URL_A")" = v1 ] || fail "A /tags again"
h1=$(hits)
$PY -c "import sys; sys.exit(0 if float('$h1') > float('$h0') else 1)" || fail "A's second /tags was not a cache hit ($h0 -> $h1)"
pass "process A reads the instance through its DICOM cache (a hit)"

curl -sf -X DELETE "$URL_B/instances/$I" >/dev/null || fail "delete on B"
until_a 404 "deleted through B"
pass "deleted through B: A answers 404 at once, not its cached copy"

[ "$(post "$URL_B" "$T/v2.dcm" | json 'j["ID"]')" = "$I" ] || fail "same ID expected"
until_a v2 "stored again through B with other content"
[ "$(comments "$URL_A")" = v2 ] || fail "A /tags v2"
[ "$(post "$URL_B" "$T/v3.dcm" | json 'j["Status"]')" = Success ] || fail "overwrite through B"
until_a v3 "overwritten through B (OverwriteInstances)"
pass "stored again and overwritten through B: A's /tags follow (v1 -> 404 -> v2 -> v3)"

post "$URL_B" "$T/v4.dcm" >/dev/null || fail "overwrite v4 through B"
until_a v4 "overwritten through B again"
curl -sf -X POST "$URL_A/instances/$I/modify" -d '{"Replace": {"PatientName": "MODIFIED"}, "Force": true}' \
  -o "$T/modified.dcm" || fail "modify on A"
$PY - "$T/modified.dcm" <<'PY' || fail "A's /modify used a stale copy"
import sys, pydicom
ds = pydicom.dcmread(sys.argv[1])
assert ds.ImageComments == "v4" and str(ds.PatientName) == "MODIFIED", (ds.ImageComments, ds.PatientName)
PY
pass "A's /modify of the instance reads B's latest version (v4)"
curl -sf -X DELETE "$URL_A/instances/$I" >/dev/null || fail "delete on A"

# ---- Stable* once across processes -------------------------------------------------------------
$PY "$MP_SRC/tests/tools/gen_study.py" "$T/st" 13 --series 2 --size 16 >/dev/null
files=( $(ls "$T"/st/*.dcm | sort) )
for k in $(seq 0 9); do   # ten instances alternately to A and B
  u=$URL_A; [ $((k % 2)) = 1 ] && u=$URL_B
  post "$u" "${files[$k]}" >/dev/null || fail "upload $k"
done
sleep 1                   # then one more to B, a second later: A's deadline comes first
post "$URL_B" "${files[10]}" >/dev/null || fail "upload 10"
changes() { curl -sf "$URL_A/changes?limit=1000"; }
count_stable() {  # prints "series study patient" counts of Stable* changes
  changes | json '" ".join(str(sum(c["ChangeType"] == t for c in j["Changes"])) for t in ("StableSeries", "StableStudy", "StablePatient"))'
}
for _ in $(seq 1 100); do [ "$(count_stable)" = "2 1 1" ] && break; sleep 0.1; done
sleep 3                   # every process's deadline (StableAge 2) is past: duplicates would be here
[ "$(count_stable)" = "2 1 1" ] || fail "Stable* changes (series study patient): $(count_stable), expected 2 1 1 once across the two processes"
changes | $PY -c '
import json, sys
ch = json.load(sys.stdin)["Changes"]
last_new = max(c["Seq"] for c in ch if c["ChangeType"] == "NewInstance")
first_stable = min(c["Seq"] for c in ch if c["ChangeType"].startswith("Stable"))
assert first_stable > last_new, "a Stable* change before the last instance"
' || fail "Stable* logged before the study's last instance (received by B)"
[ "$(curl -sf "$URL_A/changes?limit=1000")" = "$(curl -sf "$URL_B/changes?limit=1000")" ] || fail "/changes differ"
pass "instances of one study through both processes: one StableSeries per series, one StableStudy, one StablePatient, after the last instance"

post "$URL_A" "${files[11]}" >/dev/null || fail "upload 11"
post "$URL_B" "${files[12]}" >/dev/null || fail "upload 12"
for _ in $(seq 1 100); do [ "$(count_stable | cut -d' ' -f2)" = 2 ] && break; sleep 0.1; done
sleep 3
c=$(count_stable)
s=$(echo "$c" | cut -d' ' -f2-)
[ "$s" = "2 2" ] || fail "after two more instances: Stable* (series study patient) $c, expected one more StableStudy and StablePatient"
pass "two more instances (one per process): exactly one more StableStudy and StablePatient"
