#!/usr/bin/env bash
# 93_wado_uri: WADO-URI at /wado (rest/h_wado.c) with curl: application/dicom is the stored
# file byte for byte; image/jpeg (the default) and image/png are the instance's rendering
# (the same image as /instances/{id}/frames/{n}/rendered, decoded by PIL), for a chosen frame
# of a multi-frame object, bounded by rows/columns, with a window; wrong study/series, unknown
# UID, frame past the end -> 404; bad requestType, missing objectUID, malformed UID or number,
# unsupported contentType -> 400; behind Basic auth like every route.
source "$(dirname "$0")/lib.sh"
F="$PYDICOM_FILES"
write_config
start_server

up() { curl -s -X POST --data-binary @"$1" "$URL/instances" | $PY -c 'import json,sys; print(json.load(sys.stdin)["ID"])'; }
uids() { $PY -c 'import pydicom,sys; d=pydicom.dcmread(sys.argv[1], stop_before_pixels=True); print(d.StudyInstanceUID, d.SeriesInstanceUID, d.SOPInstanceUID)' "$1"; }
get() {  # get QUERY OUT -> "code type"
  curl -s -o "$2" -w '%{http_code} %{content_type}' "$URL/wado?$1"
}
CT_ID=$(up "$F/CT_small.dcm"); read -r S SE O <<<"$(uids "$F/CT_small.dcm")"
MF_ID=$(up "$F/SC_rgb_rle_2frame.dcm"); read -r MS MSE MO <<<"$(uids "$F/SC_rgb_rle_2frame.dcm")"
BASE="requestType=WADO&studyUID=$S&seriesUID=$SE&objectUID=$O"

r=$(get "$BASE&contentType=application/dicom" "$T/o.dcm")
[ "$r" = "200 application/dicom" ] || fail "application/dicom: $r"
cmp -s "$T/o.dcm" "$F/CT_small.dcm" || fail "application/dicom is not the stored file"
pass "contentType=application/dicom: the stored file, byte for byte"

img_check() {  # img_check FILE FORMAT WIDTH HEIGHT
  $PY - "$@" <<'PY' || fail "image check $*"
import sys
from PIL import Image
im = Image.open(sys.argv[1]); im.load()
assert im.format == sys.argv[2], im.format
assert im.size == (int(sys.argv[3]), int(sys.argv[4])), im.size
lo, hi = im.convert("L").getextrema()
assert hi - lo > 50, (lo, hi)   # an image, not a flat field
PY
}
r=$(get "$BASE" "$T/d.jpg"); [ "$r" = "200 image/jpeg" ] || fail "default contentType: $r"
img_check "$T/d.jpg" JPEG 128 128
r=$(get "$BASE&contentType=image/png" "$T/p.png"); [ "$r" = "200 image/png" ] || fail "image/png: $r"
img_check "$T/p.png" PNG 128 128
curl -s -H 'Accept: image/png' -o "$T/rendered.png" "$URL/instances/$CT_ID/frames/0/rendered"
cmp -s "$T/p.png" "$T/rendered.png" || fail "WADO-URI's PNG differs from /frames/0/rendered"
r=$(get "$BASE&contentType=image/png&rows=64&columns=64" "$T/s.png"); [ "$r" = "200 image/png" ] || fail "rows/columns: $r"
img_check "$T/s.png" PNG 64 64
r=$(get "$BASE&contentType=image/png&windowCenter=40&windowWidth=400" "$T/w.png"); [ "$r" = "200 image/png" ] || fail "window: $r"
cmp -s "$T/w.png" "$T/p.png" && fail "windowCenter/windowWidth changed nothing"
r=$(get "$BASE&contentType=image/gif,image/png" "$T/l.png"); [ "$r" = "200 image/png" ] || fail "a contentType list: $r"
r=$(get "requestType=WADO&objectUID=$O&contentType=image/jpeg&imageQuality=20" "$T/q.jpg"); [ "$r" = "200 image/jpeg" ] || fail "objectUID alone: $r"
[ "$(stat -c %s "$T/q.jpg")" -lt "$(stat -c %s "$T/d.jpg")" ] || fail "imageQuality=20 is not smaller than the default"
pass "image/jpeg (default) and image/png: 128x128 renderings, = /rendered, rows/columns, window, type lists, imageQuality"

MB="requestType=WADO&studyUID=$MS&seriesUID=$MSE&objectUID=$MO&contentType=image/png"
r=$(get "$MB&frameNumber=2" "$T/f2.png"); [ "$r" = "200 image/png" ] || fail "frameNumber=2: $r"
curl -s -H 'Accept: image/png' -o "$T/r2.png" "$URL/instances/$MF_ID/frames/1/rendered"
cmp -s "$T/f2.png" "$T/r2.png" || fail "frameNumber=2 is not frame 1 of /frames/{n}/rendered"
r=$(get "$MB&frameNumber=1" "$T/f1.png")
cmp -s "$T/f1.png" "$T/f2.png" && fail "frames 1 and 2 are the same image"
pass "multi-frame: frameNumber=2 is the second frame"

status() { curl -s -o "$T/e.json" -w '%{http_code}' "$URL/wado?$1"; }
[ "$(status "requestType=WADO&studyUID=1.2.3&seriesUID=$SE&objectUID=$O")" = 404 ] || fail "another study is not 404"
[ "$(status "requestType=WADO&studyUID=$S&seriesUID=1.2.3&objectUID=$O")" = 404 ] || fail "another series is not 404"
[ "$(status "requestType=WADO&objectUID=1.2.3.4")" = 404 ] || fail "an unknown UID is not 404"
[ "$(status "$MB&frameNumber=3")" = 404 ] || fail "a frame past the end is not 404"
for q in "objectUID=$O" "requestType=XX&objectUID=$O" "requestType=WADO" "requestType=WADO&objectUID=1.2.abc" \
         "requestType=WADO&objectUID=$O*" "requestType=WADO&objectUID=$O&frameNumber=0" "requestType=WADO&objectUID=$O&rows=x" \
         "requestType=WADO&objectUID=$O&contentType=text/html" "requestType=WADO&objectUID=$O&windowCenter=1"; do
  [ "$(status "$q")" = 400 ] || fail "$q: $(cat "$T/e.json")"
  grep -q '"HttpStatus":	400' "$T/e.json" || fail "$q: not Orthanc's JSON error"
done
pass "404 for another study/series, unknown UID, missing frame; 400 for bad requestType, missing or malformed UIDs, bad numbers, unsupported contentType"

stop_server
write_config '"RemoteAccessAllowed": true, "AuthenticationEnabled": true, "RegisteredUsers": {"alice": "pw"}'
start_server() { "$MINIPACS_BIN" "$T/Orthanc.json" >>"$T/server.log" 2>&1 & SERVER_PID=$!; for _ in $(seq 1 200); do [ "$(curl -s -o /dev/null -w '%{http_code}' "$URL/system")" = 401 ] && return; sleep 0.05; done; fail "auth server"; }
start_server
[ "$(curl -s -o /dev/null -w '%{http_code}' "$URL/wado?$BASE")" = 401 ] || fail "/wado is open without credentials"
[ "$(curl -s -u alice:pw -o /dev/null -w '%{http_code}' "$URL/wado?$BASE")" = 200 ] || fail "/wado with credentials"
pass "behind Basic auth: 401 without credentials, 200 with"
