#!/usr/bin/env bash
# Bad input: empty body, text, truncated DICOM, missing StudyInstanceUID, garbage gzip:
# each is a 400 with a JSON error; nothing on disk or in the index; the server lives on.
source "$(dirname "$0")/lib.sh"
start_server
printf 'hello, I am not DICOM\n' > "$T/text.txt"
: > "$T/empty"
$PY - "$PYDICOM_FILES/CT_small.dcm" "$T/nostudy.dcm" <<'PY'
import sys, pydicom
ds = pydicom.dcmread(sys.argv[1]); del ds.StudyInstanceUID; ds.save_as(sys.argv[2])
PY
head -c 3000 "$PYDICOM_FILES/CT_small.dcm" > "$T/cut.dcm"
for f in "$T/empty" "$T/text.txt" "$PYDICOM_FILES/MR_truncated.dcm" "$T/nostudy.dcm" "$T/cut.dcm"; do
  code=$(curl -s -o "$T/r.json" -w '%{http_code}' -X POST --data-binary @"$f" "$URL/instances")
  [ "$code" = 400 ] || fail "$(basename "$f"): HTTP $code"
  json 'j["HttpStatus"]==400 and j["Uri"]=="/instances" and j["OrthancStatus"]==15' < "$T/r.json" | grep -qx True || fail "$(basename "$f"): $(cat "$T/r.json")"
done
code=$(curl -s -o "$T/r.json" -w '%{http_code}' -X POST -H 'Content-Encoding: gzip' --data-binary @"$T/text.txt" "$URL/instances")
[ "$code" = 400 ] || fail "bad gzip: HTTP $code"
[ "$(find "$T/db" -type f ! -name 'index.sqlite*' | wc -l)" = 0 ] || fail "files written: $(find "$T/db" -type f)"
[ "$(http GET /statistics | json 'j["CountInstances"]')" = 0 ] || fail "rows written"
[ "$(http GET /changes | json 'len(j["Changes"])')" = 0 ] || fail "changes logged"
# gzip of a real file is accepted
gzip -c "$PYDICOM_FILES/CT_small.dcm" > "$T/ct.gz"
code=$(curl -s -o "$T/r.json" -w '%{http_code}' -X POST -H 'Content-Encoding: gzip' --data-binary @"$T/ct.gz" "$URL/instances")
[ "$code" = 200 ] || fail "gzip upload: HTTP $code $(cat "$T/r.json")"
kill -0 "$SERVER_PID" || fail "server died"
pass "bad input refused cleanly"
