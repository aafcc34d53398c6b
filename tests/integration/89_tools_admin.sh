#!/usr/bin/env bash
# Issue 19, Orthanc's small administration tools as Debian's Orthanc 1.10.1 answers them
# (compared request by request): /tools/log-level[-category], /tools/default-encoding (and its
# effect on /tags and create-dicom), /tools/accepted-transfer-syntaxes and
# /tools/unknown-sop-class-accepted (and their effect on the C-STORE SCP, with storescu),
# /exports, the listings of /tools and /instances/{id}/frames/{n}, /tools/reset (configuration
# read again, store, jobs and sockets back) and /tools/shutdown (a clean exit).
source "$(dirname "$0")/lib.sh"
write_config '"SaveJobs": true'
start_server
CT="$PYDICOM_FILES/CT_small.dcm"
I=$(upload "$CT" | json 'j["ID"]')

# ---- log levels
for c in "" -generic -plugins -http -sqlite -dicom -jobs -lua; do
  [ "$(http GET /tools/log-level$c)" = default ] || fail "log-level$c: $(cat "$T/body")"
done
http GET /tools/log-level-foo >/dev/null; [ "$(status)" = 404 ] || fail "unknown category -> $(status)"
[ "$(http PUT /tools/log-level-http -d verbose)" = "" ] && [ "$(status)" = 200 ] || fail "PUT log-level-http -> $(status) $(cat "$T/body")"
[ "$(http GET /tools/log-level-http)" = verbose ] || fail "GET log-level-http after PUT"
[ "$(http GET /tools/log-level)" = default ] || fail "global level changed by a category"
http GET /statistics >/dev/null
grep -q ' D ' "$T/server.log" || fail "no debug line once a category is verbose"
http PUT /tools/log-level -d bogus >/dev/null; [ "$(status)" = 400 ] || fail "bogus level -> $(status)"
json 'j["OrthancStatus"] == 3 and j["Details"] == "Verbosity can be \"default\", \"verbose\" or \"trace\": bogus"' <"$T/body" | grep -qx True || fail "bogus level answer: $(cat "$T/body")"
http PUT /tools/log-level --data-binary $' verbose\n' >/dev/null; [ "$(status)" = 400 ] || fail "blanks around the level are refused by Orthanc -> $(status)"
http PUT /tools/log-level -d trace >/dev/null; [ "$(http GET /tools/log-level)" = trace ] || fail trace
http PUT /tools/log-level -d default >/dev/null; http PUT /tools/log-level-http -d default >/dev/null
pass "log levels"

# ---- default encoding: files without SpecificCharacterSet, and create-dicom
$PY - "$T" <<'PY'
import sys
from pydicom.dataset import Dataset, FileMetaDataset
from pydicom.uid import ExplicitVRLittleEndian, generate_uid
ds = Dataset(); ds.file_meta = FileMetaDataset(); ds.file_meta.TransferSyntaxUID = ExplicitVRLittleEndian
ds.PatientID = "ENC"; ds.StudyInstanceUID = generate_uid(); ds.SeriesInstanceUID = generate_uid()
ds.SOPInstanceUID = generate_uid(); ds.SOPClassUID = "1.2.840.10008.5.1.4.1.1.7"
ds.add_new(0x00081030, "LO", "J\u00e9r\u00f4me".encode("utf-8"))  # UTF-8 bytes, no charset
ds.is_little_endian = True; ds.is_implicit_VR = False
ds.save_as(sys.argv[1] + "/nocharset.dcm", write_like_original=False)
PY
N=$(upload "$T/nocharset.dcm" | json 'j["ID"]')
[ "$(http GET /tools/default-encoding)" = Latin1 ] || fail "default-encoding: $(cat "$T/body")"
[ "$(http GET "/instances/$N/simplified-tags" | json 'j["StudyDescription"]')" = "JÃ©rÃ´me" ] || fail "Latin1 reading: $(cat "$T/body")"
[ "$(http PUT /tools/default-encoding -d utf8)" = Utf8 ] || fail "PUT utf8 -> $(cat "$T/body")"
[ "$(http GET "/instances/$N/simplified-tags" | json 'j["StudyDescription"]')" = "Jérôme" ] || fail "Utf8 reading: $(cat "$T/body")"
created_charset() { # create-dicom, then the file's SpecificCharacterSet and PatientName bytes
  local id; id=$(http POST /tools/create-dicom -d '{"Tags":{"PatientName":"Jérôme"}}' | json 'j["ID"]')
  curl -sf "$URL/instances/$id/file" -o "$T/created.dcm"
  $PY -c "import pydicom; d=pydicom.dcmread('$T/created.dcm'); print(d.SpecificCharacterSet, d.PatientName.original_string.hex())"
}
[ "$(created_charset)" = "ISO_IR 192 4ac3a972c3b46d65" ] || fail "create-dicom with Utf8: $(created_charset)"
http PUT /tools/default-encoding -d bogus >/dev/null; [ "$(status)" = 400 ] || fail "bogus encoding -> $(status)"
[ "$(json 'j["OrthancStatus"]' <"$T/body")" = 3 ] || fail "bogus encoding answer: $(cat "$T/body")"
[ "$(http PUT /tools/default-encoding -d Latin1)" = Latin1 ] || fail "back to Latin1"
[ "$(created_charset)" = "ISO_IR 100 4ae972f46d65" ] || fail "create-dicom with Latin1 (as Orthanc): $(created_charset)"
pass "default encoding"

# ---- transfer syntaxes and unknown SOP classes of the C-STORE SCP
http GET /tools/accepted-transfer-syntaxes | json 'len(j) == 42 and j[0] == "1.2.840.10008.1.2" and j[2] == "1.2.840.10008.1.2.1.99" and "1.2.840.10008.1.2.4.94" in j and j[-1] == "1.2.840.10008.1.2.6.2" and j.index("1.2.840.10008.1.2.4.108") < j.index("1.2.840.10008.1.2.5")' | grep -qx True || fail "accepted syntaxes: $(cat "$T/body")"
http PUT /tools/accepted-transfer-syntaxes -d '["1.2.840.10008.1.2.1"]' | json 'j == ["1.2.840.10008.1.2.1"]' | grep -qx True || fail "PUT list: $(cat "$T/body")"
storescu -xi 127.0.0.1 "$DICOM_PORT" "$CT" >"$T/scu.txt" 2>&1 || true
grep -q "No Acceptable Presentation Contexts" "$T/scu.txt" || fail "implicit VR still accepted: $(cat "$T/scu.txt")"
storescu -xe 127.0.0.1 "$DICOM_PORT" "$CT" || fail "explicit VR refused"
http PUT /tools/accepted-transfer-syntaxes -d '"1.2.840.10008.1.2.4.5?"' | json 'len(j) == 10 and j[0] == "1.2.840.10008.1.2.4.50"' | grep -qx True || fail "wildcard as a JSON string: $(cat "$T/body")"
http PUT /tools/accepted-transfer-syntaxes -d 'foo' | json 'j == []' | grep -qx True || fail "a text pattern matching nothing: $(cat "$T/body")"
http PUT /tools/accepted-transfer-syntaxes -d '1.2.840.10008.1.2' >/dev/null; [ "$(status)" = 400 ] || fail "a bare UID is a JSON number for Orthanc too -> $(status)"
[ "$(json 'j["OrthancStatus"]' <"$T/body")" = 15 ] || fail "bare UID answer: $(cat "$T/body")"
http PUT /tools/accepted-transfer-syntaxes -d '["1.2.840.10008.1.*"]' | json 'len(j)' | grep -qx 42 || fail "back to all"
cat >"$T/unk.cfg" <<'CFG'
[[TransferSyntaxes]]
[Uncompressed]
TransferSyntax1 = LittleEndianExplicit
TransferSyntax2 = LittleEndianImplicit
[[PresentationContexts]]
[UnknownContexts]
PresentationContext1 = 1.2.3.4.5.6\Uncompressed
[[Profiles]]
[Unknown]
PresentationContexts = UnknownContexts
CFG
$PY - "$T" <<'PY'
import sys
from pydicom.dataset import Dataset, FileMetaDataset
from pydicom.uid import ExplicitVRLittleEndian, generate_uid
ds = Dataset(); ds.file_meta = FileMetaDataset(); ds.file_meta.TransferSyntaxUID = ExplicitVRLittleEndian
ds.file_meta.MediaStorageSOPClassUID = ds.SOPClassUID = "1.2.3.4.5.6"
ds.PatientID = "UNKNOWNCLASS"; ds.StudyInstanceUID = generate_uid(); ds.SeriesInstanceUID = generate_uid()
ds.SOPInstanceUID = ds.file_meta.MediaStorageSOPInstanceUID = generate_uid()
ds.is_little_endian = True; ds.is_implicit_VR = False
ds.save_as(sys.argv[1] + "/unk.dcm", write_like_original=False)
PY
[ "$(http GET /tools/unknown-sop-class-accepted)" = 0 ] || fail "unknown-sop-class-accepted default"
storescu -xf "$T/unk.cfg" Unknown 127.0.0.1 "$DICOM_PORT" "$T/unk.dcm" >"$T/scu.txt" 2>&1 || true
grep -q "No Acceptable Presentation Contexts" "$T/scu.txt" || fail "unknown SOP class accepted by default: $(cat "$T/scu.txt")"
[ "$(http PUT /tools/unknown-sop-class-accepted -d 1)" = "" ] && [ "$(status)" = 200 ] || fail "PUT 1 -> $(status)"
[ "$(http GET /tools/unknown-sop-class-accepted)" = 1 ] || fail "GET after PUT 1"
storescu -xf "$T/unk.cfg" Unknown 127.0.0.1 "$DICOM_PORT" "$T/unk.dcm" || fail "unknown SOP class refused once accepted"
[ "$(http POST /tools/lookup -d UNKNOWNCLASS | json 'len(j)')" = 1 ] || fail "the unknown-class instance is not stored"
http PUT /tools/unknown-sop-class-accepted -d yes >/dev/null; [ "$(status)" = 400 ] || fail "yes -> $(status)"
json 'j["OrthancStatus"] == 15 and j["Details"] == "Boolean value expected"' <"$T/body" | grep -qx True || fail "yes answer: $(cat "$T/body")"
http PUT /tools/unknown-sop-class-accepted -d false >/dev/null; [ "$(http GET /tools/unknown-sop-class-accepted)" = 0 ] || fail "PUT false"
pass "C-STORE SCP policy"

# ---- /exports and listings
http GET /exports | json 'j == {"Done": True, "Exports": [], "Last": 0}' | grep -qx True || fail "/exports: $(cat "$T/body")"
[ "$(http DELETE /exports)" = "" ] && [ "$(status)" = 200 ] || fail "DELETE /exports -> $(status)"
http GET /tools | json 'j == sorted(j) and {"log-level", "log-level-lua", "create-dicom", "find", "reset", "shutdown", "accepted-transfer-syntaxes", "unknown-sop-class-accepted", "default-encoding"} <= set(j) and "metrics" in j' | grep -qx True || fail "/tools: $(cat "$T/body")"
http GET "/instances/$I/frames/0" | json 'j == ["image-int16", "image-uint16", "image-uint8", "matlab", "numpy", "preview", "raw", "raw.gz", "rendered"]' | grep -qx True || fail "frames/0: $(cat "$T/body")"
http GET /tools/nothing >/dev/null; [ "$(status)" = 404 ] || fail "/tools/nothing -> $(status)"
http GET "/instances/$I/nothing" >/dev/null; [ "$(status)" = 404 ] || fail "unknown child -> $(status)"
pass "/exports, listings"

# ---- /tools/reset: the configuration read again, the store and a saved job back
S=$(http GET "/instances/$I" | json 'j["ParentSeries"]')
J=$(http POST "/series/$S/anonymize" -d '{"Asynchronous": true}' | json 'j["ID"]')
for _ in $(seq 1 100); do [ "$(http GET "/jobs/$J" | json 'j["State"]')" = Success ] && break; sleep 0.1; done
http PUT /tools/unknown-sop-class-accepted -d 1 >/dev/null
http PUT /tools/default-encoding -d Utf8 >/dev/null
before=$(http GET /statistics | json 'j["CountInstances"]')
sed -i 's/"Name": "it"/"Name": "after-reset"/' "$T/Orthanc.json"
[ "$(http POST /tools/reset)" = "{}" ] && [ "$(status)" = 200 ] || fail "reset -> $(status) $(cat "$T/body")"
for _ in $(seq 1 100); do [ "$(curl -s "$URL/system" | json 'j["Name"]' 2>/dev/null)" = after-reset ] && break; sleep 0.1; done
[ "$(http GET /system | json 'j["Name"]')" = after-reset ] || fail "configuration not read again: $(cat "$T/body")"
kill -0 "$SERVER_PID" || fail "the process is gone after reset"
[ "$(http GET /statistics | json 'j["CountInstances"]')" = "$before" ] || fail "store changed by reset"
[ "$(http GET "/jobs/$J" | json 'j["State"]')" = Success ] || fail "the saved job is not back after reset: $(cat "$T/body")"
[ "$(http GET /tools/unknown-sop-class-accepted)" = 0 ] && [ "$(http GET /tools/default-encoding)" = Latin1 ] || fail "run-time settings survive a reset (Orthanc reads them from the configuration again)"
echoscu 127.0.0.1 "$DICOM_PORT" || fail "DICOM port not listening again after reset"
storescu 127.0.0.1 "$DICOM_PORT" "$PYDICOM_FILES/MR_small.dcm" || fail "C-STORE after reset"
grep -q 'resetting' "$T/server.log" || fail "no reset in the log"
kill -HUP "$SERVER_PID"
for _ in $(seq 1 100); do [ "$(grep -c 'ready:' "$T/server.log")" -ge 3 ] && break; sleep 0.1; done
[ "$(grep -c 'ready:' "$T/server.log")" -ge 3 ] || fail "SIGHUP did not reset"
for _ in $(seq 1 100); do curl -sf "$URL/system" >/dev/null && break; sleep 0.1; done
http GET /statistics >/dev/null; [ "$(status)" = 200 ] || fail "HTTP after SIGHUP"
pass "reset"

# ---- /tools/shutdown: answered, then a clean exit
[ "$(http POST /tools/shutdown)" = "{}" ] && [ "$(status)" = 200 ] || fail "shutdown -> $(status)"
for _ in $(seq 1 200); do kill -0 "$SERVER_PID" 2>/dev/null || break; sleep 0.05; done
kill -0 "$SERVER_PID" 2>/dev/null && fail "server still running after /tools/shutdown"
rc=0; wait "$SERVER_PID" || rc=$?; SERVER_PID=""
[ "$rc" = 0 ] || fail "exit status $rc after shutdown"
grep -q 'main: stopped' "$T/server.log" || fail "no orderly stop in the log"
pass "89_tools_admin"
