#!/usr/bin/env bash
# Issue 19, /tools/create-dicom as Debian's Orthanc 1.10.1 answers it (compared request by
# request): Content as an array (one series, one instance per item, InstanceNumber/ImageIndex,
# ImagesInAcquisition, per-item Tags; a failing item leaves nothing), an empty array (one
# instance without content), InterpretBinaryTags (default true: "data:application/octet-stream;
# base64," values are their bytes), and the upload-like answer of a single instance.
source "$(dirname "$0")/lib.sh"
start_server
png() { $PY - "$1" <<'PY'
import sys, zlib, struct, base64
v = int(sys.argv[1]); w, h = 4, 3
raw = b"".join(b"\x00" + bytes([v]) * w for _ in range(h))
def chunk(t, d): return struct.pack(">I", len(d)) + t + d + struct.pack(">I", zlib.crc32(t + d) & 0xffffffff)
p = b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", struct.pack(">IIBBBBB", w, h, 8, 0, 0, 0, 0)) + chunk(b"IDAT", zlib.compress(raw)) + chunk(b"IEND", b"")
print("data:image/png;base64," + base64.b64encode(p).decode())
PY
}
P1=$(png 10); P2=$(png 20)

# ---- a series from an array of contents
r=$(http POST /tools/create-dicom -d "{\"Tags\":{\"PatientName\":\"Multi\",\"Modality\":\"OT\"},\"Content\":[\"$P1\",{\"Content\":\"$P2\",\"Tags\":{\"ImageComments\":\"second\"}}]}")
[ "$(status)" = 200 ] || fail "series -> $(status) $r"
S=$(echo "$r" | json 'j["ID"]')
echo "$r" | json "j == {'ID': '$S', 'Path': '/series/$S', 'Status': 'Success'}" | grep -qx True || fail "series answer: $r"
http GET "/series/$S" | json 'len(j["Instances"]) == 2 and j["MainDicomTags"]["ImagesInAcquisition"] == "2" and j["MainDicomTags"]["NumberOfTemporalPositions"] == "1" and j["ExpectedNumberOfInstances"] == 2' | grep -qx True || fail "series: $(cat "$T/body")"
http GET "/series/$S/instances" >/dev/null
$PY - "$T/body" "$URL" <<'PY' || fail "instances of the series"
import json, sys, urllib.request
insts = json.load(open(sys.argv[1]))
tags = sorted((json.load(urllib.request.urlopen(sys.argv[2] + "/instances/%s/simplified-tags" % i["ID"])) for i in insts), key=lambda t: int(t["InstanceNumber"]))
assert [t["InstanceNumber"] for t in tags] == ["1", "2"] and [t["ImageIndex"] for t in tags] == ["1", "2"], tags
assert len({t["SOPInstanceUID"] for t in tags}) == 2 and len({t["PatientID"] for t in tags}) == 1
assert len({t["StudyInstanceUID"] for t in tags}) == 1 and len({t["SeriesInstanceUID"] for t in tags}) == 1
assert tags[0]["PatientName"] == "Multi" and "ImageComments" not in tags[0] and tags[1]["ImageComments"] == "second"
assert tags[0]["Rows"] == "3" and tags[0]["Columns"] == "4" and tags[0]["SpecificCharacterSet"] == "ISO_IR 100"
PY
pass "Content as an array"

# ---- a failing item: 400, and nothing of the series is left (as Orthanc)
before=$(http GET /statistics | json 'j["CountInstances"]')
http POST /tools/create-dicom -d "{\"Tags\":{\"PatientName\":\"Bad\"},\"Content\":[\"$P1\",\"not a data URI\"]}" >/dev/null
[ "$(status)" = 400 ] && [ "$(json 'j["OrthancStatus"]' <"$T/body")" = 15 ] || fail "bad URI item -> $(status) $(cat "$T/body")"
http POST /tools/create-dicom -d "{\"Tags\":{\"PatientName\":\"Bad\"},\"Content\":[\"$P1\",42]}" >/dev/null
[ "$(status)" = 400 ] || fail "number item -> $(status)"
json 'j["OrthancStatus"] == 2023 and j["Message"] == "The payload of the DICOM instance must be specified according to Data URI scheme"' <"$T/body" | grep -qx True || fail "number item answer: $(cat "$T/body")"
[ "$(http GET /statistics | json 'j["CountInstances"]')" = "$before" ] || fail "a failed series left instances"
# an empty array: one instance without content, answered as an upload
r=$(http POST /tools/create-dicom -d '{"Tags":{"PatientName":"Empty"},"Content":[]}')
echo "$r" | json 'j["Path"] == "/instances/" + j["ID"] and j["Status"] == "Success" and all(k in j for k in ("ParentPatient", "ParentStudy", "ParentSeries"))' | grep -qx True || fail "empty array: $r"
pass "failures and the empty array"

# ---- InterpretBinaryTags
bin='"StudyDescription":"data:application/octet-stream;base64,SGVsbG8=","ImageComments":"data:text/plain;base64,SGVsbG8="'
for ib in "" ',"InterpretBinaryTags":true' ',"InterpretBinaryTags":false'; do
  id=$(http POST /tools/create-dicom -d "{\"Tags\":{$bin}$ib}" | json 'j["ID"]')
  got=$(http GET "/instances/$id/simplified-tags" | json 'j["StudyDescription"] + "|" + j["ImageComments"]')
  case "$ib" in
    *false*) [ "$got" = "data:application/octet-stream;base64,SGVsbG8=|data:text/plain;base64,SGVsbG8=" ] || fail "InterpretBinaryTags false: $got" ;;
    *) [ "$got" = "Hello|data:text/plain;base64,SGVsbG8=" ] || fail "InterpretBinaryTags '$ib': $got" ;;
  esac
done
# binary bytes into an OB element of a sequence item
id=$(http POST /tools/create-dicom -d '{"Tags":{"ReferencedImageSequence":[{"ReferencedSOPClassUID":"1.2.3","ReferencedSOPInstanceUID":"1.2.3.4"}],"0009,0010":"MiniPACS","EncapsulatedDocument":"data:application/octet-stream;base64,AAECAw=="}}' | json 'j["ID"]')
curl -sf "$URL/instances/$id/file" -o "$T/bin.dcm"
$PY -c "import pydicom; d=pydicom.dcmread('$T/bin.dcm'); assert d.EncapsulatedDocument == b'\x00\x01\x02\x03', d.EncapsulatedDocument" || fail "binary value not decoded"
http POST /tools/create-dicom -d '{"Tags":{"PatientName":"x"},"InterpretBinaryTags":"yes"}' >/dev/null
[ "$(status)" = 400 ] && [ "$(json 'j["OrthancStatus"]' <"$T/body")" = 8 ] || fail "InterpretBinaryTags yes -> $(status) $(cat "$T/body")"
http POST /tools/create-dicom -d '{"Tags":{"StudyDescription":"data:application/octet-stream;base64,!!!"}}' >/dev/null
[ "$(status)" = 400 ] || fail "bad base64 -> $(status)"
pass "89_tools_create"
