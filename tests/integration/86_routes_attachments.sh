#!/usr/bin/env bash
# Orthanc compatibility: user-defined attachments (PUT/GET/DELETE /{level}/{id}/attachments/
# {name}, names from UserContentType or numbers 1024..65535, ?full, info, data with the declared
# MIME type, ETag "<revision>-<md5>", If-Match 409/400), compress / uncompress / is-compressed
# in Orthanc's zlib layout (checked with Python's zlib), StorageCompression, verify-md5, the
# files removed with their resource, nothing left after a restart; the DICOM attachment stays
# read-only. Answers as Debian's Orthanc 1.10.1 gives them.
source "$(dirname "$0")/lib.sh"
write_config '"UserContentType": {"sample": 1024, "report": [1025, "text/plain"]}'
start_server
upload "$PYDICOM_FILES/CT_small.dcm" > "$T/up.json"
I=$(json 'j["ID"]' < "$T/up.json"); S=$(json 'j["ParentStudy"]' < "$T/up.json")
files() { find "$T/db" -type f ! -name 'index.sqlite*' | wc -l; }
[ "$(files)" = 1 ] || fail "one file at start"
etag() { grep -i '^etag:' "$T/headers" | tr -d '\r' | sed 's/^[Ee][Tt][Aa][Gg]: //'; }
hput() { curl -s -D "$T/headers" -o "$T/body" -w '%{http_code}' -X PUT "$URL$1" --data-binary "$2" "${@:3}"; }

# ---- create, read ----
[ "$(hput /studies/$S/attachments/sample 'hello world')" = 200 ] || fail "PUT sample"
[ "$(cat "$T/body" | json 'j')" = '{}' ] || fail "PUT answers {}"
[ "$(etag)" = '"0-5eb63bbbe01eeed093cb22bb8f5acdc3"' ] || fail "ETag of a new attachment: $(etag)"
[ "$(http GET /studies/$S/attachments | json 'j')" = '["sample"]' ] || fail "list"
[ "$(http GET "/studies/$S/attachments?full" | json 'j')" = '{"sample": 1024}' ] || fail "list ?full"
http GET /studies/$S/attachments/sample/info | json 'j["ContentType"] == 1024 and j["UncompressedSize"] == 11 and j["CompressedSize"] == 11 and j["UncompressedMD5"] == "5eb63bbbe01eeed093cb22bb8f5acdc3"' | grep -qx True || fail "info"
[ "$(http GET /studies/$S/attachments/sample/data)" = 'hello world' ] || fail "data"
[ "$(http GET /studies/$S/attachments/1024/size)" = 11 ] || fail "by number"
http GET /studies/$S/attachments/sample | json '"compress" in j and "uncompress" in j and "verify-md5" in j' | grep -qx True || fail "operations"
[ "$(http GET /instances/$I/attachments | json 'j')" = '["dicom"]' ] || fail "instance list"
[ "$(files)" = 2 ] || fail "a file per attachment"
pass "create, read"

# ---- revisions ----
[ "$(hput /studies/$S/attachments/sample 'hello again')" = 200 ] || fail "PUT again"
[ "$(etag)" = '"1-44997f87b891f89472b7f2bbe4e000c3"' ] || fail "revision 1: $(etag)"
[ "$(hput /studies/$S/attachments/sample x -H 'If-Match: "0-5eb63bbbe01eeed093cb22bb8f5acdc3"')" = 409 ] || fail "stale If-Match"
[ "$(hput /studies/$S/attachments/sample x -H 'If-Match: 1')" = 400 ] || fail "malformed If-Match"
[ "$(hput /studies/$S/attachments/sample third -H 'If-Match: "1-44997f87b891f89472b7f2bbe4e000c3"')" = 200 ] || fail "right If-Match"
[ "$(etag)" = '"2-dd5c8bf51558ffcbe5007071908e9524"' ] || fail "revision 2: $(etag)"
curl -s -D "$T/headers" -o /dev/null "$URL/studies/$S/attachments/sample/data"
[ "$(etag)" = '"2-dd5c8bf51558ffcbe5007071908e9524"' ] || fail "ETag on data"
[ "$(files)" = 2 ] || fail "replaced files are removed"
c=$(curl -s -o /dev/null -w '%{http_code}' -H 'If-None-Match: "2-dd5c8bf51558ffcbe5007071908e9524"' "$URL/studies/$S/attachments/sample/data")
[ "$c" = 304 ] || fail "If-None-Match current -> $c"
c=$(curl -s -o /dev/null -w '%{http_code}' -H 'If-None-Match: "1-44997f87b891f89472b7f2bbe4e000c3"' "$URL/studies/$S/attachments/sample/data")
[ "$c" = 200 ] || fail "If-None-Match stale -> $c"
pass "revisions"

# ---- names, numbers, refusals ----
[ "$(hput /studies/$S/attachments/1025 'a report')" = 200 ] || fail "PUT by number"
[ "$(http GET /studies/$S/attachments | json 'j')" = '["sample", "report"]' ] || fail "declared names listed"
curl -s -D "$T/headers" -o /dev/null "$URL/studies/$S/attachments/report/data"
grep -qi '^content-type: text/plain' "$T/headers" || fail "declared MIME type"
[ "$(hput /studies/$S/attachments/2000 x)" = 200 ] || fail "an undeclared number is fine"
[ "$(http GET /studies/$S/attachments | json 'j')" = '["sample", "report", "2000"]' ] || fail "numbers listed"
[ "$(hput /studies/$S/attachments/foo x)" = 404 ] || fail "unknown name"
for n in dicom 1 1023; do [ "$(hput /instances/$I/attachments/$n x)" = 403 ] || fail "PUT $n is forbidden"; done
http DELETE /instances/$I/attachments/dicom >/dev/null; [ "$(status)" = 403 ] || fail "DELETE dicom"
http GET /studies/$S/attachments/foo/size >/dev/null; [ "$(status)" = 404 ] || fail "GET unknown name"
http GET /series/$S/attachments/sample/size >/dev/null; [ "$(status)" = 404 ] || fail "wrong level"
hput /studies/nope/attachments/sample x >/dev/null; [ "$(cat "$T/body" | json 'j["HttpStatus"]')" = 404 ] || fail "unknown resource"
http DELETE /studies/$S/attachments/report -H 'If-Match: "5-00"' >/dev/null; [ "$(status)" = 409 ] || fail "DELETE stale If-Match"
http DELETE /studies/$S/attachments/report >/dev/null; [ "$(status)" = 200 ] || fail "DELETE"
http DELETE /studies/$S/attachments/report >/dev/null; [ "$(status)" = 404 ] || fail "DELETE twice"
[ "$(files)" = 3 ] || fail "deleted attachment's file removed"
pass "names, numbers, refusals"

# ---- compress / uncompress ----
http POST /studies/$S/attachments/sample/compress | json 'j' | grep -qx '{}' || fail compress
[ "$(http GET /studies/$S/attachments/sample/is-compressed)" = 1 ] || fail is-compressed
http GET /studies/$S/attachments/sample/info | json 'j["CompressedSize"] == 21 and j["UncompressedSize"] == 5 and j["UncompressedMD5"] == "dd5c8bf51558ffcbe5007071908e9524" and j["CompressedMD5"] != j["UncompressedMD5"]' | grep -qx True || fail "compressed info"
[ "$(http GET /studies/$S/attachments/sample/data)" = third ] || fail "data inflated"
curl -s "$URL/studies/$S/attachments/sample/compressed-data" > "$T/z"
$PY -c 'import sys, zlib, struct; b = open(sys.argv[1], "rb").read(); assert struct.unpack("<Q", b[:8])[0] == 5 and zlib.decompress(b[8:]) == b"third"' "$T/z" || fail "Orthanc's zlib layout"
http POST /studies/$S/attachments/sample/verify-md5 >/dev/null; [ "$(status)" = 200 ] || fail "verify-md5 compressed"
http POST /studies/$S/attachments/sample/uncompress >/dev/null; [ "$(status)" = 200 ] || fail uncompress
[ "$(http GET /studies/$S/attachments/sample/is-compressed)" = 0 ] || fail "is-compressed after uncompress"
[ "$(http GET /studies/$S/attachments/sample/compressed-data)" = third ] || fail "stored plain again"
http POST /instances/$I/attachments/dicom/uncompress >/dev/null; [ "$(status)" = 200 ] || fail "uncompress dicom: nothing to do"
http POST /instances/$I/attachments/dicom/compress >/dev/null; [ "$(status)" = 501 ] || fail "compress dicom is not implemented"
curl -s -D "$T/headers" -o /dev/null "$URL/instances/$I/attachments/dicom/info"
[ "$(etag)" = "\"0-$(md5sum < "$PYDICOM_FILES/CT_small.dcm" | cut -c1-32)\"" ] || fail "dicom ETag"
[ "$(files)" = 3 ] || fail "compress leaves one file per attachment"
pass "compress, uncompress"

# ---- StorageCompression, restart, delete ----
stop_server
write_config '"StorageCompression": true, "UserContentType": {"sample": 1024}'
start_server
[ "$(http GET /studies/$S/attachments/sample/data)" = third ] || fail "kept across a restart"
[ "$(hput /instances/$I/attachments/sample 'compressed at once')" = 200 ] || fail "PUT with StorageCompression"
[ "$(http GET /instances/$I/attachments/sample/is-compressed)" = 1 ] || fail "StorageCompression compresses"
[ "$(http GET /instances/$I/attachments/sample/data)" = 'compressed at once' ] || fail "read back"
[ "$(http GET /instances/$I/attachments | json 'j')" = '["dicom", "sample"]' ] || fail "instance list"
[ "$(files)" = 4 ] || fail "four files"
http DELETE /patients/$(json 'j["ParentPatient"]' < "$T/up.json") >/dev/null
[ "$(files)" = 0 ] || fail "attachments removed with their resource ($(files) left)"
[ "$(index_sql 'SELECT COUNT(*) FROM pending' | grep -Eo '^ *[0-9]+' | tr -d ' ')" = 0 ] || fail "pending left"
pass "StorageCompression, restart, delete"
