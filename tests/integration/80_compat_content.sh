#!/usr/bin/env bash
# Orthanc compatibility: /content raw values (tags, names, sequence paths, native and
# encapsulated PixelData), /tags?short, TooLong and ?ignore-length=, /module, /module-patient,
# /shared-tags, /instances-tags, parent and child routes, 405 with Allow. Values are checked
# against dcmdump and pydicom.
source "$(dirname "$0")/lib.sh"
start_server
id_of() { json 'j["ID"]'; }

CT="$PYDICOM_FILES/CT_small.dcm"
I=$(upload "$CT" | id_of)

# /content lists the dataset's tags like dcmdump does (group 0002 excluded; elements after
# PixelData, here DataSetTrailingPadding, are not listed: see docs/compatibility.md)
want=$(dcmdump -q "$CT" | sed -n 's/^(\([0-9a-f]\{4\}\),\([0-9a-f]\{4\}\)).*/\1-\2/p' | grep -v -e '^0002-' -e '^fffe-' | tr '\n' ' ')
got=$(http GET /instances/$I/content | json '" ".join(j)')
[ "$got " = "$want" ] || fail "/content listing: $got vs $want"
# a value by gggg-eeee, gggg,eeee and name: the raw value (padding kept), dcmdump's after strip
dd_name=$(dcmdump -q +P 0010,0010 "$CT" | sed 's/.*\[\(.*\)\].*/\1/')
for t in 0010-0010 0010,0010 PatientName; do
  [ "$(http GET /instances/$I/content/$t | sed 's/ *$//')" = "$dd_name" ] || fail "/content/$t"
done
[ "$(status)" = 200 ] || fail "status"
# binary: Rows (US) as 2 little-endian bytes
[ "$(http GET /instances/$I/content/0028-0010 | od -An -tu2 | tr -d ' ')" = 128 ] || fail "US raw value"
# native PixelData: one item "0" (as Orthanc) = pydicom's bytes
[ "$(http GET /instances/$I/content/7fe0-0010 | json 'j')" = '["0"]' ] || fail "native PixelData listing"
curl -sf "$URL/instances/$I/content/7fe0-0010/0" -o "$T/px"
$PY -c "import pydicom,sys; open('$T/px.ref','wb').write(pydicom.dcmread('$CT').PixelData)"
cmp "$T/px" "$T/px.ref" || fail "native PixelData"
http GET /instances/$I/content/0009-9999 >/dev/null; [ "$(status)" = 404 ] || fail "absent tag -> $(status)"
http GET /instances/$I/content/NoSuchName >/dev/null; [ "$(status)" = 400 ] || fail "bad tag -> $(status)"
pass "/content values"

# sequences: rtplan's BeamSequence/0/BeamName and nested ControlPointSequence
RP="$PYDICOM_FILES/rtplan.dcm"
R=$(upload "$RP" | id_of)
n=$($PY -c "import pydicom; print(len(pydicom.dcmread('$RP').BeamSequence))")
[ "$(http GET /instances/$R/content/300a-00b0 | json 'len(j)')" = "$n" ] || fail "sequence items"
[ "$(http GET /instances/$R/content/300a-00b0 | json 'j[0]')" = 0 ] || fail "item names"
want=$($PY -c "import pydicom; print(pydicom.dcmread('$RP').BeamSequence[0].BeamName)")
[ "$(http GET /instances/$R/content/BeamSequence/0/300a-00c2 | sed 's/ *$//')" = "$want" ] || fail "sequence path"
want=$($PY -c "import pydicom; print(pydicom.dcmread('$RP').BeamSequence[0].ControlPointSequence[1].ControlPointIndex)")
[ "$(http GET /instances/$R/content/300a-00b0/0/300a-0111/1/300a-0112 | sed 's/ *$//')" = "$want" ] || fail "nested path"
http GET /instances/$R/content/300a-00b0/99 >/dev/null; [ "$(status)" = 404 ] || fail "absent item"
http GET /instances/$R/content/300a-00b0/0 | json '"300a-00c2" in j' | grep -qx True || fail "item listing"
pass "sequence paths"

# encapsulated PixelData: its items (pydicom's fragment generator counts the offset table too)
J="$PYDICOM_FILES/SC_rgb_jpeg_dcmtk.dcm"
E=$(upload "$J" | id_of)
nfrag=$($PY -c "
import pydicom
from pydicom.encaps import generate_pixel_data_fragment
from pydicom.filebase import DicomBytesIO
ds = pydicom.dcmread('$J'); fp = DicomBytesIO(ds.PixelData); fp.is_little_endian = True
print(len(list(generate_pixel_data_fragment(fp))))")
[ "$(http GET /instances/$E/content/7fe0-0010 | json 'len(j)')" = "$nfrag" ] || fail "fragment list: $(cat "$T/body")"
curl -sf "$URL/instances/$E/content/7fe0-0010/1" -o "$T/frag"
$PY -c "
import pydicom
from pydicom.encaps import generate_pixel_data_fragment
from pydicom.filebase import DicomBytesIO
ds = pydicom.dcmread('$J'); fp = DicomBytesIO(ds.PixelData); fp.is_little_endian = True
open('$T/frag.ref','wb').write(list(generate_pixel_data_fragment(fp))[1])"
cmp "$T/frag" "$T/frag.ref" || fail "fragment 1"
http GET /instances/$E/content/7fe0-0010/$nfrag >/dev/null; [ "$(status)" = 404 ] || fail "absent fragment"
pass "PixelData fragments"

# /tags?short, TooLong and ?ignore-length=
$PY - "$T/long.dcm" <<'PY'
import sys, pydicom
from pydicom.dataset import Dataset, FileMetaDataset
from pydicom.uid import ExplicitVRLittleEndian, generate_uid
ds = Dataset(); ds.file_meta = FileMetaDataset(); ds.file_meta.TransferSyntaxUID = ExplicitVRLittleEndian
ds.PatientID = "LONG"; ds.PatientName = "Long^Value"
ds.StudyInstanceUID = generate_uid(); ds.SeriesInstanceUID = generate_uid(); ds.SOPInstanceUID = generate_uid()
ds.SOPClassUID = "1.2.840.10008.5.1.4.1.1.7"; ds.ImageComments = "x" * 300; ds.StudyDescription = "y" * 257
ds.is_little_endian = True; ds.is_implicit_VR = False
ds.save_as(sys.argv[1], write_like_original=False)
PY
L=$(upload "$T/long.dcm" | id_of)
http GET "/instances/$L/tags?short" | json 'j["0010,0020"] == "LONG" and j["0020,4000"] is None' | grep -qx True || fail "?short"
http GET /instances/$L/tags | json 'j["0020,4000"]["Type"] == "TooLong" and j["0020,4000"]["Value"] is None' | grep -qx True || fail TooLong
http GET "/instances/$L/tags?ignore-length=0020,4000" | json 'j["0020,4000"]["Value"] == "x"*300 and j["0008,1030"]["Type"] == "TooLong"' | grep -qx True || fail "ignore-length list"
http GET "/instances/$L/tags?ignore-length=ImageComments,StudyDescription&simplify" | json 'len(j["ImageComments"]) == 300 and len(j["StudyDescription"]) == 257' | grep -qx True || fail "ignore-length names"
http GET "/instances/$L/tags?ignore-length=" | json 'j["0008,1030"]["Value"] == "y"*257' | grep -qx True || fail "ignore-length all"
pass "/tags short, TooLong, ignore-length"

# /module and friends
P=$(http GET /instances/$I/patient | id_of); S=$(http GET /instances/$I/study | id_of); SE=$(http GET /instances/$I/series | id_of)
[ "$(http GET /instances/$I/series | json 'j["Type"]')" = Series ] || fail "/instances/{id}/series"
[ "$(http GET /series/$SE/patient | json 'j["Type"]')" = Patient ] || fail "/series/{id}/patient"
[ "$(http GET /studies/$S/instances | json 'j[0]["Type"]')" = Instance ] || fail "child list of objects"
[ "$(http GET /patients/$P/series | json 'j[0]["ID"]')" = "$SE" ] || fail "patient -> series"
http GET "/patients/$P/module?simplify" | json '{"PatientBirthDate", "PatientID", "PatientName", "PatientSex", "OtherPatientIDsSequence"} == set(j)' | grep -qx True || fail "patient module: $(cat "$T/body")"
http GET "/studies/$S/module-patient?short" | json '"0010,0020" in j and "0020,000d" not in j' | grep -qx True || fail "module-patient"
http GET "/studies/$S/module" | json 'j["0020,000d"]["Type"] == "String" and "0010,0010" not in j' | grep -qx True || fail "study module"
http GET "/series/$SE/module?simplify" | json 'j["Modality"] == "CT" and "SOPInstanceUID" not in j' | grep -qx True || fail "series module"
http GET "/instances/$I/module?simplify" | json 'j["Rows"] == "128" and "PixelData" not in j and "PatientName" not in j' | grep -qx True || fail "instance module"
pass "module routes"

# shared-tags / instances-tags over a series of two generated instances
$PY - "$T" <<'PY'
import sys, pydicom
from pydicom.dataset import Dataset, FileMetaDataset
from pydicom.uid import ExplicitVRLittleEndian, generate_uid
st, se = generate_uid(), generate_uid()
for k in (1, 2):
    ds = Dataset(); ds.file_meta = FileMetaDataset(); ds.file_meta.TransferSyntaxUID = ExplicitVRLittleEndian
    ds.PatientID = "SHARED"; ds.StudyInstanceUID = st; ds.SeriesInstanceUID = se; ds.SOPInstanceUID = generate_uid()
    ds.SOPClassUID = "1.2.840.10008.5.1.4.1.1.7"; ds.InstanceNumber = k; ds.Modality = "OT"
    ds.is_little_endian = True; ds.is_implicit_VR = False
    ds.save_as(f"{sys.argv[1]}/sh{k}.dcm", write_like_original=False)
PY
upload "$T/sh1.dcm" >/dev/null; SS=$(upload "$T/sh2.dcm" | json 'j["ParentSeries"]')
http GET "/series/$SS/shared-tags?simplify" | json 'j["Modality"] == "OT" and j["PatientID"] == "SHARED" and "InstanceNumber" not in j and "SOPInstanceUID" not in j' | grep -qx True || fail "shared-tags: $(cat "$T/body")"
http GET "/series/$SS/shared-tags" | json 'j["0008,0060"]["Name"] == "Modality"' | grep -qx True || fail "shared-tags full"
http GET "/series/$SS/instances-tags?short" | json 'sorted(v["0020,0013"] for v in j.values()) == ["1", "2"]' | grep -qx True || fail "instances-tags"
pass "shared-tags, instances-tags"

# wrong method on a known route: 405 with Allow
code=$(curl -s -o /dev/null -D "$T/h" -w '%{http_code}' -X PUT "$URL/system")
[ "$code" = 405 ] && grep -qi '^Allow: GET' "$T/h" || fail "PUT /system -> $code"
code=$(curl -s -o /dev/null -D "$T/h" -w '%{http_code}' -X POST "$URL/instances/$I/content/0010-0010")
[ "$code" = 405 ] && grep -qi '^Allow: GET' "$T/h" || fail "POST /content -> $code"
code=$(curl -s -o /dev/null -D "$T/h" -w '%{http_code}' -X DELETE "$URL/tools/find")
[ "$code" = 405 ] && grep -qi '^Allow: POST' "$T/h" || fail "DELETE /tools/find -> $code"
# as Orthanc: only Allow, no body and no Content-Type
code=$(curl -s -o "$T/b405" -D "$T/h" -w '%{http_code}' -X PUT "$URL/instances/$I")
[ "$code" = 405 ] && grep -qi '^Allow: GET,DELETE' "$T/h" || fail "PUT /instances/id -> $code $(cat "$T/h")"
grep -qi '^Content-Type' "$T/h" && fail "405 with a Content-Type: $(cat "$T/h")"
[ -s "$T/b405" ] && fail "405 with a body: $(cat "$T/b405")"
grep -qi '^Content-Length: 0' "$T/h" || fail "405 without Content-Length: 0"
pass "405 with Allow"
