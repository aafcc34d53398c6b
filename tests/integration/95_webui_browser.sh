#!/usr/bin/env bash
# 95_webui_browser: the web interface (rest/www) in a real browser. Debian's chromium,
# headless, driven by puppeteer-core (tests/browser, installed from its package-lock.json by
# `npm ci`: it downloads no browser) against two real servers: an open one (walkthrough, the
# memory panel with a 1 s MemoryTrimmingInterval) and one
# with RemoteAccessAllowed and HTTP Basic auth, where the study actions run too (drag and drop
# of a folder and a ZIP, Modify, custom anonymization, the jobs page's buttons on real jobs,
# Send to a storescp started here). Screenshots go to <build>/webui-screenshots.
source "$(dirname "$0")/lib.sh"
BROWSER_DIR="$MP_SRC/tests/browser"
command -v node >/dev/null || fail "node is missing (scripts/deps.sh installs nodejs)"
[ -x /usr/bin/chromium ] || fail "chromium is missing (scripts/deps.sh installs it)"
if [ ! -f "$BROWSER_DIR/node_modules/puppeteer-core/package.json" ]; then
  (cd "$BROWSER_DIR" && PUPPETEER_SKIP_DOWNLOAD=1 npm ci --no-audit --no-fund --silent) || fail "npm ci in tests/browser"
fi
SHOTS="$(dirname "$MINIPACS_BIN")/webui-screenshots"
rm -rf "$SHOTS"; mkdir -p "$SHOTS"

write_config '"MemoryTrimmingInterval": 1'
start_server

# The second server: authentication on, remote access allowed, one job at a time (so that a job
# stays Pending behind one the test holds: a send to "hole", a port where the test's node
# process accepts connections and never answers), and "sink", a real storescp.
AUTH_PORT=$(free_port); AUTH_DICOM=$(free_port); SINK_PORT=$(free_port); HOLE_PORT=$(free_port)
AUTH_URL="http://127.0.0.1:$AUTH_PORT"
PASS="pw-$RANDOM-$RANDOM"
mkdir -p "$T/auth"
cat > "$T/auth/Orthanc.json" <<JSON
{
  "Name": "it-auth", "StorageDirectory": "$T/auth/db", "IndexDirectory": "$T/auth/db",
  "HttpPort": $AUTH_PORT, "DicomPort": $AUTH_DICOM, "SyncStorageArea": false,
  "RemoteAccessAllowed": true, "AuthenticationEnabled": true,
  "RegisteredUsers": { "alice": "$PASS" }, "MemoryTrimmingInterval": 1, "ConcurrentJobs": 1,
  "DicomModalities": { "sink": ["SINK", "127.0.0.1", $SINK_PORT],
                       "hole": { "AET": "HOLE", "Host": "127.0.0.1", "Port": $HOLE_PORT, "Timeout": 60 } }
}
JSON
mkdir -p "$T/sink"
storescp -aet SINK -od "$T/sink" "$SINK_PORT" >"$T/storescp.log" 2>&1 &
SINK_PID=$!
cleanup_hook() { kill "$SINK_PID" 2>/dev/null; wait "$SINK_PID" 2>/dev/null; return 0; }
"$MINIPACS_BIN" "$T/auth/Orthanc.json" >>"$T/server.log" 2>&1 &
AUTH_PID=$!
# lib.sh's exit trap stops its server; ours goes with it.
eval "lib_$(declare -f stop_server)"
stop_server() {
  if [ -n "${AUTH_PID:-}" ]; then kill -TERM "$AUTH_PID" 2>/dev/null || true; wait "$AUTH_PID" 2>/dev/null || true; AUTH_PID=""; fi
  lib_stop_server
}
for _ in $(seq 1 200); do
  [ "$(curl -s -o /dev/null -w '%{http_code}' "$AUTH_URL/system")" = 401 ] && break
  sleep 0.05
done

# ETag and 304 on the embedded files, and their types (curl: the browser hides 304s).
etag=$(curl -s -D - -o /dev/null "$URL/app/app.css" | tr -d '\r' | awk 'tolower($1)=="etag:" {print $2}')
[ -n "$etag" ] || fail "no ETag on /app/app.css"
[ "$(curl -s -o /dev/null -w '%{http_code}' -H "If-None-Match: $etag" "$URL/app/app.css")" = 304 ] || fail "no 304 for a matching If-None-Match"
curl -s -D - -o /dev/null "$URL/app/js/main.js" | grep -qi '^content-type: text/javascript' || fail "main.js is not served as JavaScript"
curl -s -D - -o /dev/null "$URL/app/" | grep -qi '^content-type: text/html' || fail "/app/ is not HTML"
[ "$(curl -s -o /dev/null -w '%{http_code}' "$URL/app/nope.js")" = 404 ] || fail "an unknown file is not 404"
pass "embedded files: ETag $etag, 304 on If-None-Match, Content-Types, 404"
# The page asks for its files under /app/v/<version>/: cached for good (immutable); the page
# itself is revalidated; another version, or the page under /v/, answers 404.
page=$(curl -s -D "$T/page.h" "$URL/app/")
ver=$(grep -o 'src="v/[0-9a-f]\{16\}/js/main.js"' <<<"$page" | cut -d/ -f2)
[ -n "$ver" ] || fail "index.html does not name its files under v/<version>/"
! grep -q '@WWW_VERSION@' <<<"$page" || fail "the version placeholder was left in index.html"
grep -qi '^cache-control: no-cache' "$T/page.h" || fail "the page itself is not revalidated"
curl -s -D "$T/v.h" -o "$T/v.js" "$URL/app/v/$ver/js/main.js"
grep -qi '^cache-control: .*max-age=31536000.*immutable' "$T/v.h" || fail "a versioned file is not cached for good: $(grep -i cache-control "$T/v.h")"
curl -s -o "$T/plain.js" "$URL/app/js/main.js"
cmp -s "$T/v.js" "$T/plain.js" || fail "the versioned main.js differs from /app/js/main.js"
[ "$(curl -s -o /dev/null -w '%{http_code}' "$URL/app/v/0000000000000000/js/main.js")" = 404 ] || fail "another version is not 404"
[ "$(curl -s -o /dev/null -w '%{http_code}' "$URL/app/v/$ver/index.html")" = 404 ] || fail "the page under /v/ is not 404"
pass "versioned files: index.html names v/$ver/, immutable there, no-cache for the page, 404 for another version"

MP_URL="$URL" MP_AUTH_URL="$AUTH_URL" MP_SINK_DIR="$T/sink" MP_HOLE_PORT="$HOLE_PORT" MP_USER=alice MP_PASS="$PASS" MP_SHOTS="$SHOTS" \
  MP_DATA="$PYDICOM_FILES" timeout 600 node "$BROWSER_DIR/walkthrough.mjs" || fail "browser walkthrough"
ls "$SHOTS"/*.png >/dev/null || fail "no screenshot"
pass "browser walkthrough (screenshots in $SHOTS)"
