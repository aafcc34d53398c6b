#!/usr/bin/env bash
# Issue 19, HTTP conveniences as Debian's Orthanc 1.10.1 answers them (compared request by
# request): Accept: application/xml (Orthanc's XML of any JSON answer; errors stay JSON),
# X-HTTP-Method-Override and ?_method= (PUT and DELETE only), multipart/form-data uploads on
# POST /instances (what browsers and Orthanc Explorer send), and Accept: application/dicom+json
# on /instances/{id}/tags (the DICOM JSON of DICOMweb; Orthanc 1.10.1 ignores this header).
source "$(dirname "$0")/lib.sh"
start_server
CT="$PYDICOM_FILES/CT_small.dcm"
MR="$PYDICOM_FILES/MR_small.dcm"
I=$(upload "$CT" | json 'j["ID"]')
X=(-H 'Accept: application/xml')

# ---- XML: byte for byte as Orthanc 1.10.1 for /statistics
http GET /statistics "${X[@]}" >/dev/null
printf '%s\n' '<?xml version="1.0" encoding="utf-8"?>' '<root>' '  <CountInstances>1</CountInstances>' \
  '  <CountPatients>1</CountPatients>' '  <CountSeries>1</CountSeries>' '  <CountStudies>1</CountStudies>' \
  '  <TotalDiskSize>39206</TotalDiskSize>' '  <TotalDiskSizeMB>0</TotalDiskSizeMB>' \
  '  <TotalUncompressedSize>39206</TotalUncompressedSize>' '  <TotalUncompressedSizeMB>0</TotalUncompressedSizeMB>' \
  '</root>' >"$T/expected.xml"
cmp "$T/body" "$T/expected.xml" || fail "XML of /statistics: $(cat "$T/body")"
curl -s -D "$T/h" -o /dev/null "${X[@]}" "$URL/statistics"
grep -qi '^Content-Type: application/xml; charset=utf-8' "$T/h" || fail "XML Content-Type: $(cat "$T/h")"
# arrays as <item>, nested objects, sorted members, escaping, empty values, null/true/false
http GET /instances "${X[@]}" | grep -qx "  <item>$I</item>" || fail "array items: $(cat "$T/body")"
http GET "/instances/$I" "${X[@]}" >/dev/null
$PY - "$T/body" <<'PY' || fail "nested XML: $(cat "$T/body")"
import sys, xml.etree.ElementTree as ET
r = ET.parse(sys.argv[1]).getroot()
assert r.tag == "root" and r.find("Type").text == "Instance"
names = [c.tag for c in r]
assert names == sorted(names), names
assert r.find("MainDicomTags/ImageComments").text == "Uncompressed"
PY
C=$(http POST /tools/create-dicom -d '{"Tags":{"PatientName":"A<&>B","StudyDescription":""}}' | json 'j["ID"]')
http GET "/instances/$C/simplified-tags" "${X[@]}" >/dev/null
grep -qx '  <PatientName>A&lt;&amp;&gt;B</PatientName>' "$T/body" || fail "escaping: $(cat "$T/body")"
grep -qx '  <StudyDescription></StudyDescription>' "$T/body" || fail "empty value: $(cat "$T/body")"
http GET /system "${X[@]}" >/dev/null
grep -qx '  <StorageAreaPlugin>null</StorageAreaPlugin>' "$T/body" && grep -qx '  <CheckRevisions>false</CheckRevisions>' "$T/body" || fail "null / false: $(cat "$T/body")"
# Orthanc cuts the header at ';' and compares whole items: the last of application/xml and
# application/json wins; "application/xml, text/html", "text/xml" and other case are JSON
for a in 'application/xml;q=0.9' 'application/json;application/xml'; do
  http GET /statistics -H "Accept: $a" | head -1 | grep -q '^<?xml' || fail "Accept $a should give XML"
done
for a in 'application/xml, text/html' 'text/xml' 'Application/XML' 'application/xml;application/json'; do
  http GET /statistics -H "Accept: $a" | json '"CountInstances" in j' | grep -qx True || fail "Accept $a should give JSON"
done
http GET /tools/now "${X[@]}" | grep -q '^[0-9]\{8\}T' || fail "text answers stay text"
http GET /instances/nope "${X[@]}" | json 'j["HttpStatus"]' | grep -qx 404 || fail "errors stay JSON, as Orthanc's: $(cat "$T/body")"
pass "XML answers"

# ---- method override
P=$(upload "$MR" | json 'j["ID"]')
http POST "/instances/$P" -H 'X-HTTP-Method-Override: DELETE' | json 'j["RemainingAncestor"]' | grep -qx None || fail "POST + override DELETE: $(cat "$T/body")"
http GET "/instances/$P" >/dev/null; [ "$(status)" = 404 ] || fail "not deleted by the override"
P=$(upload "$MR" | json 'j["ID"]')
http GET "/instances/$P?_method=DELETE" >/dev/null; [ "$(status)" = 200 ] || fail "GET ?_method=DELETE -> $(status)"
http GET "/instances/$P" >/dev/null; [ "$(status)" = 404 ] || fail "not deleted by ?_method"
P=$(upload "$MR" | json 'j["ID"]')
http POST "/instances/$P?_method=DELETE" >/dev/null; [ "$(status)" = 405 ] || fail "?_method on a POST is ignored by Orthanc -> $(status)"
for m in PATCH GET post; do
  [ "$(http GET "/instances/$P" -H "X-HTTP-Method-Override: $m")" = "" ] && [ "$(status)" = 400 ] || fail "override $m -> $(status)"
done
http POST "/instances/$P/metadata/1025" -H 'X-HTTP-Method-Override: put' -d hello >/dev/null; [ "$(status)" = 200 ] || fail "override put -> $(status)"
[ "$(http GET "/instances/$P/metadata/1025")" = hello ] || fail "metadata not written through the override"
http GET "/instances/$P?_method=put" >/dev/null; [ "$(status)" = 405 ] || fail "GET ?_method=put -> $(status)"
http DELETE "/instances/$P" -H 'X-HTTP-Method-Override: PUT' >/dev/null; [ "$(status)" = 405 ] || fail "DELETE overridden to PUT -> $(status)"
pass "method override"

# ---- multipart/form-data uploads
curl -s -o "$T/body" -D "$T/h" -w '%{http_code}' -F "files[]=@$CT" -F "files[]=@$MR;type=application/octet-stream" "$URL/instances" >"$T/status"
[ "$(status)" = 200 ] && [ ! -s "$T/body" ] || fail "form upload -> $(status) $(cat "$T/body")"
[ "$(http POST /tools/lookup -d 4MR1 | json 'len(j)')" = 1 ] || fail "the form's second file is not stored"
curl -s -o "$T/body" -w '%{http_code}' -F "x=hello" "$URL/instances" >"$T/status"
[ "$(status)" = 400 ] && [ "$(json 'j["OrthancStatus"]' <"$T/body")" = 15 ] || fail "a text field -> $(status) $(cat "$T/body")"
$PY - "$T" <<'PY'
import sys
d = sys.argv[1]
big = b"--b0\r\nContent-Disposition: form-data; name=\"f\"\r\nX-Pad: " + b"a" * 20000 + b"\r\n\r\nzz\r\n--b0--\r\n"
open(d + "/bighead", "wb").write(big)
open(d + "/unclosed", "wb").write(b"--b0\r\nContent-Disposition: form-data; name=\"f\"\r\n\r\n" + b"x" * 100000)
PY
http POST /instances -H 'Content-Type: multipart/form-data; boundary=b0' --data-binary @"$T/bighead" >/dev/null
[ "$(status)" = 400 ] || fail "part headers over 16 KB -> $(status)"
before=$(http GET /statistics | json 'j["CountInstances"]')
http POST /instances -H 'Content-Type: multipart/form-data; boundary=b0' --data-binary @"$T/unclosed" >/dev/null
[ "$(status)" = 400 ] || fail "a part that never ends -> $(status)"
[ "$(http GET /statistics | json 'j["CountInstances"]')" = "$before" ] || fail "something stored from a hostile form"
http POST /instances -H 'Content-Type: multipart/form-data' --data-binary @"$CT" >/dev/null
[ "$(status)" = 400 ] || fail "form without boundary -> $(status)"
pass "form uploads"

# ---- Accept: application/dicom+json on /tags
curl -s -D "$T/h" -o "$T/body" -H 'Accept: application/dicom+json' "$URL/instances/$I/tags"
grep -qi '^Content-Type: application/dicom+json' "$T/h" || fail "dicom+json Content-Type: $(cat "$T/h")"
json 'j["00100010"] == {"vr": "PN", "Value": [{"Alphabetic": "CompressedSamples^CT1"}]} and j["00080060"]["Value"] == ["CT"] and j["7FE00010"]["vr"] in ("OB", "OW") and "/dicom-web/studies/" in j["7FE00010"]["BulkDataURI"]' <"$T/body" | grep -qx True || fail "DICOM JSON: $(head -c 600 "$T/body")"
http GET "/instances/$I/tags" | json 'j["0010,0010"]["Value"]' | grep -qx 'CompressedSamples^CT1' || fail "plain /tags changed"
pass "89_tools_http"
