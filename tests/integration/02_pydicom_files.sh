#!/usr/bin/env bash
# Every pydicom test file that dcmdump reads: upload, listed, /file returns the exact bytes.
# Files dcmdump rejects must be refused with 400 and leave nothing behind. Some files share a
# SOPInstanceUID (the same image in several encodings): OverwriteInstances makes the last
# upload the stored one, so each comparison is with the file just sent.
source "$(dirname "$0")/lib.sh"
write_config '"OverwriteInstances": true'
start_server
ok=0; refused=0
for f in "$PYDICOM_FILES"/*.dcm; do
  name=$(basename "$f")
  code=$(curl -s -o "$T/r.json" -w '%{http_code}' -X POST --data-binary @"$f" "$URL/instances")
  if dcmdump -q "$f" >/dev/null 2>&1 && $PY -c "
import pydicom,sys
ds=pydicom.dcmread(sys.argv[1],force=True)
sys.exit(0 if all(str(ds.get(k,'')).strip() for k in ('StudyInstanceUID','SeriesInstanceUID','SOPInstanceUID')) else 1)" "$f" 2>/dev/null; then
    [ "$code" = 200 ] || fail "$name: HTTP $code $(cat "$T/r.json")"
    id=$(json 'j["ID"]' < "$T/r.json")
    curl -sf "$URL/instances/$id/file" -o "$T/back"
    cmp -s "$f" "$T/back" || fail "$name: /file differs"
    http GET /instances/$id >/dev/null; [ "$(status)" = 200 ] || fail "$name: not listed"
    ok=$((ok+1))
  else
    [ "$code" = 400 ] || fail "$name: unreadable file got HTTP $code"
    json 'j["HttpStatus"]' < "$T/r.json" | grep -qx 400 || fail "$name: no JSON error"
    refused=$((refused+1))
  fi
done
echo "stored $ok, refused $refused"
[ $ok -ge 50 ] || fail "only $ok files stored"
n=$(http GET /instances | json 'len(j)')
files=$(find "$T/db" -type f ! -name 'index.sqlite*' | wc -l)
[ "$files" -le "$ok" ] && [ "$files" = "$n" ] || fail "files on disk ($files) != instances ($n)"
pass "pydicom files: $ok stored, $refused refused, $n distinct instances"
