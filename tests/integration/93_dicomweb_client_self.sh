#!/usr/bin/env bash
# The DICOMweb client (/dicom-web/servers) against a second instance of OUR server (its
# DICOMweb server, STOW-RS and WADO-RS), Basic auth on: the server list; STOW-RS of a study and
# of an RLE instance (synchronous and as a job with extra headers; files byte-identical on the
# second server); QIDO-RS reshaped as the plugin does from the second server's own answer; get
# passing the second server's answers through unchanged (study series, series metadata, its
# 404); WADO-RS retrieve back into an emptied store (the multipart answer split as it streams
# by server/multipart.c, files byte-identical, Origin Plugins), a series and an instance as a
# job, HasWadoRsUniversalTransferSyntax false (the RLE instance comes back decompressed, same
# pixels); a wrong password and an unknown study refused with nothing stored.
# (93_dicomweb_client runs the same client against Debian's Orthanc + orthanc-dicomweb.)
source "$(dirname "$0")/lib.sh"
B_HTTP=$(free_port); B_DICOM=$(free_port)
B="http://127.0.0.1:$B_HTTP"
BC="curl -s -u alice:pw-a"
write_config "\"DicomWeb\": { \"Servers\": {
    \"mp\": [\"$B/dicom-web/\", \"alice\", \"pw-a\"],
    \"mpobj\": {\"Url\": \"$B/dicom-web\", \"Username\": \"alice\", \"Password\": \"pw-a\", \"HttpHeaders\": {\"X-Token\": \"t1\"}},
    \"mpnouniv\": {\"Url\": \"$B/dicom-web/\", \"Username\": \"alice\", \"Password\": \"pw-a\", \"HasWadoRsUniversalTransferSyntax\": false},
    \"badpw\": [\"$B/dicom-web/\", \"alice\", \"wrong\"] } }"
mkdir -p "$T/b"
cat > "$T/b/cfg.json" <<JSON
{ "Name": "second", "StorageDirectory": "$T/b/db", "IndexDirectory": "$T/b/db", "HttpPort": $B_HTTP,
  "DicomPort": $B_DICOM, "SyncStorageArea": false, "AuthenticationEnabled": true,
  "RegisteredUsers": {"alice": "pw-a"}, "DicomWeb": {"Enable": true} }
JSON
"$MINIPACS_BIN" "$T/b/cfg.json" >"$T/b/server.log" 2>&1 &
B_PID=$!
cleanup_hook() {
  kill -TERM "$B_PID" 2>/dev/null; wait "$B_PID" 2>/dev/null
  # the second server's log counts as much as the first's (sanitizer builds report at exit)
  if grep -aqE 'ERROR: (Address|Leak)Sanitizer|runtime error: |WARNING: ThreadSanitizer' "$T/b/server.log"; then
    echo "---- sanitizer report in the second server's log ----" >> "$T/server.log"
    cat "$T/b/server.log" >> "$T/server.log"
  fi
}
start_server
for _ in $(seq 1 200); do $BC -f "$B/system" >/dev/null 2>&1 && break; sleep 0.05; done
$BC -f "$B/system" >/dev/null || fail "the second server did not start"

# ---- registry
[ "$(http GET /dicom-web/servers | json 'j')" = '["badpw", "mp", "mpnouniv", "mpobj"]' ] || fail "list: $(cat "$T/body")"
[ "$(http GET /dicom-web/servers/mp | json 'sorted(j)')" = '["get", "qido", "retrieve", "stow"]' ] || fail "operations: $(cat "$T/body")"
pass "/dicom-web/servers lists the second server"

# ---- STOW-RS to the second server: 12 instances of 128 KB (parts larger than the parser's
# 64 KB window) in two series, and an RLE-compressed instance
$PY "$MP_SRC/tests/tools/gen_study.py" "$T/study" 12 --series 2 --size 256 --seed 41 >/dev/null
for f in "$T"/study/*.dcm; do upload "$f" >/dev/null; done
STUDY=$(http GET /studies | json 'j[0]')
SUID=$(http GET "/studies/$STUDY" | json 'j["MainDicomTags"]["StudyInstanceUID"]')
r=$(http POST /dicom-web/servers/mp/stow -d "{\"Resources\": [\"$STUDY\"]}")
[ "$(status)" = 200 ] && [ "$(echo "$r" | json 'j["InstancesCount"]')" = 12 ] || fail "stow: $(status) $r"
[ "$($BC "$B/statistics" | json 'j["CountInstances"]')" = 12 ] || fail "the second server did not get 12 instances"
for id in $(http GET /instances | json '" ".join(j)'); do
  cmp -s <(curl -sf "$URL/instances/$id/file") <($BC -f "$B/instances/$id/file") || fail "instance $id differs on the second server"
done
RLE=$(upload "$PYDICOM_FILES/MR_small_RLE.dcm" | json 'j["ID"]')
JOB=$(http POST /dicom-web/servers/mpobj/stow -d "{\"Resources\": [\"$RLE\"], \"Asynchronous\": true}" | json 'j["ID"]')
for _ in $(seq 1 300); do st=$(http GET "/jobs/$JOB" | json 'j["State"]'); [ "$st" = Success ] || [ "$st" = Failure ] && break; sleep 0.1; done
[ "$(json 'j["State"], j["Type"], j["Content"]["InstancesCount"]' < "$T/body")" = "('Success', 'DicomWebStowClient', '1')" ] || fail "stow job: $(cat "$T/body")"
cmp -s "$PYDICOM_FILES/MR_small_RLE.dcm" <($BC -f "$B/instances/$RLE/file") || fail "the RLE instance differs on the second server"
http POST /dicom-web/servers/badpw/stow -d "{\"Resources\": [\"$RLE\"]}" >/dev/null
[ "$(status)" = 500 ] && json 'j["Details"]' < "$T/body" | grep -q 401 || fail "stow with a wrong password: $(status) $(cat "$T/body")"
pass "STOW-RS to the second server: a study and an RLE instance (job, extra headers) byte-identical; 401 refused"

# ---- QIDO-RS: the second server's own answer, reshaped as the plugin does
q="{\"Uri\": \"/studies\", \"Arguments\": {\"StudyInstanceUID\": \"$SUID\", \"includefield\": \"00081030\"}}"
http POST /dicom-web/servers/mp/qido -d "$q" > "$T/mine.json"
[ "$(status)" = 200 ] || fail "qido: $(status) $(cat "$T/body")"
$BC -f "$B/dicom-web/studies?StudyInstanceUID=$SUID&includefield=00081030" > "$T/theirs.json"
$PY - "$T/mine.json" "$T/theirs.json" <<'PY' || fail "qido answer is not the second server's answer reshaped: $(cat "$T/mine.json")"
import json, sys
mine, theirs = (json.load(open(p)) for p in sys.argv[1:3])
assert len(mine) == len(theirs) == 1, (len(mine), len(theirs))
m, t = mine[0], theirs[0]
assert sorted(m) == sorted(t), (sorted(m), sorted(t))
for tag, el in t.items():
    got = m[tag]
    assert got["Group"] == int(tag[:4], 16) and got["Element"] == int(tag[4:], 16) and got["vr"] == el["vr"], (tag, got)
    v = (el.get("Value") or [None])[0]
    if isinstance(v, dict):
        v = v.get("Alphabetic")
    if isinstance(v, str):
        assert got["Value"] == v, (tag, got, v)
    else:
        assert "Value" not in got, (tag, got)
assert m["0020000D"]["Name"] == "StudyInstanceUID" and m["00100010"]["Name"] == "PatientName", m
assert int(t["00201208"]["Value"][0]) == 12, t
PY
pass "QIDO-RS through the client: the second server's answer reshaped (Group, Element, Name, vr, first Value)"

# ---- get: the second server's answers passed through unchanged
SER=$(http GET "/studies/$STUDY/series" | json 'j[0]["MainDicomTags"]["SeriesInstanceUID"]')
for uri in "/studies/$SUID/series" "/studies/$SUID/series/$SER/metadata"; do
  http POST /dicom-web/servers/mp/get -d "{\"Uri\": \"$uri\"}" > "$T/mine.json"
  [ "$(status)" = 200 ] || fail "get $uri: $(status) $(cat "$T/body")"
  cmp -s "$T/mine.json" <($BC -f "$B/dicom-web$uri") || fail "get $uri differs from the second server's answer"
done
[ "$(json 'len(j)' < "$T/mine.json")" = 6 ] || fail "series metadata: $(json 'len(j)' < "$T/mine.json") instances"
http POST /dicom-web/servers/mp/get -d '{"Uri": "/studies/1.2.3.999/metadata"}' >/dev/null
[ "$(status)" = 404 ] || fail "get of an unknown study (the second server's 404): $(status)"
pass "get: study series and series metadata byte-identical to the second server's; its 404 passed on"

# ---- WADO-RS retrieve into an emptied store
for f in "$T"/study/*.dcm; do md5sum < "$f"; done | sort > "$T/want"
http DELETE "/studies/$STUDY" >/dev/null
http DELETE "/instances/$RLE" >/dev/null
[ "$(http GET /statistics | json 'j["CountInstances"]')" = 0 ] || fail "delete"
r=$(http POST /dicom-web/servers/mp/retrieve -d "{\"Resources\": [{\"Study\": \"$SUID\"}]}")
[ "$(status)" = 200 ] && [ "$(echo "$r" | json 'j["ReceivedInstancesCount"]')" = 12 ] || fail "retrieve: $(status) $r"
ids=$(http GET "/studies/$STUDY/instances" | json '" ".join(i["ID"] for i in j)')
for id in $ids; do curl -sf "$URL/instances/$id/file" | md5sum; done | sort > "$T/have"
cmp -s "$T/want" "$T/have" || fail "the retrieved files differ from the originals"
for id in $ids; do [ "$(http GET "/instances/$id/metadata/Origin")" = Plugins ] || fail "Origin of $id: $(cat "$T/body")"; done
ISER=$(http GET "/studies/$STUDY/series" | json 'j[1]["MainDicomTags"]["SeriesInstanceUID"]')
INST=$(http GET "/series/$(http GET "/studies/$STUDY/series" | json 'j[1]["ID"]')/instances" | json 'j[0]["MainDicomTags"]["SOPInstanceUID"]')
http DELETE "/studies/$STUDY" >/dev/null
JOB=$(http POST /dicom-web/servers/mpobj/retrieve -d "{\"Resources\": [{\"Study\": \"$SUID\", \"Series\": \"$SER\"}, {\"Study\": \"$SUID\", \"Series\": \"$ISER\", \"Instance\": \"$INST\"}], \"Asynchronous\": true}" | json 'j["ID"]')
for _ in $(seq 1 300); do st=$(http GET "/jobs/$JOB" | json 'j["State"]'); [ "$st" = Success ] || [ "$st" = Failure ] && break; sleep 0.1; done
[ "$(json 'j["State"], j["Type"], j["Progress"], int(j["Content"]["ReceivedInstancesCount"])' < "$T/body")" = "('Success', 'DicomWebWadoRetrieveClient', 100, 7)" ] || fail "retrieve job: $(cat "$T/body")"
[ "$(http GET /statistics | json 'j["CountInstances"]')" = 7 ] || fail "retrieve job stored $(json 'j["CountInstances"]' < "$T/body"), want 6 + 1"
pass "WADO-RS retrieve: a study byte-identical (Origin Plugins), a series and an instance as a job"

# ---- without the universal transfer syntax: the second server decompresses, pixels unchanged
RSOP=$($BC -f "$B/instances/$RLE" | json 'j["MainDicomTags"]["SOPInstanceUID"]')
RSER=$($BC -f "$B/instances/$RLE/series" | json 'j["MainDicomTags"]["SeriesInstanceUID"]')
RST=$($BC -f "$B/instances/$RLE/study" | json 'j["MainDicomTags"]["StudyInstanceUID"]')
r=$(http POST /dicom-web/servers/mpnouniv/retrieve -d "{\"Resources\": [{\"Study\": \"$RST\", \"Series\": \"$RSER\", \"Instance\": \"$RSOP\"}]}")
[ "$(status)" = 200 ] && [ "$(echo "$r" | json 'j["ReceivedInstancesCount"]')" = 1 ] || fail "retrieve (no universal syntax): $(status) $r"
[ "$(http GET "/instances/$RLE/metadata/TransferSyntax")" = 1.2.840.10008.1.2.1 ] || fail "stored syntax: $(cat "$T/body")"
curl -sf "$URL/instances/$RLE/file" > "$T/rle-back.dcm"
$PY - "$PYDICOM_FILES/MR_small_RLE.dcm" "$T/rle-back.dcm" <<'PY' || fail "the decompressed pixels differ"
import sys, numpy, pydicom
a, b = (pydicom.dcmread(p) for p in sys.argv[1:3])
assert numpy.array_equal(a.pixel_array, b.pixel_array)
PY
pass "retrieve with HasWadoRsUniversalTransferSyntax false: Explicit VR Little Endian, pixels equal"

# ---- refusals: nothing stored
n0=$(http GET /statistics | json 'j["CountInstances"]')
http POST /dicom-web/servers/badpw/retrieve -d "{\"Resources\": [{\"Study\": \"$SUID\"}]}" >/dev/null
[ "$(status)" = 500 ] && json 'j["Details"]' < "$T/body" | grep -q 401 || fail "retrieve with a wrong password: $(status) $(cat "$T/body")"
http POST /dicom-web/servers/mp/retrieve -d '{"Resources": [{"Study": "1.2.3.999"}]}' >/dev/null
[ "$(status)" = 500 ] || [ "$(status)" = 404 ] || fail "retrieve of an unknown study: $(status) $(cat "$T/body")"
[ "$(http GET /statistics | json 'j["CountInstances"]')" = "$n0" ] || fail "a refused retrieve stored something"
pass "retrieve refused (wrong password, unknown study) with nothing stored"
