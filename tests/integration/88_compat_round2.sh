#!/usr/bin/env bash
# Issue 11, the rest, as Orthanc 1.10.1 answers (compared request by request): metadata ETag
# "<revision>-<md5>" with If-Match / If-None-Match, numeric user metadata 1024..65535 without
# declaration, 403/404 on read-only/unknown names; PixelDataOffset = the offset of PixelData's
# element header (explicit, implicit, big endian), none without a meta header; a delete removes
# the change-log entries of every resource it removes (none logged for it); modify, anonymize
# and bulk jobs log New* changes only (no Modified*/Anonymized*); elements stored after
# PixelData listed and served by /content.
source "$(dirname "$0")/lib.sh"
write_config '"UserMetadata": { "Sample": 1024 }'
start_server
F="$PYDICOM_FILES/CT_small.dcm"
I=$(upload "$F" | json 'j["ID"]')
etag() { grep -i '^ETag:' "$T/h" | tr -d '\r' | sed 's/^[^:]*: *//'; }
md5() { printf '%s' "$1" | md5sum | cut -d' ' -f1; }

# ---- metadata ETag, If-Match, If-None-Match ----
curl -s -D "$T/h" -o /dev/null -X PUT --data-binary 'hello' "$URL/instances/$I/metadata/Sample"
e0="\"0-$(md5 hello)\""
[ "$(etag)" = "$e0" ] || fail "PUT ETag $(etag), want $e0"
curl -s -D "$T/h" -o /dev/null "$URL/instances/$I/metadata/Sample"; [ "$(etag)" = "$e0" ] || fail "GET ETag"
code=$(curl -s -o /dev/null -w '%{http_code}' -H "If-None-Match: $e0" "$URL/instances/$I/metadata/Sample")
[ "$code" = 304 ] || fail "If-None-Match same ETag -> $code"
code=$(curl -s -o /dev/null -w '%{http_code}' -H 'If-None-Match: "0-00000000000000000000000000000000"' "$URL/instances/$I/metadata/Sample")
[ "$code" = 200 ] || fail "If-None-Match other ETag -> $code"
code=$(curl -s -o /dev/null -w '%{http_code}' -H 'If-None-Match: 3' "$URL/instances/$I/metadata/Sample")
[ "$code" = 400 ] || fail "malformed If-None-Match -> $code"
curl -s -o "$T/b" -X PUT -H 'If-Match: "0"' --data-binary x "$URL/instances/$I/metadata/Sample"
json 'j["HttpStatus"] == 400 and "revision followed by MD5" in j["Details"]' <"$T/b" | grep -qx True || fail "If-Match without MD5: $(cat "$T/b")"
code=$(curl -s -o "$T/b" -w '%{http_code}' -X PUT -H "If-Match: \"0-$(md5 other)\"" --data-binary x "$URL/instances/$I/metadata/Sample")
[ "$code" = 409 ] && json 'j["OrthancStatus"] == 43' <"$T/b" | grep -qx True || fail "If-Match with another MD5 -> $code $(cat "$T/b")"
code=$(curl -s -o /dev/null -w '%{http_code}' -X PUT -H "If-Match: 0-$(md5 hello)" --data-binary bye "$URL/instances/$I/metadata/Sample")
[ "$code" = 200 ] || fail "If-Match unquoted, current -> $code"
[ "$(http GET /instances/$I/metadata/Sample)" = bye ] || fail "value after If-Match PUT"
pass "ETag <revision>-<md5>, If-Match, If-None-Match"

# ---- numeric user metadata, read-only and unknown names ----
http PUT /instances/$I/metadata/4242 -d numeric >/dev/null; [ "$(status)" = 200 ] || fail "PUT 4242 -> $(status)"
[ "$(http GET /instances/$I/metadata/4242)" = numeric ] || fail "GET 4242"
http GET "/instances/$I/metadata?expand" | json 'j["4242"] == "numeric"' | grep -qx True || fail "4242 in ?expand"
http DELETE /instances/$I/metadata/4242 >/dev/null; [ "$(status)" = 200 ] || fail "DELETE 4242 -> $(status)"
http GET /instances/$I/metadata/4242 >/dev/null; [ "$(status)" = 404 ] || fail "4242 after DELETE -> $(status)"
http PUT /instances/$I/metadata/70000 -d x >/dev/null; [ "$(status)" = 403 ] || fail "PUT 70000 -> $(status)"
http PUT /instances/$I/metadata/1000 -d x >/dev/null; [ "$(status)" = 403 ] || fail "PUT 1000 -> $(status)"
http PUT /instances/$I/metadata/ReceptionDate -d x >/dev/null; [ "$(status)" = 403 ] || fail "PUT ReceptionDate -> $(status)"
http PUT /instances/$I/metadata/NoSuchName -d x >/dev/null; [ "$(status)" = 404 ] || fail "PUT unknown name -> $(status)"
pass "numeric user metadata 1024..65535, 403 read-only, 404 unknown"

# ---- PixelDataOffset: the element header's offset; none without meta header ----
for f in CT_small.dcm MR_small_implicit.dcm ExplVR_BigEnd.dcm JPEG2000.dcm; do
  id=$(upload "$PYDICOM_FILES/$f" | json 'j["ID"]')
  want=$($PY - "$PYDICOM_FILES/$f" <<'PY'
import pydicom, sys
# pydicom's raw element knows where its value starts; the header is 8 bytes (implicit VR) or
# 12 (explicit VR OB/OW)
ds = pydicom.dcmread(sys.argv[1])
raw = ds.get_item(0x7FE00010)
print(raw.value_tell - (8 if ds.is_implicit_VR else 12))
PY
)
  got=$(http GET /instances/$id/metadata/PixelDataOffset)
  [ "$got" = "$want" ] || fail "$f: PixelDataOffset $got, want $want"
done
# the dataset of an implicit VR file alone: no preamble, no meta header
$PY - "$PYDICOM_FILES/MR_small_implicit.dcm" "$T/nometa.dcm" <<'PY'
import struct, sys
d = open(sys.argv[1], 'rb').read()
assert d[128:132] == b'DICM' and d[132:136] == b'\x02\x00\x00\x00'
start = 132 + 12 + struct.unpack('<I', d[140:144])[0]
open(sys.argv[2], 'wb').write(d[start:])
PY
http DELETE /instances/$(upload "$PYDICOM_FILES/MR_small_implicit.dcm" | json 'j["ID"]') >/dev/null
id=$(upload "$T/nometa.dcm" | json 'j["ID"]')
[ "$(http GET /instances/$id/metadata/TransferSyntax)" = 1.2.840.10008.1.2 ] || fail "file without meta header not stored as implicit VR"
http GET /instances/$id/metadata/PixelDataOffset >/dev/null; [ "$(status)" = 404 ] || fail "no meta header: PixelDataOffset -> $(status)"
pass "PixelDataOffset as Orthanc (CT 6288, implicit 1502, big endian 1000; none without meta header)"

# ---- elements after PixelData in /content ----
http GET /instances/$I/content | json 'j[-2:] == ["7fe0-0010", "fffc-fffc"]' | grep -qx True || fail "content list: $(cat "$T/body")"
want=$($PY -c "import pydicom; print(pydicom.dcmread('$F')[0xfffcfffc].value.hex())")
[ "$(curl -sf "$URL/instances/$I/content/fffc-fffc" | od -An -v -tx1 | tr -d ' \n')" = "$want" ] || fail "trailing padding bytes"
[ "$(http GET /instances/$I/content/7fe0-0010)" = '["0"]' ] || fail "PixelData item list"
[ "$(curl -sf "$URL/instances/$I/content/7fe0-0010/0" | wc -c)" = 32768 ] || fail "PixelData bytes"
pass "/content lists and serves elements stored after PixelData"

# ---- modify / anonymize / bulk: New* changes only ----
S=$(http GET /instances/$I | json 'j["ParentSeries"]'); ST=$(http GET /series/$S | json 'j["ParentStudy"]')
http POST /studies/$ST/modify -d '{"Replace": {"StudyDescription": "m"}}' >/dev/null; [ "$(status)" = 200 ] || fail "modify"
http POST /studies/$ST/anonymize -d '{}' >/dev/null; [ "$(status)" = 200 ] || fail "anonymize"
http POST /tools/bulk-anonymize -d "{\"Resources\": [\"$S\"]}" >/dev/null; [ "$(status)" = 200 ] || fail "bulk-anonymize"
http GET '/changes?limit=1000' | json 'sorted(set(c["ChangeType"] for c in j["Changes"]) - {"NewInstance","NewSeries","NewStudy","NewPatient","UpdatedMetadata","StableSeries","StableStudy","StablePatient"})' >"$T/ct"
[ "$(cat "$T/ct")" = '[]' ] || fail "other changes than Orthanc's: $(cat "$T/ct")"
pass "modify/anonymize/bulk log New* changes only (Orthanc 1.10.1 logs no Modified*/Anonymized*)"

# ---- a delete removes the change-log entries of every resource it removes ----
last=$(http GET /changes?last | json 'j["Last"]')
P=$(http GET /series/$S | json 'j["ParentStudy"]' | xargs -I{} curl -sf "$URL/studies/{}" | json 'j["ParentPatient"]')
ids=$(http GET /patients/$P/instances | json '[i["ID"] for i in j]')
http DELETE /patients/$P >/dev/null; [ "$(status)" = 200 ] || fail "delete patient"
http GET '/changes?limit=1000' | json "[c for c in j['Changes'] if c['ID'] in $ids + ['$P', '$S', '$ST'] or c['ChangeType'] == 'Deleted']" >"$T/left"
[ "$(cat "$T/left")" = '[]' ] || fail "changes of the deleted patient remain: $(cat "$T/left")"
for p in $(http GET /patients | json '" ".join(j)'); do http DELETE /patients/$p >/dev/null; done
http GET /changes | json "j['Changes'] == [] and j['Done'] and j['Last'] >= $last" | grep -qx True || fail "after deleting every patient: $(cat "$T/body")"
pass "deleting resources removes their changes; after deleting all patients /changes is empty"
pass "88_compat_round2"
