#!/usr/bin/env bash
# The SCU side through REST: /modalities (list, expand, PUT/DELETE kept across a restart, configuration; the
# routes in detail: 92_modalities_routes), echo (and its errors as Orthanc's JSON), /modalities/{x}/store to DCMTK's
# storescp synchronously (byte-identical) and as a job to a second instance of our server,
# /modalities/{x}/query -> /queries/{id} (answers, content, level, modality, query) and
# retrieve (C-MOVE to us) against that second instance and against Debian's Orthanc 1.10.1.
source "$(dirname "$0")/lib.sh"
RAW="$MP_SRC/tests/tools/dicom_raw.py"
SCP_PORT=$(free_port); B_HTTP=$(free_port); B_DICOM=$(free_port); O_HTTP=$(free_port); O_DICOM=$(free_port)
write_config "\"DicomAet\": \"MPA\", \"DicomModalities\": {
    \"scp\": [\"STORESCP\", \"127.0.0.1\", $SCP_PORT], \"b\": [\"MPB\", \"127.0.0.1\", $B_DICOM],
    \"orthanc\": {\"AET\": \"ORTHANCX\", \"Host\": \"127.0.0.1\", \"Port\": $O_DICOM} },
  \"DicomScuTimeout\": 5"
mkdir -p "$T/recv" "$T/b" "$T/o"
storescp -B -od "$T/recv" "$SCP_PORT" >"$T/storescp.log" 2>&1 &
SCP_PID=$!
cat > "$T/b/cfg.json" <<JSON
{ "Name": "b", "StorageDirectory": "$T/b/db", "HttpPort": $B_HTTP, "DicomPort": $B_DICOM,
  "DicomAet": "MPB", "SyncStorageArea": false,
  "DicomModalities": { "a": ["MPA", "127.0.0.1", $DICOM_PORT] } }
JSON
"$MINIPACS_BIN" "$T/b/cfg.json" >"$T/b/server.log" 2>&1 &
B_PID=$!
cat > "$T/o/cfg.json" <<JSON
{ "Name": "ox", "StorageDirectory": "$T/o/db", "IndexDirectory": "$T/o/db", "HttpPort": $O_HTTP,
  "DicomPort": $O_DICOM, "DicomAet": "ORTHANCX", "Plugins": [], "RemoteAccessAllowed": false,
  "AuthenticationEnabled": false, "SyncStorageArea": false,
  "DicomModalities": { "mpa": ["MPA", "127.0.0.1", $DICOM_PORT] } }
JSON
TCP_NODELAY=1 /usr/sbin/Orthanc "$T/o/cfg.json" >"$T/o/orthanc.log" 2>&1 &
O_PID=$!
trap 'rc=$?; set +e; kill $SCP_PID $B_PID $O_PID 2>/dev/null; wait $SCP_PID $B_PID $O_PID 2>/dev/null; [ $rc -ne 0 ] && tail -n 20 "$T/b/server.log" "$T/o/orthanc.log" >&2; (exit $rc); on_exit' EXIT
start_server
for _ in $(seq 1 300); do curl -sf "http://127.0.0.1:$B_HTTP/system" >/dev/null && break; sleep 0.1; done
for _ in $(seq 1 600); do curl -sf "http://127.0.0.1:$O_HTTP/system" >/dev/null && break; sleep 0.1; done
curl -sf "http://127.0.0.1:$O_HTTP/system" >/dev/null || fail "Orthanc did not start"

# /modalities
[ "$(http GET /modalities | json 'sorted(j)')" = '["b", "orthanc", "scp"]' ] || fail "list: $(cat "$T/body")"
[ "$(http GET '/modalities?expand' | json 'j["orthanc"]["AET"], j["orthanc"]["Port"], j["orthanc"]["AllowMove"]')" = "('ORTHANCX', $O_DICOM, True)" ] || fail "expand: $(cat "$T/body")"
http PUT /modalities/extra -d '{"AET": "EXTRA", "Host": "127.0.0.1", "Port": 1, "AllowFind": false}' >/dev/null
[ "$(status)" = 200 ] || fail "PUT: $(status) $(cat "$T/body")"
[ "$(http GET /modalities/extra/configuration | json 'j["AET"], j["AllowFind"]')" = "('EXTRA', False)" ] || fail "configuration"
http PUT /modalities/bad -d '{"AET": "X", "Port": 1}' >/dev/null
[ "$(status)" = 400 ] && [ "$(json 'j["OrthancError"]' < "$T/body")" = "Bad file format" ] || fail "bad PUT: $(status) $(cat "$T/body")"
# a PUT modality survives a restart (issue #13; Orthanc keeps it only with DicomModalitiesInDatabase)
stop_server; start_server
[ "$(http GET /modalities | json 'sorted(j)')" = '["b", "extra", "orthanc", "scp"]' ] || fail "REST modality lost at restart"
http DELETE /modalities/extra >/dev/null; [ "$(status)" = 200 ] || fail "DELETE"
http DELETE /modalities/extra >/dev/null; [ "$(status)" = 404 ] || fail "DELETE unknown: $(status)"
pass "/modalities: list, expand, PUT (kept across a restart), configuration, DELETE, 400/404 (more in 92_modalities_routes)"

# echo
http POST /modalities/scp/echo -d '' >/dev/null; [ "$(status)" = 200 ] || fail "echo storescp: $(cat "$T/body")"
http POST /modalities/nope/echo -d '' >/dev/null; [ "$(status)" = 404 ] || fail "echo unknown modality: $(status)"
http PUT /modalities/dead -d "[\"DEAD\", \"127.0.0.1\", $(free_port)]" >/dev/null
http POST /modalities/dead/echo -d '' >/dev/null
[ "$(status)" = 500 ] && [ "$(json 'j["OrthancError"]' < "$T/body")" = "Error in the network protocol" ] || fail "echo to a closed port: $(status) $(cat "$T/body")"
http POST /tools/dicom-echo -d "{\"AET\": \"STORESCP\", \"Host\": \"127.0.0.1\", \"Port\": $SCP_PORT}" >/dev/null
[ "$(status)" = 200 ] || fail "/tools/dicom-echo: $(status) $(cat "$T/body")"
pass "echo: 200, 404 unknown, 500 with Orthanc's JSON error, /tools/dicom-echo"

# store: synchronous to storescp (byte-identical), asynchronous job to our second server
$PY "$MP_SRC/tests/tools/gen_study.py" "$T/study" 10 --series 2 --size 32 --seed 11 >/dev/null
for f in "$T"/study/*.dcm; do upload "$f" >/dev/null; done
STUDY=$(http GET /studies | json 'j[0]')
r=$(http POST /modalities/scp/store -d "{\"Resources\": [\"$STUDY\"], \"Synchronous\": true}")
[ "$(echo "$r" | json 'j["InstancesCount"], j["FailedInstancesCount"], j["RemoteAet"]')" = "(10, 0, 'STORESCP')" ] || fail "sync store: $r"
for f in "$T"/study/*.dcm; do $PY "$RAW" dsbytes "$f"; done | sort > "$T/want"
for f in "$T"/recv/*; do $PY "$RAW" dsbytes "$f"; done | sort > "$T/got"
cmp -s "$T/want" "$T/got" || fail "storescp did not receive the 10 datasets as stored"
r=$(http POST /modalities/b/store -d "{\"Resources\": [\"$STUDY\"], \"Asynchronous\": true}")
JOB=$(echo "$r" | json 'j["ID"]')
for _ in $(seq 1 200); do
  st=$(http GET "/jobs/$JOB" | json 'j["State"]'); [ "$st" = Success ] || [ "$st" = Failure ] && break; sleep 0.1
done
[ "$st" = Success ] || fail "store job: $(cat "$T/body")"
[ "$(json 'j["Type"], j["Progress"], j["Content"]["InstancesCount"]' < "$T/body")" = "('DicomModalityStore', 100, 10)" ] || fail "job content: $(cat "$T/body")"
[ "$(curl -sf "http://127.0.0.1:$B_HTTP/statistics" | json 'j["CountInstances"]')" = 10 ] || fail "second server did not get 10 instances"
http POST /modalities/scp/store -d '{"Resources": ["nope"]}' >/dev/null; [ "$(status)" = 400 ] || fail "store bad ID: $(status)"
http POST /modalities/scp/store -d '{"Resources": ["c4ec7f68-9b162055-2c8c4f9b-3ef2c5a3-3d7f1c85"]}' >/dev/null
[ "$(status)" = 404 ] || fail "store unknown resource: $(status)"
pass "store: sync to storescp byte-identical, async job to a second server"

# query + retrieve against the second server: a study only it has comes to us
$PY "$MP_SRC/tests/tools/gen_study.py" "$T/bstudy" 4 --size 32 --seed 12 --patient BONLY >/dev/null
for f in "$T"/bstudy/*.dcm; do curl -sf -X POST --data-binary @"$f" "http://127.0.0.1:$B_HTTP/instances" >/dev/null; done
r=$(http POST /modalities/b/query -d '{"Level": "Study", "Query": {"PatientID": "BONLY", "StudyDescription": ""}}')
Q=$(echo "$r" | json 'j["ID"]')
[ "$(echo "$r" | json 'j["Path"]')" = "/queries/$Q" ] || fail "query: $r"
[ "$(http GET "/queries/$Q/answers" | json 'j')" = '["0"]' ] || fail "answers: $(cat "$T/body")"
[ "$(http GET "/queries/$Q/level" | json 'j')" = Study ] && [ "$(http GET "/queries/$Q/modality" | json 'j')" = b ] || fail "level/modality"
[ "$(http GET "/queries/$Q/answers/0/content?simplify" | json 'j["PatientID"], j["StudyDescription"]')" = "('BONLY', 'Generated CT')" ] || fail "content: $(cat "$T/body")"
[ "$(http GET "/queries/$Q/answers/0/content" | json 'j["0010,0020"]["Value"]')" = BONLY ] || fail "full content"
http POST "/queries/$Q/answers/0/retrieve" -d 'MPA' >/dev/null; [ "$(status)" = 200 ] || fail "retrieve: $(status) $(cat "$T/body")"
[ "$(http GET /statistics | json 'j["CountInstances"]')" = 14 ] || fail "retrieve did not bring the 4 instances"
http GET "/queries/nope/answers" >/dev/null; [ "$(status)" = 404 ] || fail "unknown query: $(status)"
pass "/queries round trip with a second instance of our server"

# the same against Debian's Orthanc 1.10.1 as the remote modality
curl -sf -X POST --data-binary @"$PYDICOM_FILES/CT_small.dcm" "http://127.0.0.1:$O_HTTP/instances" >/dev/null || fail "upload to Orthanc"
r=$(http POST /modalities/orthanc/query -d '{"Level": "Series", "Query": {"Modality": "CT", "SeriesDescription": ""}}')
Q=$(echo "$r" | json 'j["ID"]')
[ "$(http GET "/queries/$Q/answers" | json 'len(j)')" = 1 ] || fail "Orthanc answers: $(cat "$T/body")"
http POST "/queries/$Q/retrieve" -d '{"TargetAet": "MPA"}' >/dev/null; [ "$(status)" = 200 ] || fail "retrieve from Orthanc: $(cat "$T/body")"
[ "$(http GET /statistics | json 'j["CountInstances"]')" = 15 ] || fail "CT_small did not come from Orthanc"
ID=$(http POST /tools/lookup -d "$($PY -c "import pydicom; print(pydicom.dcmread('$PYDICOM_FILES/CT_small.dcm').SOPInstanceUID)")" | json 'j[0]["ID"]')
curl -sf "$URL/instances/$ID/file" -o "$T/ct.dcm"
$PY - "$T/ct.dcm" "$PYDICOM_FILES/CT_small.dcm" <<'PY' || fail "the instance from Orthanc differs from the original"
import sys, pydicom
a, b = pydicom.dcmread(sys.argv[1]), pydicom.dcmread(sys.argv[2])
assert a.SOPInstanceUID == b.SOPInstanceUID and a.PixelData == b.PixelData and a.PatientName == b.PatientName
PY
pass "/queries round trip with Debian's Orthanc"
