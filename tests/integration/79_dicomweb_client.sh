#!/usr/bin/env bash
# QIDO-RS and WADO-RS through a client nobody here wrote: dicomweb-client (npm, the library
# OHIF uses) from Node (tests/dicomweb/client.mjs, installed from its package-lock.json by
# `npm ci`), without and with HTTP Basic authentication.
source "$(dirname "$0")/lib.sh"
DW_DIR="$MP_SRC/tests/dicomweb"
command -v node >/dev/null || fail "node is missing (scripts/deps.sh installs nodejs)"
if [ ! -f "$DW_DIR/node_modules/dicomweb-client/package.json" ]; then
  (cd "$DW_DIR" && npm ci --no-audit --no-fund --silent) || fail "npm ci in tests/dicomweb"
fi
start_server
upload "$PYDICOM_FILES/CT_small.dcm" >/dev/null
upload "$PYDICOM_FILES/MR_small.dcm" >/dev/null
node "$DW_DIR/client.mjs" "$URL" "" "" || fail "dicomweb-client, no authentication"
stop_server
write_config '"AuthenticationEnabled": true, "RegisteredUsers": {"alice": "s3cret"}'
"$MINIPACS_BIN" "$T/Orthanc.json" >>"$T/server.log" 2>&1 &
SERVER_PID=$!
for _ in $(seq 1 200); do
  [ "$(curl -s -o /dev/null -w '%{http_code}' "$URL/system" || true)" = 401 ] && break
  sleep 0.05
done
node "$DW_DIR/client.mjs" "$URL" alice s3cret || fail "dicomweb-client with authentication"
pass "dicomweb-client (QIDO-RS, WADO-RS) with and without authentication"
