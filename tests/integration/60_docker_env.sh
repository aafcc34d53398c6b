#!/usr/bin/env bash
# Container-style configuration: the binary started with NO configuration file and only
# ORTHANC__HTTP_PORT / ORTHANC__DICOM_PORT / ORTHANC__STORAGE_DIRECTORY / ORTHANC__DICOM_AET
# listens and stores where they say and reports them in /system; ORTHANC__HTTP_PORT=abc stops
# start-up with a message naming the variable. The image's health-check probe
# (docker/healthcheck.sh) is run against the live server and against nothing.
source "$(dirname "$0")/lib.sh"

# Nothing from the caller's environment may leak into the scenario.
for v in $(env | grep -o '^ORTHANC__[A-Z0-9_]*' || true); do unset "$v"; done
mkdir -p "$T/cwd"
cd "$T/cwd"     # the embedded default storage would land here: it must not

export ORTHANC__HTTP_PORT=$HTTP_PORT
export ORTHANC__DICOM_PORT=$DICOM_PORT
export ORTHANC__STORAGE_DIRECTORY="$T/envdb"
export ORTHANC__DICOM_AET=ENV_AET_60

"$MINIPACS_BIN" >>"$T/server.log" 2>&1 &
SERVER_PID=$!
up=0
for _ in $(seq 1 200); do
  if curl -sf "$URL/system" >/dev/null 2>&1; then up=1; break; fi
  kill -0 "$SERVER_PID" 2>/dev/null || fail "server without a configuration file exited at start"
  sleep 0.05
done
[ $up = 1 ] || fail "no answer on ORTHANC__HTTP_PORT=$HTTP_PORT"
pass "listening on ORTHANC__HTTP_PORT with no configuration file"

sys=$(http GET /system)
[ "$(status)" = 200 ] || fail "/system: $(status)"
[ "$(echo "$sys" | json 'j["HttpPort"]')" = "$HTTP_PORT" ] || fail "/system HttpPort: $sys"
[ "$(echo "$sys" | json 'j["DicomPort"]')" = "$DICOM_PORT" ] || fail "/system DicomPort: $sys"
[ "$(echo "$sys" | json 'j["DicomAet"]')" = ENV_AET_60 ] || fail "/system DicomAet: $sys"
pass "/system reports HttpPort, DicomPort, DicomAet from the environment"

# Storage and index in ORTHANC__STORAGE_DIRECTORY (IndexDirectory follows it), nothing in cwd.
r=$(upload "$PYDICOM_FILES/CT_small.dcm")
echo "$r" | json 'j["Status"]' | grep -qx Success || fail "upload: $r"
[ -f "$T/envdb/index.sqlite" ] || fail "no index.sqlite in ORTHANC__STORAGE_DIRECTORY ($(ls -A "$T/envdb" 2>&1))"
[ "$(find "$T/envdb" -mindepth 3 -type f | wc -l)" -ge 1 ] || fail "no stored file under ORTHANC__STORAGE_DIRECTORY"
[ -z "$(ls -A "$T/cwd")" ] || fail "files created in the working directory: $(ls -A "$T/cwd")"
pass "storage and index in ORTHANC__STORAGE_DIRECTORY"

# The image's HEALTHCHECK probe: reads ORTHANC__HTTP_PORT like the server.
HC="$MP_SRC/docker/healthcheck.sh"
bash "$HC" || fail "healthcheck unhealthy against a live server"
closed=$(free_port)
if MINIPACS_HEALTHCHECK_PORT=$closed bash "$HC" 2>/dev/null; then fail "healthcheck healthy on a closed port"; fi
pass "healthcheck: healthy when /system answers, unhealthy on a closed port"

stop_server
if bash "$HC" 2>/dev/null; then fail "healthcheck healthy after the server stopped"; fi
pass "healthcheck unhealthy once stopped"

# A bad value stops start-up, naming the variable, without listening anywhere.
bad_port=$(free_port)
set +e
ORTHANC__HTTP_PORT=abc ORTHANC__DICOM_PORT=$bad_port timeout 10 "$MINIPACS_BIN" > "$T/bad.out" 2> "$T/bad.err"
rc=$?
set -e
[ $rc -ne 124 ] || fail "ORTHANC__HTTP_PORT=abc: the server started anyway (still running after 10 s)"
[ $rc -ne 0 ] || fail "ORTHANC__HTTP_PORT=abc: exit status 0"
grep -q 'ORTHANC__HTTP_PORT' "$T/bad.err" "$T/bad.out" \
  || fail "ORTHANC__HTTP_PORT=abc: the message does not name the variable: $(cat "$T/bad.err" "$T/bad.out")"
pass "ORTHANC__HTTP_PORT=abc refused (exit $rc): $(head -1 "$T/bad.err")"
