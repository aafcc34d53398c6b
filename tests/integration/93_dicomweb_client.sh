#!/usr/bin/env bash
# The DICOMweb client (/dicom-web/servers) against Debian's Orthanc 1.10.1 with its DICOMweb
# plugin, Basic auth on: the server list and ?expand as the plugin's with the same
# DicomWeb.Servers, PUT/DELETE (kept across a restart), STOW-RS of a study (synchronous and as
# a job; files identical on Orthanc), QIDO-RS and get answers equal to the plugin's own client,
# WADO-RS retrieve of a study / series / instance back into an emptied store (multipart split
# as it streams, files identical, Origin Plugins), a job, and the errors: bad bodies, an
# unreachable server, a server that never answers (Timeout).
source "$(dirname "$0")/lib.sh"
O_HTTP=$(free_port); O_DICOM=$(free_port); DEAD=$(free_port); HANG=$(free_port)
SERVERS="\"orthanc\": [\"http://127.0.0.1:$O_HTTP/dicom-web/\", \"bob\", \"pw-b\"],
      \"obj\": {\"Url\": \"http://127.0.0.1:$O_HTTP/dicom-web\", \"Username\": \"bob\", \"Password\": \"pw-b\",
                \"HttpHeaders\": {\"X-Token\": \"t1\"}, \"HasDelete\": true},
      \"dead\": [\"http://127.0.0.1:$DEAD/dicom-web/\"],
      \"hang\": {\"Url\": \"http://127.0.0.1:$HANG/dicom-web/\", \"Timeout\": 2}"
write_config "\"DicomWeb\": { \"Servers\": { $SERVERS } }"
mkdir -p "$T/o"
cat > "$T/o/cfg.json" <<JSON
{ "Name": "ox", "StorageDirectory": "$T/o/db", "IndexDirectory": "$T/o/db", "HttpPort": $O_HTTP,
  "DicomPort": $O_DICOM, "Plugins": ["/usr/share/orthanc/plugins/libOrthancDicomWeb.so"],
  "AuthenticationEnabled": true, "RegisteredUsers": {"bob": "pw-b"}, "SyncStorageArea": false,
  "DicomWeb": { "Enable": true, "Servers": { $SERVERS } } }
JSON
TCP_NODELAY=1 /usr/sbin/Orthanc "$T/o/cfg.json" >"$T/o/orthanc.log" 2>&1 &
O_PID=$!
$PY -c "
import socket
s = socket.socket(); s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
s.bind(('127.0.0.1', $HANG)); s.listen(16); held = []
while True:
    c, _ = s.accept(); held.append(c)
" &
H_PID=$!
trap 'rc=$?; set +e; kill $O_PID $H_PID 2>/dev/null; wait $O_PID $H_PID 2>/dev/null; [ $rc -ne 0 ] && tail -n 20 "$T/o/orthanc.log" >&2; (exit $rc); on_exit' EXIT
start_server
for _ in $(seq 1 600); do curl -sf -u bob:pw-b "http://127.0.0.1:$O_HTTP/system" >/dev/null && break; sleep 0.1; done
curl -sf -u bob:pw-b "http://127.0.0.1:$O_HTTP/system" >/dev/null || fail "Orthanc did not start"
OC="curl -s -u bob:pw-b"
O="http://127.0.0.1:$O_HTTP"

# ---- registry
[ "$(http GET /dicom-web/servers | json 'j')" = '["dead", "hang", "obj", "orthanc"]' ] || fail "list: $(cat "$T/body")"
[ "$(http GET '/dicom-web/servers?expand' | json 'j')" = "$($OC "$O/dicom-web/servers?expand" | json 'j')" ] || fail "?expand differs from the plugin's: $(cat "$T/body")"
http GET /dicom-web/servers/nope >/dev/null
[ "$(status)" = 404 ] || fail "unknown server: $(status)"
http PUT /dicom-web/servers/extra -d "[\"http://127.0.0.1:$O_HTTP/dicom-web/\", \"bob\", \"pw-b\"]" >/dev/null
[ "$(status)" = 200 ] || fail "PUT: $(status) $(cat "$T/body")"
http PUT /dicom-web/servers/bad -d '{"Username": "x"}' >/dev/null
[ "$(status)" = 400 ] || fail "PUT without Url: $(status)"
stop_server; start_server
[ "$(http GET /dicom-web/servers | json 'j')" = '["dead", "extra", "hang", "obj", "orthanc"]' ] || fail "PUT server lost at restart: $(cat "$T/body")"
http DELETE /dicom-web/servers/extra >/dev/null; [ "$(status)" = 200 ] || fail "DELETE: $(status)"
http DELETE /dicom-web/servers/extra >/dev/null; [ "$(status)" = 400 ] || fail "DELETE unknown (the plugin's 400): $(status)"
pass "/dicom-web/servers: list and ?expand as the plugin's, PUT kept across a restart, DELETE"

# ---- STOW-RS
$PY "$MP_SRC/tests/tools/gen_study.py" "$T/study" 12 --series 2 --size 32 --seed 31 >/dev/null
for f in "$T"/study/*.dcm; do upload "$f" >/dev/null; done
STUDY=$(http GET /studies | json 'j[0]')
SUID=$(http GET "/studies/$STUDY" | json 'j["MainDicomTags"]["StudyInstanceUID"]')
r=$(http POST /dicom-web/servers/orthanc/stow -d "{\"Resources\": [\"$STUDY\"]}")
[ "$(status)" = 200 ] && [ "$(echo "$r" | json 'j["InstancesCount"]')" = 12 ] || fail "stow: $(status) $r"
[ "$($OC "$O/statistics" | json 'j["CountInstances"]')" = 12 ] || fail "Orthanc did not get 12 instances"
for id in $(http GET /instances | json '" ".join(j)'); do
  cmp -s <(curl -sf "$URL/instances/$id/file") <($OC "$O/instances/$id/file") || fail "instance $id differs on Orthanc after STOW-RS"
done
CT=$(upload "$PYDICOM_FILES/CT_small.dcm" | json 'j["ID"]')
JOB=$(http POST /dicom-web/servers/obj/stow -d "{\"Resources\": [\"$CT\"], \"Asynchronous\": true}" | json 'j["ID"]')
for _ in $(seq 1 300); do st=$(http GET "/jobs/$JOB" | json 'j["State"]'); [ "$st" = Success ] || [ "$st" = Failure ] && break; sleep 0.1; done
[ "$(json 'j["State"], j["Type"], j["Content"]["InstancesCount"]' < "$T/body")" = "('Success', 'DicomWebStowClient', '1')" ] || fail "stow job: $(cat "$T/body")"
[ "$($OC "$O/statistics" | json 'j["CountInstances"]')" = 13 ] || fail "Orthanc did not get the CT"
http POST /dicom-web/servers/orthanc/stow -d "[\"$CT\"]" >/dev/null
[ "$(status)" = 400 ] || fail "stow without Resources: $(status)"
http POST /dicom-web/servers/orthanc/stow -d '{"Resources": ["00000000-00000000-00000000-00000000-00000000"]}' >/dev/null
[ "$(status)" = 404 ] || fail "stow of an unknown resource: $(status)"
pass "STOW-RS: a study (files identical on Orthanc), a job with extra headers, 400/404"

# ---- QIDO-RS and get: the same answers as the plugin's own client
q="{\"Uri\": \"/studies\", \"Arguments\": {\"StudyInstanceUID\": \"$SUID\", \"includefield\": \"00081030\"}}"
mine=$(http POST /dicom-web/servers/orthanc/qido -d "$q" | json 'j')
[ "$(status)" = 200 ] || fail "qido: $(status) $(cat "$T/body")"
theirs=$($OC -X POST "$O/dicom-web/servers/orthanc/qido" -d "$q" | json 'j')
[ "$mine" = "$theirs" ] || fail "qido differs from the plugin's: $mine vs $theirs"
[ "$(echo "$mine" | json 'len(j), j[0]["0020000D"]["Value"]')" = "(1, '$SUID')" ] || fail "qido answer: $mine"
g="{\"Uri\": \"/studies/$SUID/series\"}"
[ "$(http POST /dicom-web/servers/orthanc/get -d "$g" | json 'sorted(s["0020000E"]["Value"][0] for s in j)')" = "$($OC -X POST "$O/dicom-web/servers/orthanc/get" -d "$g" | json 'sorted(s["0020000E"]["Value"][0] for s in j)')" ] || fail "get differs: $(cat "$T/body")"
http POST /dicom-web/servers/orthanc/get -d '{}' >/dev/null; [ "$(status)" = 400 ] || fail "get without Uri: $(status)"
http POST /dicom-web/servers/orthanc/get -d '{"Uri": "/nonexistent"}' >/dev/null; [ "$(status)" = 404 ] || fail "get of a missing URI: $(status)"
pass "QIDO-RS and get: the plugin's answers; 400 without Uri, the server's 404 passed on"

# ---- WADO-RS retrieve into an emptied store
for f in "$T"/study/*.dcm; do $PY "$MP_SRC/tests/tools/dicom_raw.py" dsbytes "$f"; done | sort > "$T/want"
http DELETE "/studies/$STUDY" >/dev/null
[ "$(http GET /statistics | json 'j["CountInstances"]')" = 1 ] || fail "delete"
r=$(http POST /dicom-web/servers/orthanc/retrieve -d "{\"Resources\": [{\"Study\": \"$SUID\"}]}")
[ "$(status)" = 200 ] && [ "$(echo "$r" | json 'j["ReceivedInstancesCount"]')" = 12 ] || fail "retrieve: $(status) $r"
mkdir -p "$T/got"
for id in $(http GET "/studies/$STUDY/instances" | json '" ".join(i["ID"] for i in j)'); do
  curl -sf "$URL/instances/$id/file" > "$T/got/$id.dcm"
  $PY "$MP_SRC/tests/tools/dicom_raw.py" dsbytes "$T/got/$id.dcm"
done | sort > "$T/have"
cmp -s "$T/want" "$T/have" || fail "the retrieved datasets differ from the originals"
[ "$(http GET "/instances/$id/metadata/Origin")" = Plugins ] || fail "Origin: $(cat "$T/body")"
SER=$(http GET "/studies/$STUDY/series" | json 'j[0]["MainDicomTags"]["SeriesInstanceUID"]')
INST=$(http GET "/instances/$id" | json 'j["MainDicomTags"]["SOPInstanceUID"]')
ISER=$(http GET "/instances/$id/series" | json 'j["MainDicomTags"]["SeriesInstanceUID"]')
http DELETE "/studies/$STUDY" >/dev/null
JOB=$(http POST /dicom-web/servers/obj/retrieve -d "{\"Resources\": [{\"Study\": \"$SUID\", \"Series\": \"$SER\"}, {\"Study\": \"$SUID\", \"Series\": \"$ISER\", \"Instance\": \"$INST\"}], \"Asynchronous\": true}" | json 'j["ID"]')
for _ in $(seq 1 300); do st=$(http GET "/jobs/$JOB" | json 'j["State"]'); [ "$st" = Success ] || [ "$st" = Failure ] && break; sleep 0.1; done
[ "$(json 'j["State"], j["Type"], j["Progress"]' < "$T/body")" = "('Success', 'DicomWebWadoRetrieveClient', 100)" ] || fail "retrieve job: $(cat "$T/body")"
n_ser=$($OC "$O/dicom-web/studies/$SUID/series/$SER/instances" | json 'len(j)')
got=$(json 'int(j["Content"]["ReceivedInstancesCount"])' < "$T/body")
[ "$got" = $((n_ser + 1)) ] || fail "retrieve job received $got, want $n_ser + 1"
http POST /dicom-web/servers/orthanc/retrieve -d '{"Resources": [{"Series": "1.2.3"}]}' >/dev/null
[ "$(status)" = 400 ] && [ "$(json 'j["Details"]' < "$T/body")" = 'Missing "Study" field in the body' ] || fail "retrieve without Study: $(status) $(cat "$T/body")"
http POST /dicom-web/servers/orthanc/retrieve -d '{"Resources": [{"Study": "1.2.3.4"}]}' >/dev/null
[ "$(status)" = 404 ] || [ "$(status)" = 500 ] || fail "retrieve of a missing study: $(status)"
pass "WADO-RS retrieve: a study byte-identical (Origin Plugins), a series and an instance as a job, 400"

# ---- unreachable and silent servers
http POST /dicom-web/servers/dead/qido -d '{"Uri": "/studies"}' >/dev/null
[ "$(status)" = 500 ] && [ "$(json 'j["Details"]' < "$T/body")" = "libCURL error: Couldn't connect to server" ] || fail "dead qido: $(status) $(cat "$T/body")"
JOB=$(http POST /dicom-web/servers/dead/stow -d "{\"Resources\": [\"$CT\"], \"Asynchronous\": true}" | json 'j["ID"]')
for _ in $(seq 1 300); do st=$(http GET "/jobs/$JOB" | json 'j["State"]'); [ "$st" = Success ] || [ "$st" = Failure ] && break; sleep 0.1; done
[ "$(json 'j["State"], j["ErrorCode"]' < "$T/body")" = "('Failure', 9)" ] || fail "dead stow job: $(cat "$T/body")"
t0=$(date +%s.%N)
http POST /dicom-web/servers/hang/retrieve -d '{"Resources": [{"Study": "1.2.3"}]}' >/dev/null
t1=$(date +%s.%N)
[ "$(status)" = 500 ] || fail "hang retrieve: $(status) $(cat "$T/body")"
$PY -c "import sys; d=$t1-$t0; sys.exit(0 if 1.5 < d < 6 else 1)" || fail "the server's Timeout (2 s) was not applied"
[ "$(http GET /statistics | json 'j["CountInstances"]')" -ge 2 ] || fail "server not usable after the failures"
pass "unreachable server: 500 with curl's reason, failed job; silent server cut by its Timeout"
