#!/usr/bin/env bash
# Orthanc peers (HTTP client on libcurl): /peers list and ?expand compared with Debian's
# Orthanc 1.10.1 holding the same OrthancPeers, PUT/DELETE kept across a restart, /system of
# a peer, /store (sync, job, Compress, Transcode) to a second instance of our server and to
# Orthanc (both with Basic auth), the same store answer as Orthanc's, store-straight, an
# unreachable peer (Orthanc's JSON error, failed job) and a peer that accepts and never answers
# (the peer's Timeout cuts it, the server stays usable).
source "$(dirname "$0")/lib.sh"
B_HTTP=$(free_port); B_DICOM=$(free_port); O_HTTP=$(free_port); O_DICOM=$(free_port)
DEAD=$(free_port); HANG=$(free_port)
PEERS="\"mp\": [\"http://127.0.0.1:$B_HTTP/\", \"alice\", \"pw-a\"],
    \"orthanc\": {\"Url\": \"http://127.0.0.1:$O_HTTP\", \"Username\": \"bob\", \"Password\": \"pw-b\",
                  \"HttpHeaders\": {\"X-Token\": \"t1\"}},
    \"dead\": [\"http://127.0.0.1:$DEAD/\"],
    \"hang\": {\"Url\": \"http://127.0.0.1:$HANG/\", \"Timeout\": 2}"
write_config "\"OrthancPeers\": { $PEERS }"
mkdir -p "$T/b" "$T/o"
cat > "$T/b/cfg.json" <<JSON
{ "Name": "second", "StorageDirectory": "$T/b/db", "HttpPort": $B_HTTP, "DicomPort": $B_DICOM,
  "SyncStorageArea": false, "AuthenticationEnabled": true, "RegisteredUsers": {"alice": "pw-a"} }
JSON
"$MINIPACS_BIN" "$T/b/cfg.json" >"$T/b/server.log" 2>&1 &
B_PID=$!
cat > "$T/o/cfg.json" <<JSON
{ "Name": "ox", "StorageDirectory": "$T/o/db", "IndexDirectory": "$T/o/db", "HttpPort": $O_HTTP,
  "DicomPort": $O_DICOM, "Plugins": [], "AuthenticationEnabled": true,
  "RegisteredUsers": {"bob": "pw-b"}, "SyncStorageArea": false, "OrthancPeers": { $PEERS } }
JSON
TCP_NODELAY=1 /usr/sbin/Orthanc "$T/o/cfg.json" >"$T/o/orthanc.log" 2>&1 &
O_PID=$!
# a peer that accepts connections and never answers
$PY -c "
import socket, time
s = socket.socket(); s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
s.bind(('127.0.0.1', $HANG)); s.listen(16); held = []
while True:
    c, _ = s.accept(); held.append(c)
" &
H_PID=$!
trap 'rc=$?; set +e; kill $B_PID $O_PID $H_PID 2>/dev/null; wait $B_PID $O_PID $H_PID 2>/dev/null; [ $rc -ne 0 ] && tail -n 20 "$T/b/server.log" "$T/o/orthanc.log" >&2; (exit $rc); on_exit' EXIT
start_server
for _ in $(seq 1 300); do curl -sf -u alice:pw-a "http://127.0.0.1:$B_HTTP/system" >/dev/null && break; sleep 0.1; done
for _ in $(seq 1 600); do curl -sf -u bob:pw-b "http://127.0.0.1:$O_HTTP/system" >/dev/null && break; sleep 0.1; done
curl -sf -u bob:pw-b "http://127.0.0.1:$O_HTTP/system" >/dev/null || fail "Orthanc did not start"
OC="curl -s -u bob:pw-b"
O="http://127.0.0.1:$O_HTTP"
B="http://127.0.0.1:$B_HTTP"

# ---- registry, compared with Orthanc holding the same configuration
[ "$(http GET /peers | json 'j')" = '["dead", "hang", "mp", "orthanc"]' ] || fail "list: $(cat "$T/body")"
http GET '/peers?expand' | json 'j' > "$T/ours.json"
$OC "$O/peers?expand" | json 'j' > "$T/theirs.json"
cmp -s "$T/ours.json" "$T/theirs.json" || fail "?expand differs from Orthanc's: $(cat "$T/ours.json") vs $(cat "$T/theirs.json")"
[ "$(http GET /peers/mp | json 'j')" = "$($OC "$O/peers/mp" | json 'j')" ] || fail "GET /peers/mp: $(cat "$T/body")"
[ "$(http GET /peers/orthanc/configuration | json 'j')" = "$($OC "$O/peers/orthanc/configuration" | json 'j')" ] || fail "configuration: $(cat "$T/body")"
http GET /peers/nope >/dev/null; [ "$(status)" = 404 ] || fail "unknown peer: $(status)"
http PUT /peers/extra -d "{\"Url\": \"http://127.0.0.1:$B_HTTP\", \"Username\": \"alice\", \"Password\": \"pw-a\", \"Timeout\": 7}" >/dev/null
[ "$(status)" = 200 ] || fail "PUT: $(status) $(cat "$T/body")"
$OC -X PUT "$O/peers/extra" -d "{\"Url\": \"http://127.0.0.1:$B_HTTP\", \"Username\": \"alice\", \"Password\": \"pw-a\", \"Timeout\": 7}" >/dev/null
[ "$(http GET /peers/extra/configuration | json 'j')" = "$($OC "$O/peers/extra/configuration" | json 'j')" ] || fail "PUT peer differs: $(cat "$T/body")"
http PUT /peers/bad -d '{"Username": "x"}' >/dev/null
[ "$(status)" = 400 ] && [ "$(json 'j["OrthancError"]' < "$T/body")" = "Bad file format" ] || fail "PUT without Url: $(status) $(cat "$T/body")"
http PUT /peers/bad -d '{"Url": "http://x/", "CertificateFile": "/nonexistent.pem"}' >/dev/null
[ "$(status)" = 404 ] && [ "$(json 'j["OrthancError"]' < "$T/body")" = "Inexistent file" ] || fail "PUT with a missing certificate: $(status) $(cat "$T/body")"
stop_server; start_server
[ "$(http GET /peers | json 'j')" = '["dead", "extra", "hang", "mp", "orthanc"]' ] || fail "REST peer lost at restart: $(cat "$T/body")"
[ "$(stat -c %a "$T/db/peers.json")" = 600 ] || fail "peers.json (passwords) is not private"
http DELETE /peers/extra >/dev/null; [ "$(status)" = 200 ] || fail "DELETE"
http DELETE /peers/extra >/dev/null
[ "$(status)" = 404 ] && [ "$(json 'j["OrthancError"]' < "$T/body")" = "Accessing an inexistent item" ] || fail "DELETE unknown: $(status) $(cat "$T/body")"
pass "/peers: list, ?expand and configuration as Orthanc's, PUT (kept across a restart, 0600), DELETE, 400/404"

# ---- /system of a peer (Basic auth and extra headers on the wire)
[ "$(http GET /peers/mp/system | json 'j["Name"]')" = second ] || fail "mp/system: $(cat "$T/body")"
[ "$(http GET /peers/orthanc/system | json 'j["Name"], j["Version"]')" = "('ox', '1.10.1')" ] || fail "orthanc/system: $(cat "$T/body")"
http GET /peers/dead/system >/dev/null
[ "$(status)" = 500 ] || fail "dead/system: $(status)"
[ "$(json 'j["OrthancError"], j["Details"]' < "$T/body")" = "$($OC "$O/peers/dead/system" | json 'j["OrthancError"], j["Details"]')" ] || fail "dead/system error differs from Orthanc's: $(cat "$T/body")"
t0=$(date +%s.%N)
http GET /peers/hang/system >/dev/null
t1=$(date +%s.%N)
[ "$(status)" = 500 ] && [ "$(json 'j["OrthancError"]' < "$T/body")" = "Error in the network protocol" ] || fail "hang/system: $(status) $(cat "$T/body")"
$PY -c "import sys; d=$t1-$t0; sys.exit(0 if 1.5 < d < 6 else 1)" || fail "the peer's Timeout (2 s) was not applied: $t0 -> $t1"
pass "/peers/{x}/system: Basic auth, unreachable peer as Orthanc's error, Timeout cuts a silent peer"

# ---- store
$PY "$MP_SRC/tests/tools/gen_study.py" "$T/study" 10 --series 2 --size 32 --seed 21 >/dev/null
for f in "$T"/study/*.dcm; do upload "$f" >/dev/null; done
STUDY=$(http GET /studies | json 'j[0]')
r=$(http POST /peers/mp/store -d "{\"Resources\": [\"$STUDY\"], \"Synchronous\": true}")
[ "$(status)" = 200 ] || fail "sync store: $(status) $r"
[ "$(echo "$r" | json 'j["InstancesCount"], j["FailedInstancesCount"], j["Compress"], j["Peer"]')" = "(10, 0, False, ['http://127.0.0.1:$B_HTTP/', 'alice', ''])" ] || fail "sync store answer: $r"
for id in $(http GET /instances | json '" ".join(j)'); do
  cmp -s <(curl -sf "$URL/instances/$id/file") <(curl -sf -u alice:pw-a "$B/instances/$id/file") || fail "instance $id differs on the second server"
done
[ "$(echo "$r" | json 'int(j["Size"])')" = "$(http GET "/studies/$STUDY/statistics" | json 'int(j["DiskSize"])')" ] || fail "Size: $r"
# Orthanc holds one instance and the same peer: the same answer
ONE=$(ls "$T"/study/*.dcm | head -1)
OID=$($OC -X POST "$O/instances" --data-binary @"$ONE" | json 'j["ID"]')
mine=$(http POST /peers/mp/store -d "$OID" | json 'j')
theirs=$($OC -X POST "$O/peers/mp/store" -d "$OID" | json 'j')
[ "$mine" = "$theirs" ] || fail "bare-ID store answer differs from Orthanc's: $mine vs $theirs"
pass "store: synchronous to a second server with Basic auth (files identical), answer as Orthanc's"

wait_job() {
  for _ in $(seq 1 300); do
    st=$(http GET "/jobs/$1" | json 'j["State"]'); [ "$st" = Success ] || [ "$st" = Failure ] && break; sleep 0.1
  done
}
r=$(http POST /peers/orthanc/store -d "{\"Resources\": [\"$STUDY\"], \"Asynchronous\": true, \"Compress\": true}")
JOB=$(echo "$r" | json 'j["ID"]')
wait_job "$JOB"
[ "$st" = Success ] || fail "Compress job: $(cat "$T/body")"
[ "$(json 'j["Type"], j["Progress"], j["Content"]["InstancesCount"], j["Content"]["Compress"]' < "$T/body")" = "('OrthancPeerStore', 100, 10, True)" ] || fail "job: $(cat "$T/body")"
[ "$($OC "$O/statistics" | json 'j["CountInstances"]')" = 10 ] || fail "Orthanc did not get the 10 instances"
for id in $(http GET "/studies/$STUDY/instances" | json '" ".join(i["ID"] for i in j)'); do
  cmp -s <(curl -sf "$URL/instances/$id/file") <($OC "$O/instances/$id/file") || fail "instance $id differs on Orthanc (gzip)"
done
pass "store: job with Compress (gzip streamed) to Orthanc with Basic auth, files identical"

# Transcode: an RLE instance arrives explicit little endian
RLE=$(upload "$PYDICOM_FILES/MR_small_RLE.dcm" | json 'j["ID"]')
r=$(http POST /peers/mp/store -d "{\"Resources\": [\"$RLE\"], \"Transcode\": \"1.2.840.10008.1.2.1\"}")
[ "$(echo "$r" | json 'j["Transcode"]')" = 1.2.840.10008.1.2.1 ] || fail "transcode answer: $r"
[ "$(curl -sf -u alice:pw-a "$B/instances/$RLE/metadata/TransferSyntax")" = 1.2.840.10008.1.2.1 ] || fail "the peer did not get explicit little endian"
http POST /peers/mp/store -d '{"Resources": ["nope"]}' >/dev/null
[ "$(status)" = 400 ] || fail "bad ID: $(status)"
http POST /peers/mp/store -d '["00000000-00000000-00000000-00000000-00000000"]' >/dev/null
[ "$(status)" = 404 ] || fail "unknown ID: $(status)"
http POST /peers/nope/store -d "\"$RLE\"" >/dev/null; [ "$(status)" = 404 ] || fail "unknown peer: $(status)"
pass "store: Transcode, 400 bad ID, 404 unknown resource / peer"

# store-straight
r=$(curl -s -X POST "$URL/peers/orthanc/store-straight" --data-binary @"$PYDICOM_FILES/CT_small.dcm")
[ "$(echo "$r" | json 'j["Status"]')" = Success ] || fail "store-straight: $r"
http POST /peers/orthanc/store-straight --data-binary 'not dicom' >/dev/null
[ "$(status)" = 500 ] && [ "$(json 'j["OrthancError"]' < "$T/body")" = "Error in the network protocol" ] || fail "store-straight refused: $(status) $(cat "$T/body")"
pass "store-straight: the peer's answer; a refused body is Orthanc's 500"

# unreachable / silent peers
http POST /peers/dead/store -d "\"$STUDY\"" >/dev/null
[ "$(status)" = 500 ] && [ "$(json 'j["Details"]' < "$T/body")" = "libCURL error: Couldn't connect to server" ] || fail "dead store: $(status) $(cat "$T/body")"
JOB=$(http POST /peers/dead/store -d "{\"Resources\": [\"$STUDY\"], \"Asynchronous\": true}" | json 'j["ID"]')
wait_job "$JOB"
[ "$(json 'j["State"], j["ErrorCode"], j["ErrorDetails"]' < "$T/body")" = "('Failure', 9, \"libCURL error: Couldn't connect to server\")" ] || fail "dead job: $(cat "$T/body")"
JOB=$(http POST /peers/hang/store -d "{\"Resources\": [\"$STUDY\"], \"Asynchronous\": true}" | json 'j["ID"]')
wait_job "$JOB"
[ "$(json 'j["State"], j["ErrorCode"]' < "$T/body")" = "('Failure', 9)" ] || fail "hang job: $(cat "$T/body")"
[ "$(http GET /statistics | json 'j["CountInstances"]')" = 11 ] || fail "server not usable after the failures"
pass "unreachable peer: 500 as Orthanc, failed job; silent peer: job fails after Timeout"
