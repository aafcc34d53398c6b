#!/usr/bin/env bash
# Guarantees pinned at their exact edge:
# - MaximumUploadSize 1 (MB): a chunked body (no Content-Length) of 1 MiB + 1 byte gets 413
#   with a JSON body; one of exactly 1 MiB is read whole (garbage: 400, not 413);
# - a body announced (Content-Length) one byte over the limit is 413 before any of it is sent;
#   one announced at exactly the limit is read (400);
# - a PatientID stored with surrounding spaces (" PAT1 ") gets the ID Orthanc computes,
#   SHA-1 of "PAT1" (checked here with hashlib, not with our code);
# - with OverwriteInstances, /tags after an overwrite shows the new content (the parsed-DICOM
#   cache is invalidated by the overwrite), and the replaced file is removed from the storage.
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
# Announced with Content-Length: one byte over is refused from the headers alone (the body is
# never sent here: a server that waited for it would answer nothing within the 60 s timeout).
$PY - "$HTTP_PORT" <<'PY' || fail "Content-Length of 1 MiB + 1 not refused from the headers"
import socket, sys
s = socket.create_connection(("127.0.0.1", int(sys.argv[1]))); s.settimeout(60)
s.sendall(b"POST /instances HTTP/1.1\r\nHost: x\r\nContent-Type: application/dicom\r\n"
          b"Content-Length: 1048577\r\n\r\n")
r = b""
while b"\r\n\r\n" not in r:
    d = s.recv(4096)
    assert d, "connection closed without an answer"
    r += d
assert r.startswith(b"HTTP/1.1 413"), r[:200]
PY
head -c 1048576 /dev/zero | tr '\0' 'x' > "$T/blob"
s=$(curl -s -o "$T/body" -w '%{http_code}' -X POST -H 'Content-Type: application/dicom' --data-binary @"$T/blob" "$URL/instances")
[ "$s" = 400 ] || fail "Content-Length of exactly 1 MiB: $s (expected 400 for non-DICOM, not 413)"
pass "Content-Length one byte over MaximumUploadSize: 413 before the body; exactly the limit is read"
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
# The overwrite replaced the file: exactly one file (the new one) is left in the storage area.
n=$(find "$T/db" -type f -path "$T/db/??/??/*" | wc -l)
[ "$n" = 1 ] || fail "$n stored files after an overwrite (the old one must go)"
f=$(find "$T/db" -type f -path "$T/db/??/??/*")
cmp -s "$f" "$T/b.dcm" || dcmdump -q "$f" | grep -q "SECOND" || fail "the file left is not the new content"
pass "an overwrite removes the replaced file (one file left, the new one)"
