#!/usr/bin/env bash
# 94_ohif_browser: the OHIF Viewer (/ohif/, rest/h_ohif.c) in a real browser on this server's
# DICOMweb routes. Debian's chromium, headless, driven by puppeteer-core (tests/browser, from
# its package-lock.json: it downloads no browser), against two real servers: an open one and
# one with RemoteAccessAllowed and HTTP Basic auth. On each: upload a CT study (pydicom's
# CT_small), open /ohif/, see it in the study list, open it from the list, wait until the
# viewport canvas shows the image (pixels not all one value), open it again by URL as the web
# interface links it; each server's walk within 90 s. Screenshots go to <build>/ohif-screenshots.
source "$(dirname "$0")/lib.sh"
BROWSER_DIR="$MP_SRC/tests/browser"
OHIF="$MP_SRC/third_party/ohif/dist"
command -v node >/dev/null || fail "node is missing (scripts/deps.sh installs nodejs)"
[ -x /usr/bin/chromium ] || fail "chromium is missing (scripts/deps.sh installs it)"
[ -f "$OHIF/index.html" ] || fail "the OHIF Viewer is missing in $OHIF (scripts/deps.sh runs scripts/ohif.sh)"
if [ ! -f "$BROWSER_DIR/node_modules/puppeteer-core/package.json" ]; then
  (cd "$BROWSER_DIR" && PUPPETEER_SKIP_DOWNLOAD=1 npm ci --no-audit --no-fund --silent) || fail "npm ci in tests/browser"
fi
SHOTS="$(dirname "$MINIPACS_BIN")/ohif-screenshots"
rm -rf "$SHOTS"; mkdir -p "$SHOTS"
CT="$PYDICOM_FILES/CT_small.dcm"
read -r STUDY PID <<<"$($PY -c 'import pydicom,sys; d=pydicom.dcmread(sys.argv[1], stop_before_pixels=True); print(d.StudyInstanceUID, d.PatientID)' "$CT")"

write_config "\"OhifDirectory\": \"$OHIF\""
start_server
curl -sf -X POST --data-binary @"$CT" "$URL/instances" >/dev/null || fail "upload to the open server"

# The second server: authentication on, remote access allowed.
AUTH_PORT=$(free_port); AUTH_DICOM=$(free_port)
AUTH_URL="http://127.0.0.1:$AUTH_PORT"
PASS="pw-$RANDOM-$RANDOM"
mkdir -p "$T/auth"
cat > "$T/auth/Orthanc.json" <<JSON
{
  "Name": "it-auth", "StorageDirectory": "$T/auth/db", "IndexDirectory": "$T/auth/db",
  "HttpPort": $AUTH_PORT, "DicomPort": $AUTH_DICOM, "SyncStorageArea": false,
  "RemoteAccessAllowed": true, "AuthenticationEnabled": true,
  "RegisteredUsers": { "alice": "$PASS" }, "OhifDirectory": "$OHIF"
}
JSON
"$MINIPACS_BIN" "$T/auth/Orthanc.json" >>"$T/server.log" 2>&1 &
AUTH_PID=$!
eval "lib_$(declare -f stop_server)"
stop_server() {
  if [ -n "${AUTH_PID:-}" ]; then kill -TERM "$AUTH_PID" 2>/dev/null || true; wait "$AUTH_PID" 2>/dev/null || true; AUTH_PID=""; fi
  lib_stop_server
}
for _ in $(seq 1 200); do
  [ "$(curl -s -o /dev/null -w '%{http_code}' "$AUTH_URL/system")" = 401 ] && break
  sleep 0.05
done
curl -sf -u "alice:$PASS" -X POST --data-binary @"$CT" "$AUTH_URL/instances" >/dev/null || fail "upload to the auth server"
STUDY_ID=$(curl -s "$URL/studies" | $PY -c 'import json,sys; print(json.load(sys.stdin)[0])')

MP_URL="$URL" MP_AUTH_URL="$AUTH_URL" MP_USER=alice MP_PASS="$PASS" MP_SHOTS="$SHOTS" \
  MP_STUDY_UID="$STUDY" MP_STUDY_ID="$STUDY_ID" MP_PATIENT_ID="$PID" MP_BUDGET_S="${MP_BUDGET_S:-90}" \
  timeout 400 node "$BROWSER_DIR/ohif.mjs" || fail "OHIF in the browser"
ls "$SHOTS"/ohif-viewer-open.png "$SHOTS"/ohif-viewer-auth.png >/dev/null || fail "no viewer screenshot"
pass "OHIF in chromium: study list, viewer from the list and by URL, open and with Basic auth (screenshots in $SHOTS)"
