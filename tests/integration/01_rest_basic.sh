#!/usr/bin/env bash
# Core REST: upload, Orthanc's SHA-1 IDs computed by hand, resource JSON shapes, /file bytes,
# /tags, AlreadyStored, statistics against the disk, changes, delete leaving nothing behind.
source "$(dirname "$0")/lib.sh"
start_server
F="$PYDICOM_FILES/CT_small.dcm"

r=$(upload "$F")
echo "$r" | json 'j["Status"]' | grep -qx Success || fail "first upload: $r"

# IDs by hand: SHA-1 of PatientID, then |StudyInstanceUID, |SeriesInstanceUID, |SOPInstanceUID
expected=$($PY - "$F" <<'PY'
import hashlib, sys, pydicom
ds = pydicom.dcmread(sys.argv[1])
def oid(s):
    h = hashlib.sha1(s.encode()).hexdigest()
    return "-".join(h[i:i+8] for i in range(0, 40, 8))
k = [str(ds.PatientID).strip(), str(ds.StudyInstanceUID).strip(), str(ds.SeriesInstanceUID).strip(), str(ds.SOPInstanceUID).strip()]
print(oid(k[0]), oid("|".join(k[:2])), oid("|".join(k[:3])), oid("|".join(k)))
PY
)
read -r P S SE I <<<"$expected"
[ "$(echo "$r" | json 'j["ID"]')" = "$I" ] || fail "instance ID $(echo "$r" | json 'j["ID"]') != $I"
[ "$(echo "$r" | json 'j["ParentPatient"]')" = "$P" ] || fail "patient ID"
[ "$(echo "$r" | json 'j["ParentStudy"]')" = "$S" ] || fail "study ID"
[ "$(echo "$r" | json 'j["ParentSeries"]')" = "$SE" ] || fail "series ID"
[ "$(echo "$r" | json 'j["Path"]')" = "/instances/$I" ] || fail "Path"
pass "IDs match SHA-1 computed by hand"

# Re-upload: AlreadyStored, nothing changes
files_before=$(find "$T/db" -type f ! -name 'index.sqlite*' | wc -l)
r2=$(upload "$F")
[ "$(echo "$r2" | json 'j["Status"]')" = AlreadyStored ] || fail "re-upload: $r2"
[ "$(find "$T/db" -type f ! -name 'index.sqlite*' | wc -l)" = "$files_before" ] || fail "re-upload wrote a file"
pass "AlreadyStored"

# Lists and shapes
[ "$(http GET /patients | json 'j')" = "[\"$P\"]" ] || fail "/patients"
[ "$(http GET /studies | json 'len(j)')" = 1 ] || fail "/studies"
http GET "/instances?expand" | json 'j[0]["Type"]' | grep -qx Instance || fail "expand"
inst=$(http GET /instances/$I)
for k in ID Type ParentSeries MainDicomTags FileSize FileUuid IndexInSeries; do
  echo "$inst" | json "'$k' in j" | grep -qx True || fail "instance lacks $k: $inst"; done
echo "$inst" | json 'j["MainDicomTags"]["SOPInstanceUID"]' | grep -qx "$($PY -c "import pydicom;print(pydicom.dcmread('$F').SOPInstanceUID)")" || fail "SOPInstanceUID main tag"
study=$(http GET /studies/$S)
for k in ID Type ParentPatient MainDicomTags PatientMainDicomTags Series IsStable LastUpdate; do
  echo "$study" | json "'$k' in j" | grep -qx True || fail "study lacks $k: $study"; done
echo "$study" | json 'j["PatientMainDicomTags"]["PatientID"]' | grep -qx "$($PY -c "import pydicom;print(pydicom.dcmread('$F').PatientID)")" || fail "PatientMainDicomTags"
series=$(http GET /series/$SE)
for k in Instances Status ExpectedNumberOfInstances IsStable LastUpdate ParentStudy; do
  echo "$series" | json "'$k' in j" | grep -qx True || fail "series lacks $k"; done
http GET /patients/$P | json 'j["Studies"]' | grep -q "$S" || fail "patient Studies"
http GET /patients/$P | json 'j["IsProtected"] is False and j["Type"] == "Patient"' | grep -qx True || fail "patient IsProtected"
[ "$(http GET /instances/$I/patient | json 'j["ID"]')" = "$P" ] || fail "instance -> patient"
[ "$(http GET /patients/$P/instances | json 'j[0]["ID"]')" = "$I" ] || fail "patient -> instances"
[ "$(http GET "/instances?limit=1&since=1" | json 'len(j)')" = 0 ] || fail "since/limit"
pass "resource shapes"

# File bytes and tags
curl -sf "$URL/instances/$I/file" -o "$T/back.dcm"
cmp "$F" "$T/back.dcm" || fail "/file differs from upload"
http GET /instances/$I/tags | json 'j["0010,0020"]["Type"]' | grep -qx String || fail "/tags"
http GET /instances/$I/simplified-tags | json '"PatientID" in j' | grep -qx True || fail "simplified-tags"
http GET "/instances/$I/tags?simplify" | json '"7fe0,0010" not in j and j["PixelData"] is None' | grep -qx True || fail "tags: PixelData placeholder"
pass "/file and /tags"

# Statistics match the disk
size=$(stat -c %s "$F")
st=$(http GET /statistics)
[ "$(echo "$st" | json 'j["CountInstances"]')" = 1 ] || fail "CountInstances: $st"
[ "$(echo "$st" | json 'j["TotalDiskSize"]')" = "$size" ] || fail "TotalDiskSize: $st"
ondisk=$(find "$T/db" -type f ! -name 'index.sqlite*' -printf '%s\n' | awk '{s+=$1} END {print s}')
[ "$ondisk" = "$size" ] || fail "disk holds $ondisk bytes, expected $size"
http GET /studies/$S/statistics | json 'j["CountInstances"]==1 and j["DiskSize"]=="'"$size"'"' | grep -qx True || fail "study statistics"
pass "statistics"

# Changes: NewInstance, NewSeries, NewStudy, NewPatient in that order
http GET /changes | json '[c["ChangeType"] for c in j["Changes"] if not c["ChangeType"].startswith("Stable")]' | grep -qx '\["NewInstance", "NewSeries", "NewStudy", "NewPatient"\]' || fail "changes: $(cat "$T/body")"
pass "changes"

# Errors and methods
http GET /instances/nope >/dev/null; [ "$(status)" = 404 ] || fail "unknown id -> $(status)"
http GET /nothing/here >/dev/null; [ "$(status)" = 404 ] || fail "unknown route -> $(status)"
http PUT /system >/dev/null; [ "$(status)" = 405 ] || fail "PUT /system -> $(status)"
http GET /instances/nope | json 'j["HttpStatus"]==404 and j["OrthancError"]=="Unknown resource" and j["Method"]=="GET"' | grep -qx True || fail "error JSON"
pass "errors"

# Delete the study: no file, no row
d=$(http DELETE /studies/$S)
[ "$(echo "$d" | json 'j["RemainingAncestor"]')" = None ] || fail "RemainingAncestor: $d"
[ "$(http GET /statistics | json 'j["CountInstances"]+j["CountPatients"]')" = 0 ] || fail "counts after delete"
[ "$(find "$T/db" -type f ! -name 'index.sqlite*' | wc -l)" = 0 ] || fail "files left after delete"
http GET /instances/$I >/dev/null; [ "$(status)" = 404 ] || fail "instance still there"
pass "delete"
