#!/usr/bin/env bash
# 94_ohif_serve: the OHIF Viewer's files at /ohif/ (rest/h_ohif.c), checked with curl: the
# redirect, index.html with its links under /ohif/, the generated app-config.js (router base
# name, the same-origin DICOMweb data source, no tour, no investigational-use dialog), files
# with their types, ETag and 304, client routes answered with index.html, unknown files 404,
# the same behind Basic auth, and the 404 page when the viewer is absent. The browser test is
# 94_ohif_browser.
source "$(dirname "$0")/lib.sh"
OHIF="$MP_SRC/third_party/ohif/dist"
[ -f "$OHIF/index.html" ] || fail "the OHIF Viewer is missing in $OHIF (scripts/deps.sh runs scripts/ohif.sh)"

write_config "\"OhifDirectory\": \"$OHIF\""
start_server

code() { curl -s -o /dev/null -w '%{http_code}' "$@"; }

[ "$(code "$URL/ohif")" = 302 ] || fail "/ohif is not a redirect"
curl -s -D - -o /dev/null "$URL/ohif" | tr -d '\r' | grep -qi '^location: ohif/$' || fail "/ohif does not redirect to ohif/"
curl -s -D "$T/h" -o "$T/index.html" "$URL/ohif/"
grep -qi '^content-type: text/html' "$T/h" || fail "/ohif/ is not HTML"
grep -q "window.PUBLIC_URL = '/ohif/'" "$T/index.html" || fail "PUBLIC_URL is not /ohif/"
grep -qE 'src="/ohif/app\.bundle\.[0-9a-f]+\.js"' "$T/index.html" || fail "the app bundle is not linked under /ohif/"
grep -q 'src="/ohif/app-config.js"' "$T/index.html" || fail "app-config.js is not linked under /ohif/"
if grep -qE '(href|src)="/[^o/]' "$T/index.html"; then fail "a link is left outside /ohif/: $(grep -oE '(href|src)="/[^o/][^"]*"' "$T/index.html" | head -3)"; fi
pass "/ohif -> ohif/; index.html links everything under /ohif/"

curl -s -D "$T/h" -o "$T/app-config.js" "$URL/ohif/app-config.js"
grep -qi '^content-type: application/javascript' "$T/h" || fail "app-config.js is not JavaScript"
for want in "routerBasename: '/ohif'" 'origin + "/dicom-web"' "qidoRoot: root" "wadoRoot: root" \
            "wadoUriRoot: origin + '/wado'" "'ohif.tours': { \$set: [] }" "investigationalUseDialog: { option: 'never' }" \
            "defaultDataSourceName: 'dicomweb'"; do
  grep -qF "$want" "$T/app-config.js" || fail "app-config.js lacks: $want"
done
if grep -q 'cloudfront\|https://' "$T/app-config.js"; then fail "app-config.js points at another server"; fi
node --check "$T/app-config.js" || fail "app-config.js is not valid JavaScript"
pass "app-config.js: router base name, same-origin DICOMweb data source, no tour, no dialog"

bundle=$(grep -oE 'app\.bundle\.[0-9a-f]+\.js' "$T/index.html" | head -1)
curl -s -D "$T/h" -o "$T/bundle.js" "$URL/ohif/$bundle"
grep -qi '^content-type: application/javascript' "$T/h" || fail "$bundle is not JavaScript"
cmp -s "$T/bundle.js" "$OHIF/$bundle" || fail "$bundle differs from the file"
grep -q '__webpack_require__.p = "/ohif/"' "$T/bundle.js" || fail "webpack's public path is not /ohif/ (scripts/ohif.sh)"
etag=$(tr -d '\r' < "$T/h" | awk 'tolower($1)=="etag:" {print $2}')
[ -n "$etag" ] || fail "no ETag on $bundle"
[ "$(code -H "If-None-Match: $etag" "$URL/ohif/$bundle")" = 304 ] || fail "no 304 for a matching If-None-Match"
wasm=$(cd "$OHIF" && ls ./*.wasm | head -1); wasm=${wasm#./}
curl -s -D - -o /dev/null "$URL/ohif/$wasm" | grep -qi '^content-type: application/wasm' || fail "$wasm is not application/wasm"
curl -s -D - -o /dev/null "$URL/ohif/app.bundle.css" | grep -qi '^content-type: text/css' || fail "the stylesheet is not text/css"
curl -s -D - -o /dev/null "$URL/ohif/assets/favicon.ico" | grep -qi '^content-type: image/x-icon' || fail "favicon type"
pass "files: bytes as on disk, ETag $etag and 304, JavaScript / wasm / CSS / icon types"

for route in "viewer?StudyInstanceUIDs=1.2.3" "viewer/dicomweb?StudyInstanceUIDs=1.2.3" "localbasic"; do
  curl -s -o "$T/r.html" -w '%{http_code}' "$URL/ohif/$route" > "$T/code"
  [ "$(cat "$T/code")" = 200 ] || fail "/ohif/$route answers $(cat "$T/code")"
  cmp -s "$T/r.html" "$T/index.html" || fail "/ohif/$route is not index.html"
done
[ "$(code "$URL/ohif/nope.js")" = 404 ] || fail "an unknown file is not 404"
[ "$(code "$URL/ohif/.minipacs-ohif")" = 404 ] || fail "a hidden file is served"
[ "$(code "$URL/ohif/assets/../../index.html")" = 404 ] || fail "a .. path is not 404"
[ "$(code "$URL/ohif/%2e%2e/%2e%2e/Orthanc.json")" = 404 ] || fail "an encoded .. path is not 404"
[ "$(code -X POST "$URL/ohif/")" = 405 ] || fail "POST /ohif/ is not 405"
pass "client routes -> index.html; unknown, hidden and .. paths -> 404; POST -> 405"

# Absent: a clear 404 page saying how to get it, for any path under /ohif/.
stop_server
write_config "\"OhifDirectory\": \"$T/no-ohif\""
start_server
curl -s -D "$T/h" -o "$T/missing.html" "$URL/ohif/"
head -1 "$T/h" | grep -q ' 404' || fail "/ohif/ without the viewer is not 404"
grep -qi '^content-type: text/html' "$T/h" || fail "the 404 page is not HTML"
grep -q 'scripts/ohif.sh' "$T/missing.html" && grep -q 'OhifDirectory' "$T/missing.html" && grep -q "$T/no-ohif" "$T/missing.html" \
  || fail "the 404 page does not say how to get the viewer: $(cat "$T/missing.html")"
[ "$(code "$URL/ohif/viewer?StudyInstanceUIDs=1.2")" = 404 ] || fail "/ohif/viewer without the viewer is not 404"
[ "$(code "$URL/ohif/app-config.js")" = 200 ] || fail "app-config.js is not served without the viewer"
pass "without the viewer: 404 HTML page naming the folder, scripts/ohif.sh and OhifDirectory"

# The environment variable, behind Basic auth.
stop_server
write_config '"RemoteAccessAllowed": true, "AuthenticationEnabled": true, "RegisteredUsers": {"alice": "s3cret"}'
ORTHANC__OHIF_DIRECTORY="$OHIF" "$MINIPACS_BIN" "$T/Orthanc.json" >>"$T/server.log" 2>&1 &
SERVER_PID=$!
for _ in $(seq 1 200); do [ "$(code "$URL/system")" = 401 ] && break; sleep 0.05; done
[ "$(code "$URL/ohif/")" = 401 ] || fail "/ohif/ is open without credentials"
[ "$(code -u alice:s3cret "$URL/ohif/")" = 200 ] || fail "/ohif/ with credentials (ORTHANC__OHIF_DIRECTORY) is not 200"
[ "$(code -u alice:s3cret "$URL/ohif/$bundle")" = 200 ] || fail "$bundle with credentials is not 200"
pass "behind Basic auth: 401 without credentials, 200 with; ORTHANC__OHIF_DIRECTORY"
