#!/usr/bin/env bash
# Guarantees pinned at their exact edge:
# - MaximumUploadSize 1 (MB): a chunked body (no Content-Length) of 1 MiB + 1 byte gets 413
#   with a JSON body; one of exactly 1 MiB is read whole (garbage: 400, not 413);
# - a PatientID stored with surrounding spaces (" PAT1 ") gets the ID Orthanc computes,
#   SHA-1 of "PAT1" (checked here with hashlib, not with our code);
# - with OverwriteInstances, /tags after an overwrite shows the new content (the parsed-DICOM
#   cache is invalidated by the overwrite).
source "$(dirname "$0")/lib.sh"
write_config '"MaximumUploadSize": 1, "OverwriteInstances": true'
start_server

chunked() {  # chunked NBYTES -> status; sends the body with Transfer-Encoding: chunked
  head -c "$1" /dev/zero | tr '\0' 'x' > "$T/blob"
  curl -s -o "$T/body" -w '%{http_code}' -X POST -H 'Transfer-Encoding: chunked' \
    -H 'Content-Type: application/dicom' --data-binary @"$T/blob" "$URL/instances"
}
s=$(chunked $((1048576 + 1)))
[ "$s" = 413 ] || fail "chunked 1 MiB + 1: $s"
json 'j["HttpStatus"]' < "$T/body" | grep -qx 413 || fail "413 without its JSON body: $(cat "$T/body")"
pass "chunked body one byte over MaximumUploadSize: 413 JSON"
s=$(chunked 1048576)
[ "$s" = 400 ] || fail "chunked body of exactly 1 MiB: $s (expected 400 for non-DICOM, not 413)"
pass "chunked body of exactly MaximumUploadSize is read (400: not DICOM)"
[ "$(http GET /instances | json 'len(j)')" = 0 ] || fail "something was stored"

$PY - "$T" <<'PY'
import sys
from pydicom.dataset import Dataset, FileMetaDataset
from pydicom.uid import ExplicitVRLittleEndian, generate_uid
for name, desc in (("a", "FIRST"), ("b", "SECOND")):
    ds = Dataset()
    ds.PatientID = " PAT1 "; ds.PatientName = "Pad^Ded"
    ds.StudyInstanceUID = "1.2.3.4.5.6"; ds.SeriesInstanceUID = "1.2.3.4.5.6.7"
    ds.SOPInstanceUID = "1.2.3.4.5.6.7.8"; ds.SOPClassUID = "1.2.840.10008.5.1.4.1.1.7"
    ds.Modality = "OT"; ds.StudyDescription = desc
    ds.file_meta = FileMetaDataset(); ds.file_meta.TransferSyntaxUID = ExplicitVRLittleEndian
    ds.file_meta.MediaStorageSOPClassUID = ds.SOPClassUID
    ds.file_meta.MediaStorageSOPInstanceUID = ds.SOPInstanceUID
    ds.is_little_endian = True; ds.is_implicit_VR = False
    ds.save_as(f"{sys.argv[1]}/{name}.dcm", write_like_original=False)
PY
want=$($PY -c 'import hashlib; h=hashlib.sha1(b"PAT1").hexdigest(); print("-".join(h[i:i+8] for i in range(0,40,8)))')
r=$(upload "$T/a.dcm")
[ "$(echo "$r" | json 'j["ParentPatient"]')" = "$want" ] || fail "patient ID of ' PAT1 ': $(echo "$r" | json 'j["ParentPatient"]') != $want"
pass "padded PatientID: ID = SHA-1(\"PAT1\") = $want"

I=$(echo "$r" | json 'j["ID"]')
[ "$(http GET "/instances/$I/tags?simplify" | json 'j["StudyDescription"]')" = FIRST ] || fail "first content"
r=$(upload "$T/b.dcm")
[ "$(echo "$r" | json 'j["ID"]')" = "$I" ] || fail "overwrite changed the ID"
[ "$(http GET "/instances/$I/tags?simplify" | json 'j["StudyDescription"]')" = SECOND ] || fail "/tags after an overwrite still shows the old content"
pass "/tags after an overwrite shows the new content"
