#!/usr/bin/env bash
# Orthanc compatibility: metadata (automatic items with Orthanc's names, user metadata with
# PUT/DELETE, ETag revisions, If-Match -> 409, ?expand) and the "dicom" attachment (info,
# data, md5 against md5sum, size, is-compressed, verify-md5).
source "$(dirname "$0")/lib.sh"
write_config '"UserMetadata": { "Sample": 1024, "Other": 1025 }'
start_server
F="$PYDICOM_FILES/CT_small.dcm"
r=$(upload "$F"); I=$(echo "$r" | json 'j["ID"]'); S=$(echo "$r" | json 'j["ParentStudy"]'); SE=$(echo "$r" | json 'j["ParentSeries"]')

# automatic metadata, Orthanc's names and values
m=$(http GET "/instances/$I/metadata?expand")
echo "$m" | json 'j["Origin"] == "RestApi" and j["TransferSyntax"] == "1.2.840.10008.1.2.1" and j["SopClassUid"] == "1.2.840.10008.5.1.4.1.1.2" and j["IndexInSeries"] == "1" and j["RemoteIP"] == "127.0.0.1" and len(j["ReceptionDate"]) == 15' | grep -qx True || fail "automatic metadata: $m"
off=$($PY -c "
import pydicom
with open('$F','rb') as f: data = f.read()
ds = pydicom.dcmread('$F'); e = ds['PixelData']
# Orthanc: the offset of the element's header
print(data.rfind(b'\xe0\x7f\x10\x00OW'))")
echo "$m" | json 'j["PixelDataOffset"]' | grep -qx "$off" || fail "PixelDataOffset $off: $m"
http GET /instances/$I/metadata | json '"ReceptionDate" in j and isinstance(j, list)' | grep -qx True || fail "metadata list"
http GET /studies/$S/metadata | json '"LastUpdate" in j' | grep -qx True || fail "study LastUpdate"
[ "$(http GET /instances/$I/metadata/Origin)" = RestApi ] || fail "metadata by name"
[ "$(http GET /instances/$I/metadata/8)" = RestApi ] || fail "metadata by number"
http GET /instances/$I/metadata/Sample >/dev/null; [ "$(status)" = 404 ] || fail "absent user metadata -> $(status)"
http PUT /instances/$I/metadata/ReceptionDate -d x >/dev/null; [ "$(status)" = 403 ] || fail "PUT on automatic metadata -> $(status)"
http PUT /instances/$I/metadata/Unknown -d x >/dev/null; [ "$(status)" = 404 ] || fail "PUT on undeclared metadata -> $(status)"
pass "automatic metadata"

# user metadata, revisions
etag() { grep -i '^ETag:' "$T/h" | tr -d '\r' | sed 's/^[^:]*: *//'; }
e_hello='"0-5d41402abc4b2a76b9719d911017c592"'; e_world='"1-7d793037a0760186574b0282f2f435e7"'
curl -s -D "$T/h" -o /dev/null -X PUT --data-binary 'hello' "$URL/series/$SE/metadata/Sample"
[ "$(etag)" = "$e_hello" ] || fail "first ETag: $(etag)"
curl -s -D "$T/h" -o "$T/b" "$URL/series/$SE/metadata/Sample"
[ "$(cat "$T/b")" = hello ] && [ "$(etag)" = "$e_hello" ] || fail "GET user metadata"
curl -s -D "$T/h" -o /dev/null -X PUT --data-binary 'world' -H "If-Match: $e_hello" "$URL/series/$SE/metadata/Sample"
[ "$(etag)" = "$e_world" ] || fail "second ETag: $(etag)"
code=$(curl -s -o /dev/null -w '%{http_code}' -X PUT --data-binary 'stale' -H "If-Match: $e_hello" "$URL/series/$SE/metadata/Sample")
[ "$code" = 409 ] || fail "stale If-Match -> $code"
[ "$(http GET /series/$SE/metadata/1024)" = world ] || fail "value after 409 / by number"
http GET "/series/$SE/metadata?expand" | json 'j["Sample"] == "world"' | grep -qx True || fail "?expand"
code=$(curl -s -o /dev/null -w '%{http_code}' -X DELETE -H "If-Match: $e_hello" "$URL/series/$SE/metadata/Sample")
[ "$code" = 409 ] || fail "DELETE stale -> $code"
http DELETE /series/$SE/metadata/Sample >/dev/null; [ "$(status)" = 200 ] || fail "DELETE -> $(status)"
http GET /series/$SE/metadata/Sample >/dev/null; [ "$(status)" = 404 ] || fail "deleted metadata still there"
http DELETE /series/$SE/metadata/Sample >/dev/null; [ "$(status)" = 404 ] || fail "DELETE absent -> $(status)"
http GET /changes | json '"UpdatedMetadata" in [c["ChangeType"] for c in j["Changes"]]' | grep -qx True || fail "UpdatedMetadata change"
pass "user metadata, ETag, If-Match"

# attachments
[ "$(http GET /instances/$I/attachments | json 'j')" = '["dicom"]' ] || fail "attachments list"
[ "$(http GET /studies/$S/attachments | json 'j')" = '[]' ] || fail "study attachments"
md5=$(md5sum "$F" | cut -d' ' -f1); size=$(stat -c %s "$F")
uuid=$(http GET /instances/$I | json 'j["FileUuid"]')
http GET /instances/$I/attachments/dicom/info | json "j == {'CompressedMD5': '$md5', 'CompressedSize': $size, 'ContentType': 1, 'UncompressedMD5': '$md5', 'UncompressedSize': $size, 'Uuid': '$uuid'}" | grep -qx True || fail "info: $(cat "$T/body")"
[ "$(http GET /instances/$I/attachments/dicom/md5)" = "$md5" ] || fail md5
[ "$(http GET /instances/$I/attachments/dicom/compressed-md5)" = "$md5" ] || fail compressed-md5
[ "$(http GET /instances/$I/attachments/dicom/size)" = "$size" ] || fail size
[ "$(http GET /instances/$I/attachments/dicom/is-compressed)" = 0 ] || fail is-compressed
curl -sf "$URL/instances/$I/attachments/dicom/data" -o "$T/data.dcm" && cmp "$F" "$T/data.dcm" || fail data
curl -sf "$URL/instances/$I/attachments/1/compressed-data" -o "$T/data2.dcm" && cmp "$F" "$T/data2.dcm" || fail "compressed-data by number"
http GET /instances/$I/attachments/dicom | json '"info" in j and "md5" in j' | grep -qx True || fail "operations"
http POST /instances/$I/attachments/dicom/verify-md5 >/dev/null; [ "$(status)" = 200 ] || fail "verify-md5 -> $(status)"
http GET /instances/$I/attachments/other/info >/dev/null; [ "$(status)" = 404 ] || fail "unknown attachment"
pass "attachments"
