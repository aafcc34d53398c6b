#!/usr/bin/env bash
# WADO-RS /metadata (PS3.18 F.2 JSON): every pydicom test file compared element by element with
# pydicom's Dataset.to_json_dict() (tests/tools/check_dicomweb_json.py, which also fetches each
# BulkDataURI and compares its bytes); the metadata of a series comes from the index, not the
# files (still answered with the files gone); an instance stored while DicomWeb was disabled
# gets its JSON built from the file once; X-Forwarded-Host/Proto and DicomWeb.Host in
# BulkDataURIs; DicomWeb.Root; study/series/instance levels; unknown UIDs 404; DicomWeb.Enable
# false: 404.
source "$(dirname "$0")/lib.sh"
write_config '"OverwriteInstances": true'
start_server

$PY "$MP_SRC/tests/tools/check_dicomweb_json.py" "$URL" "$PYDICOM_FILES"/*.dcm > "$T/check.log" 2>&1 \
  || { tail -5 "$T/check.log"; fail "metadata differs from pydicom's to_json_dict"; }
tail -1 "$T/check.log"

# a 20-instance series: the metadata comes from the index
stop_server; reset_store; start_server
$PY - "$T/series" <<'EOF'
import sys, os, pydicom
from pydicom.uid import generate_uid
ds = pydicom.dcmread("/usr/lib/python3/dist-packages/pydicom/data/test_files/CT_small.dcm")
os.makedirs(sys.argv[1], exist_ok=True)
ds.StudyInstanceUID = "1.2.826.0.1.3680043.8.498.77.1"
ds.SeriesInstanceUID = "1.2.826.0.1.3680043.8.498.77.2"
for i in range(20):
    ds.SOPInstanceUID = f"1.2.826.0.1.3680043.8.498.77.3.{i + 1}"
    ds.InstanceNumber = i + 1
    ds.save_as(f"{sys.argv[1]}/{i:02d}.dcm")
EOF
for f in "$T"/series/*.dcm; do upload "$f" >/dev/null || fail "upload $f"; done
ST=1.2.826.0.1.3680043.8.498.77.1; SE=1.2.826.0.1.3680043.8.498.77.2
http GET "/dicom-web/studies/$ST/series/$SE/metadata" > "$T/m1.json"
[ "$(status)" = 200 ] || fail "series metadata: $(status)"
[ "$(json 'len(j)' < "$T/m1.json")" = 20 ] || fail "series metadata: not 20 instances"
[ "$(json 'sorted(int(x["00200013"]["Value"][0]) for x in j) == list(range(1,21))' < "$T/m1.json")" = True ] \
  || fail "instance numbers"
# study and instance levels
[ "$(http GET "/dicom-web/studies/$ST/metadata" | json 'len(j)')" = 20 ] || fail "study metadata"
[ "$(http GET "/dicom-web/studies/$ST/series/$SE/instances/1.2.826.0.1.3680043.8.498.77.3.7/metadata" \
     | json 'j[0]["00080018"]["Value"][0]')" = 1.2.826.0.1.3680043.8.498.77.3.7 ] || fail "instance metadata"
# hide every stored file: the series' metadata is still whole (kept in the index at ingest)
mkdir "$T/hidden"
find "$T/db" -mindepth 2 -type f ! -name 'index.sqlite*' -exec mv {} "$T/hidden/" \;
http GET "/dicom-web/studies/$ST/series/$SE/metadata" > "$T/m2.json"
[ "$(status)" = 200 ] || fail "metadata without the files: $(status)"
cmp -s "$T/m1.json" "$T/m2.json" || fail "metadata without the files differs"
http GET /instances >/dev/null
id=$(http GET /instances | json 'j[0]')
http GET "/instances/$id/file" >/dev/null; [ "$(status)" != 200 ] || fail "the files were not hidden"
pass "series metadata served from the index (files hidden)"
# the internal item stays hidden from Orthanc's metadata routes
http GET "/instances/$id/metadata" | json 'j' | grep -q DicomWeb && fail "internal metadata listed"
http GET "/instances/$id/metadata?expand" | grep -q DicomWeb && fail "internal metadata listed (expand)"

# URLs: X-Forwarded-Host / Proto, then DicomWeb.Host + Ssl
uri=$(curl -s -H 'X-Forwarded-Host: pacs.example.org:8443' -H 'X-Forwarded-Proto: https' \
      "$URL/dicom-web/studies/$ST/series/$SE/metadata" | json 'j[0]["7FE00010"]["BulkDataURI"]')
case "$uri" in https://pacs.example.org:8443/dicom-web/studies/$ST/series/$SE/instances/*/bulk/7fe00010) ;;
  *) fail "forwarded BulkDataURI: $uri" ;; esac
url=$(curl -s -H 'X-Forwarded-Host: pacs.example.org' "$URL/dicom-web/studies" | json 'j[0]["00081190"]["Value"][0]')
[ "$url" = "http://pacs.example.org/dicom-web/studies/$ST" ] || fail "forwarded RetrieveURL: $url"
pass "X-Forwarded-Host/Proto in BulkDataURI and RetrieveURL"

# unknown UIDs, wildcards in UIDs
http GET "/dicom-web/studies/1.2.3.4/metadata" >/dev/null; [ "$(status)" = 404 ] || fail "unknown study: $(status)"
http GET "/dicom-web/studies/$ST/series/1.2.3/metadata" >/dev/null; [ "$(status)" = 404 ] || fail "unknown series"
http GET "/dicom-web/studies/1.2*/metadata" >/dev/null; [ "$(status)" = 400 ] || fail "wildcard UID: $(status)"

# stored with DicomWeb disabled: built from the file at the first request, then kept
stop_server
reset_store
write_config '"DicomWeb": {"Enable": false}'
start_server
upload "$PYDICOM_FILES/MR_small.dcm" >/dev/null
MST=1.3.6.1.4.1.5962.1.2.4.20040826185059.5457
http GET "/dicom-web/studies/$MST/metadata" >/dev/null; [ "$(status)" = 404 ] || fail "Enable false: $(status)"
stop_server
write_config '"DicomWeb": {"Enable": true, "Host": "viewer.example.com", "Ssl": true, "Root": "/dw/api/"}'
start_server
http GET "/dicom-web/studies/$MST/metadata" >/dev/null; [ "$(status)" = 404 ] || fail "/dicom-web/ with another Root: $(status)"
http GET "/dw/api/studies/$MST/metadata" > "$T/m3.json"
[ "$(status)" = 200 ] || fail "metadata of an instance stored before: $(status)"
[ "$(json 'j[0]["00100010"]["Value"][0]["Alphabetic"]' < "$T/m3.json")" = "CompressedSamples^MR1" ] || fail "PN"
case "$(json 'j[0]["7FE00010"]["BulkDataURI"]' < "$T/m3.json")" in https://viewer.example.com/dw/api/studies/$MST/*) ;;
  *) fail "DicomWeb.Host/Ssl not in BulkDataURI" ;; esac
n=$(index_sql "SELECT COUNT(*) FROM metadata WHERE name LIKE '%DicomWeb%'" | tr -dc 0-9)
[ "$n" = 1 ] || fail "JSON not kept after the first request ($n)"
[ "$(http GET "/dw/api/studies" | json 'len(j)')" = 1 ] || fail "QIDO under Root /dw/api/"
pass "metadata of an instance stored while DicomWeb was off; DicomWeb.Root, Host, Ssl"

# the kept JSON is stored deflated ("z:<length>:<base64>": it fits its index row); a text kept
# plain by an older version is still served as it is
[ "$(index_sql "SELECT substr(value, 1, 2) FROM metadata WHERE name LIKE '%DicomWeb%'")" = "z:" ] \
  || fail "kept JSON not in its packed form"
index_sql "UPDATE metadata SET value = '{\"00100010\":{\"vr\":\"PN\",\"Value\":[{\"Alphabetic\":\"Plain^Kept\"}]}}' WHERE name LIKE '%DicomWeb%'" >/dev/null
[ "$(http GET "/dw/api/studies/$MST/metadata" | json 'j[0]["00100010"]["Value"][0]["Alphabetic"]')" = "Plain^Kept" ] \
  || fail "a JSON kept plain is not served"
pass "kept JSON packed; plain JSON of older versions read as it is"
