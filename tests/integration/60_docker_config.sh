#!/usr/bin/env bash
# The image's own configuration (docker/orthanc.json) under the real loader, overridden from
# the environment as docker/docker-compose.yml does: the file parses, the environment wins over
# it (ports, paths, AET, RegisteredUsers given as JSON text), and remote access is only safe
# because authentication is on: /system without credentials is 401, with them 200.
source "$(dirname "$0")/lib.sh"

for v in $(env | grep -o '^ORTHANC__[A-Z0-9_]*' || true); do unset "$v"; done
cp "$MP_SRC/docker/orthanc.json" "$T/orthanc.json"
grep -q '"DicomAet": "ORTHANC"' "$T/orthanc.json" || fail "docker/orthanc.json: DicomAet is expected to be ORTHANC here"

# As in docker-compose.yml; paths and ports moved off the image's so the test runs anywhere.
export ORTHANC__HTTP_PORT=$HTTP_PORT
export ORTHANC__DICOM_PORT=$DICOM_PORT
export ORTHANC__STORAGE_DIRECTORY="$T/db"
export ORTHANC__INDEX_DIRECTORY="$T/db"
export ORTHANC__SYNC_STORAGE_AREA=false
export ORTHANC__DICOM_AET=COMPOSE_AET
export ORTHANC__REGISTERED_USERS='{"orthanc": "s3cret pw"}'

"$MINIPACS_BIN" "$T/orthanc.json" >>"$T/server.log" 2>&1 &
SERVER_PID=$!
for _ in $(seq 1 200); do
  code=$(curl -s -o /dev/null -w '%{http_code}' "$URL/system" 2>/dev/null || true)
  [ "$code" != 000 ] && break
  kill -0 "$SERVER_PID" 2>/dev/null || fail "the image's orthanc.json with overrides: exited at start"
  sleep 0.05
done
pass "docker/orthanc.json accepted by the loader"

code=$(curl -s -o /dev/null -w '%{http_code}' "$URL/system")
[ "$code" = 401 ] || fail "/system without credentials answered $code, 401 expected (AuthenticationEnabled in the image)"
sys=$(curl -sf -u 'orthanc:s3cret pw' "$URL/system") || fail "/system with the ORTHANC__REGISTERED_USERS credentials"
[ "$(echo "$sys" | json 'j["DicomAet"]')" = COMPOSE_AET ] || fail "environment did not win over the file: $sys"
[ "$(echo "$sys" | json 'j["HttpPort"]')" = "$HTTP_PORT" ] || fail "HttpPort: $sys"
pass "environment wins over the file; RegisteredUsers from JSON text; 401 without credentials"

r=$(curl -sf -u 'orthanc:s3cret pw' -X POST --data-binary @"$PYDICOM_FILES/CT_small.dcm" "$URL/instances") || fail "upload"
echo "$r" | json 'j["Status"]' | grep -qx Success || fail "upload: $r"
[ -f "$T/db/index.sqlite" ] || fail "index not in ORTHANC__INDEX_DIRECTORY"
pass "upload stored under the overridden StorageDirectory"

# The health probe counts 401 as alive without credentials, and needs 200 with them.
HC="$MP_SRC/docker/healthcheck.sh"
bash "$HC" || fail "healthcheck (no credentials, 401) unhealthy"
MINIPACS_HEALTHCHECK_AUTH='orthanc:s3cret pw' bash "$HC" || fail "healthcheck with credentials unhealthy"
if MINIPACS_HEALTHCHECK_AUTH='orthanc:wrong' bash "$HC" 2>/dev/null; then fail "healthcheck healthy with wrong credentials"; fi
pass "healthcheck with and without credentials"
