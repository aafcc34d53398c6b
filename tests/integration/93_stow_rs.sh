#!/usr/bin/env bash
# 93_stow_rs: STOW-RS (rest/h_stow.c, server/multipart.c) with curl: stored files are the bytes
# sent; the PS3.18 answer (ReferencedSOPSequence with RetrieveURLs, FailedSOPSequence with
# reasons) and its status (200 all, 202 some, 409 none); the study of the URL enforced
# before anything is written; hostile bodies (no boundary, a part that never ends, nested
# multiparts, 10,000 parts, 64 KB of part headers) refused with 400 and NOTHING stored, even
# when valid parts came first; wrong media types 415; a chunked body; dicomweb-client (npm)
# storeInstances; forwarded host in RetrieveURLs; DicomWeb.Enable false.
source "$(dirname "$0")/lib.sh"
BODY="$PY $MP_SRC/tests/tools/multipart_body.py"
F="$PYDICOM_FILES"
CT='Content-Type: multipart/related; type="application/dicom"; boundary=mpTEST42'
write_config '"LogLevel": "info"'
start_server

count() { curl -s "$URL/statistics" | $PY -c 'import json,sys; print(json.load(sys.stdin)["CountInstances"])'; }
stow() {  # stow BODYFILE [PATH] -> status in $T/code, answer in $T/answer.json
  curl -s -o "$T/answer.json" -w '%{http_code}' -X POST -H "$CT" --data-binary @"$1" "$URL/dicom-web/studies${2:-}" > "$T/code"
}
# answer_check 'python expression over a (the answer) and status' description
answer_check() {
  $PY - "$T/answer.json" "$(cat "$T/code")" "$1" <<'PY' || fail "$2: $(cat "$T/code") $(head -c 600 "$T/answer.json")"
import json, sys
a = json.load(open(sys.argv[1])); status = int(sys.argv[2])
def seq(tag): return a.get(tag, {}).get("Value", [])
def val(item, tag): return (item.get(tag, {}).get("Value") or [None])[0]
ok = [(val(i, "00081150"), val(i, "00081155"), val(i, "00081190")) for i in seq("00081199")]
bad = [(val(i, "00081150"), val(i, "00081155"), val(i, "00081197")) for i in seq("00081198")]
sys.exit(0 if eval(sys.argv[3]) else 1)
PY
}

# 1. three files, one request: 200, each referenced with its RetrieveURL; the bytes are kept
FILES="$F/CT_small.dcm $F/MR_small.dcm $F/JPEG2000.dcm"
$BODY "$T/ok.bin" ok $FILES
stow "$T/ok.bin"
answer_check 'status == 200 and len(ok) == 3 and not bad and all(u and u.startswith("http://127.0.0.1:") and "/dicom-web/studies/" in u and "/series/" in u and "/instances/" + s in u for c, s, u in ok) and ok[0][0] == "1.2.840.10008.5.1.4.1.1.2"' "three files"
curl -s -D - -o /dev/null -X POST -H "$CT" --data-binary @"$T/ok.bin" "$URL/dicom-web/studies" | grep -qi '^content-type: application/dicom+json' || fail "the answer is not application/dicom+json"
[ "$(count)" = 3 ] || fail "3 instances expected, $(count) stored"
for f in $FILES; do
  sop=$($PY -c 'import pydicom,sys; print(pydicom.dcmread(sys.argv[1], stop_before_pixels=True).SOPInstanceUID)' "$f")
  id=$(curl -s -X POST -H 'Content-Type: application/json' -d "{\"Level\":\"Instance\",\"Query\":{\"SOPInstanceUID\":\"$sop\"}}" "$URL/tools/find" | $PY -c 'import json,sys; print(json.load(sys.stdin)[0])')
  curl -s -o "$T/back.dcm" "$URL/instances/$id/file"
  cmp -s "$T/back.dcm" "$f" || fail "$f: the stored file differs from the part sent"
done
pass "STOW-RS of 3 files: 200, ReferencedSOPSequence with RetrieveURLs, stored byte for byte"

# 2. the same again (already stored): still referenced, 200, nothing added
stow "$T/ok.bin"
answer_check 'status == 200 and len(ok) == 3 and not bad' "re-sent"
[ "$(count)" = 3 ] || fail "a re-sent study added instances"
pass "re-sent: 200, all referenced, nothing added"

# 3. a DICOM file and a part that is not DICOM: 202, the failure with reason 0xC000
$BODY "$T/mixed.bin" ok "$F/rtplan.dcm" -
stow "$T/mixed.bin"
answer_check 'status == 202 and len(ok) == 1 and len(bad) == 1 and bad[0][2] == 0xC000' "mixed"
[ "$(count)" = 4 ] || fail "the valid part of a mixed request was not stored"
pass "valid + non-DICOM part: 202, FailedSOPSequence reason 0xC000, the valid one stored"

# 4. the study in the URL: another study's instances are refused before being written
CT_STUDY=$($PY -c 'import pydicom,sys; print(pydicom.dcmread(sys.argv[1], stop_before_pixels=True).StudyInstanceUID)' "$F/CT_small.dcm")
$BODY "$T/other.bin" ok "$F/rtdose.dcm" "$F/waveform_ecg.dcm"
stow "$T/other.bin" "/$CT_STUDY"
answer_check 'status == 409 and not ok and len(bad) == 2 and all(r == 0x0110 and s for c, s, r in bad)' "mismatched study"
[ "$(count)" = 4 ] || fail "an instance of another study was stored through /studies/{study}"
$BODY "$T/half.bin" ok "$F/CT_small.dcm" "$F/rtdose.dcm"
stow "$T/half.bin" "/$CT_STUDY"
answer_check "status == 202 and len(ok) == 1 and len(bad) == 1 and a['00081190']['Value'][0].endswith('/dicom-web/studies/$CT_STUDY')" "half mismatched"
[ "$(count)" = 4 ] || fail "the mismatched part was stored"
pass "/studies/{study}: other studies' instances refused (409 when none fits, 202 when some), reason 0x0110, nothing written"

# 5. hostile bodies: 400 and nothing stored, even after valid parts
before=$(count)
hostile() {  # hostile KIND EXPECTED-STATUS MESSAGE-PATTERN [content-type]
  $BODY "$T/h.bin" "$1" "$F/MR_small.dcm" "$F/rtdose.dcm"
  local ct="${4:-$CT}"
  local code
  code=$(curl -s -o "$T/h.json" -w '%{http_code}' -X POST -H "$ct" --data-binary @"$T/h.bin" "$URL/dicom-web/studies")
  [ "$code" = "$2" ] || fail "$1: status $code, expected $2: $(cat "$T/h.json")"
  grep -q "$3" "$T/h.json" || fail "$1: the error does not say '$3': $(cat "$T/h.json")"
  [ "$(count)" = "$before" ] || fail "$1: something was stored"
}
hostile noboundary 400 'no multipart boundary'
hostile ok 400 'no valid boundary' 'Content-Type: multipart/related; type="application/dicom"'
hostile endless 400 'ends inside part 3'
hostile nested 400 'nested'
hostile many 400 'more than 5000 parts'
hostile bigheader 400 'headers exceed'
hostile ok 415 'multipart/related' 'Content-Type: application/dicom'
hostile ok 415 'application/dicom' 'Content-Type: multipart/related; type="application/dicom+json"; boundary=mpTEST42'
code=$(curl -s -o "$T/h.json" -w '%{http_code}' -X POST -H "$CT" -H 'Content-Encoding: gzip' --data-binary @"$T/ok.bin" "$URL/dicom-web/studies")
[ "$code" = 415 ] || fail "a gzip body: $code"
$BODY "$T/empty.bin" ok
stow "$T/empty.bin"; [ "$(cat "$T/code")" = 400 ] || fail "an empty multipart body: $(cat "$T/code")"
grep -q '"HttpStatus"' "$T/answer.json" || fail "the 400 is not Orthanc's JSON error"
[ "$(count)" = "$before" ] || fail "something was stored"
pass "hostile bodies: no boundary, a part that never ends, nested multipart, 10,000 parts, 64 KB headers -> 400; wrong types, gzip -> 415; nothing stored"

# 6. a wrong part type among valid ones: that part fails (0xC000), the others are stored
$BODY "$T/wt.bin" wrongtype "$F/ExplVR_BigEnd.dcm"
stow "$T/wt.bin"
answer_check 'status == 202 and len(ok) == 1 and len(bad) == 1 and bad[0][2] == 0xC000' "wrong part type"
pass "a part of type application/json: failed with 0xC000, the DICOM part stored"

# 7. chunked upload (no Content-Length): streamed the same way
$BODY "$T/chunked.bin" ok "$F/CT_small.dcm" "$F/liver_1frame.dcm"
code=$(curl -s -o "$T/answer.json" -w '%{http_code}' -X POST -H "$CT" -H 'Transfer-Encoding: chunked' --data-binary @"$T/chunked.bin" "$URL/dicom-web/studies")
echo "$code" > "$T/code"
answer_check 'status == 200 and len(ok) == 2' "chunked"
pass "chunked body: 200"

# 8. GET on the STOW route is not STOW: 405 or the QIDO route; POST elsewhere under /dicom-web is not STOW
[ "$(curl -s -o /dev/null -w '%{http_code}' -X POST -H "$CT" --data-binary @"$T/ok.bin" "$URL/dicom-web/series")" != 200 ] || fail "POST /dicom-web/series answered 200"
pass "POST on another DICOMweb path is not STOW"

# 9. through a client nobody here wrote: dicomweb-client's storeInstances (OHIF's upload call)
DW_DIR="$MP_SRC/tests/dicomweb"
command -v node >/dev/null || fail "node is missing (scripts/deps.sh installs nodejs)"
if [ ! -f "$DW_DIR/node_modules/dicomweb-client/package.json" ]; then
  (cd "$DW_DIR" && npm ci --no-audit --no-fund --silent) || fail "npm ci in tests/dicomweb"
fi
node "$DW_DIR/stow.mjs" "$URL" "" "" "$F/rtstruct.dcm" "$F/SC_rgb_small_odd.dcm" || fail "dicomweb-client storeInstances"
pass "dicomweb-client storeInstances: both referenced, the study found by QIDO-RS"

# 10. the RetrieveURLs follow X-Forwarded-Proto/Host, as the other DICOMweb answers
$BODY "$T/fw.bin" ok "$F/CT_small.dcm"
curl -s -o "$T/answer.json" -w '%{http_code}' -X POST -H "$CT" -H 'X-Forwarded-Host: pacs.example.org' \
  -H 'X-Forwarded-Proto: https' --data-binary @"$T/fw.bin" "$URL/dicom-web/studies" > "$T/code"
answer_check 'status == 200 and ok[0][2].startswith("https://pacs.example.org/dicom-web/studies/")' "forwarded host"
pass "RetrieveURLs follow X-Forwarded-Proto/Host"

# 11. DicomWeb.Enable false: no STOW-RS either (404, as without Orthanc's plugin)
stop_server
write_config '"DicomWeb": {"Enable": false}'
start_server
[ "$(curl -s -o /dev/null -w '%{http_code}' -X POST -H "$CT" --data-binary @"$T/fw.bin" "$URL/dicom-web/studies")" = 404 ] \
  || fail "STOW-RS answered with DicomWeb.Enable false"
pass "DicomWeb.Enable false: 404"
