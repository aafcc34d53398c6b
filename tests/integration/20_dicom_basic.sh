#!/usr/bin/env bash
# DICOM listener basics with DCMTK's echoscu/storescu: C-ECHO; C-STORE of a pydicom file and of
# a generated study, stored byte-identical (dataset part) with our meta header and the IDs a
# REST upload gives; failure statuses for datasets that cannot be indexed or parsed, the
# association and the server surviving; DicomCheckCalledAet; DicomAlwaysAllowStore with
# DicomModalities and DicomCheckModalityHost; rejections logged with calling AET and host.
source "$(dirname "$0")/lib.sh"
RAW="$MP_SRC/tests/tools/dicom_raw.py"
# "What was sent": storescu re-encodes what it reads (e.g. drops group lengths), so the bytes
# on the wire are captured by DCMTK's storescp in bit-preserving mode, as an oracle.
ORACLE_PORT=$(free_port); mkdir -p "$T/oracle"
storescp -B +xa -uf -od "$T/oracle" "$ORACLE_PORT" >"$T/oracle.log" 2>&1 &
ORACLE_PID=$!
trap 'rc=$?; set +e; kill $ORACLE_PID 2>/dev/null; wait $ORACLE_PID 2>/dev/null; (exit $rc); on_exit' EXIT
sent_bytes() { # FILE -> "size sha1" of the dataset storescu puts on the wire
  rm -f "$T"/oracle/*
  storescu -aec ORACLE 127.0.0.1 "$ORACLE_PORT" "$1" >/dev/null 2>&1 || return 1
  $PY "$RAW" dsbytes "$(ls -d "$T"/oracle/* | head -1)"
}
start_server
F="$PYDICOM_FILES/CT_small.dcm"

echoscu -aec ORTHANC 127.0.0.1 "$DICOM_PORT" || fail "echoscu"
echoscu -aec ANYTHING 127.0.0.1 "$DICOM_PORT" || fail "echoscu with another called AET (check off)"
pass "C-ECHO"

storescu -aec ORTHANC 127.0.0.1 "$DICOM_PORT" "$F" || fail "storescu CT_small"
I=$(http GET /instances | json 'j[0]')
curl -sf "$URL/instances/$I/file" -o "$T/back.dcm"
[ "$($PY "$RAW" dsbytes "$T/back.dcm")" = "$(sent_bytes "$F")" ] || fail "dataset part differs from what storescu sent"
$PY - "$T/back.dcm" "$F" <<'PY' || fail "meta header"
import sys, pydicom
a = pydicom.dcmread(sys.argv[1]); b = pydicom.dcmread(sys.argv[2])
m = a.file_meta
assert m.TransferSyntaxUID == b.file_meta.TransferSyntaxUID, m.TransferSyntaxUID
assert m.MediaStorageSOPInstanceUID == b.SOPInstanceUID and m.MediaStorageSOPClassUID == b.SOPClassUID
assert m.ImplementationClassUID.startswith("2.25.") and m.ImplementationVersionName == "MINIPACS_010"
assert m.SourceApplicationEntityTitle.strip() == "STORESCU"
assert a.SOPInstanceUID == b.SOPInstanceUID
PY
r=$(upload "$F")
[ "$(echo "$r" | json 'j["Status"]')" = AlreadyStored ] || fail "REST re-upload: $r"
[ "$(echo "$r" | json 'j["ID"]')" = "$I" ] || fail "REST ID differs from C-STORE ID"
storescu -aec ORTHANC 127.0.0.1 "$DICOM_PORT" "$F" || fail "duplicate C-STORE must succeed"
[ "$(http GET /statistics | json 'j["CountInstances"]')" = 1 ] || fail "duplicate counted"
pass "C-STORE CT_small: bytes, meta, IDs, duplicate"

$PY "$MP_SRC/tests/tools/gen_study.py" "$T/study" 30 --series 3 --size 64 --seed 7 >/dev/null
storescu -aec ORTHANC +sd 127.0.0.1 "$DICOM_PORT" "$T/study" || fail "storescu study"
[ "$(http GET /statistics | json 'j["CountInstances"]')" = 31 ] || fail "study count"
for f in "$T"/study/*.dcm; do
  id=$($PY - "$f" <<'PY'
import hashlib, sys, pydicom
ds = pydicom.dcmread(sys.argv[1], stop_before_pixels=True)
k = "|".join(str(ds[t].value).strip() for t in ("PatientID", "StudyInstanceUID", "SeriesInstanceUID", "SOPInstanceUID"))
h = hashlib.sha1(k.encode()).hexdigest(); print("-".join(h[i:i+8] for i in range(0, 40, 8)))
PY
)
  curl -sf "$URL/instances/$id/file" -o "$T/b.dcm" || fail "$(basename "$f"): not stored under $id"
  [ "$($PY "$RAW" dsbytes "$T/b.dcm")" = "$(sent_bytes "$f")" ] || fail "$(basename "$f"): dataset differs"
done
http GET "/instances/$id/metadata/Origin" >/dev/null
if [ "$(status)" = 200 ]; then
  [ "$(http GET "/instances/$id/metadata/Origin")" = DicomProtocol ] || fail "Origin metadata"
  [ "$(http GET "/instances/$id/metadata/RemoteAET")" = STORESCU ] || fail "RemoteAET metadata"
  [ "$(http GET "/instances/$id/metadata/CalledAET")" = ORTHANC ] || fail "CalledAET metadata"
fi
pass "C-STORE generated study: 30 instances, IDs and dataset bytes"

# Failure statuses: a dataset without StudyInstanceUID (cannot be indexed), then a good file on
# the same association; a dataset that does not parse (hand-made), then C-ECHO on the same one.
$PY - "$F" "$T/nostudy.dcm" <<'PY'
import sys, pydicom
ds = pydicom.dcmread(sys.argv[1]); del ds.StudyInstanceUID
ds.SOPInstanceUID = ds.SOPInstanceUID + ".9"; ds.save_as(sys.argv[2])
PY
before=$(http GET /statistics | json 'j["CountInstances"]')
files_before=$(find "$T/db" -type f ! -name 'index.sqlite*' | wc -l)
storescu -v -nh -aec ORTHANC 127.0.0.1 "$DICOM_PORT" "$T/nostudy.dcm" "$T/study/$(ls "$T/study" | head -1)" > "$T/sc.log" 2>&1 || true
grep -q "Received Store Response (Error: CannotUnderstand)" "$T/sc.log" || { cat "$T/sc.log"; fail "no 0xC000 status for a dataset without StudyInstanceUID"; }
grep -q "Received Store Response (Success)" "$T/sc.log" || fail "association did not survive the failure"
r=$($PY "$RAW" garbage "$DICOM_PORT") || fail "raw client"
[ "$r" = "c000 0" ] || fail "garbage dataset: statuses $r (want c000 0)"
[ "$(http GET /statistics | json 'j["CountInstances"]')" = "$before" ] || fail "a refused dataset was counted"
[ "$(find "$T/db" -type f ! -name 'index.sqlite*' | wc -l)" = "$files_before" ] || fail "a refused dataset left a file"
echoscu -aec ORTHANC 127.0.0.1 "$DICOM_PORT" || fail "server did not survive"
grep -q "refused: missing StudyInstanceUID" "$T/server.log" || fail "refusal not logged"
pass "failure statuses, association and server survive"

# DicomCheckCalledAet
stop_server
write_config '"DicomCheckCalledAet": true, "DicomAet": "MYPACS"'
start_server
echoscu -aec MYPACS 127.0.0.1 "$DICOM_PORT" || fail "right called AET refused"
if echoscu -aet CALLER9 -aec ORTHANC 127.0.0.1 "$DICOM_PORT" > "$T/e.log" 2>&1; then fail "wrong called AET accepted"; fi
grep -qi "reject" "$T/e.log" || { cat "$T/e.log"; fail "echoscu did not see a rejection"; }
grep "rejected association" "$T/server.log" | grep "CALLER9" | grep -q "127.0.0.1" || fail "rejection not logged with AET and host"
pass "DicomCheckCalledAet"

# DicomAlwaysAllowStore false: only known modalities store; echo stays open to all
stop_server
write_config '"DicomAlwaysAllowStore": false, "DicomModalities": {"known": ["KNOWN", "127.0.0.1", 104], "far": ["FAR", "10.9.9.9", 104]}, "DicomCheckModalityHost": true'
start_server
rm -rf "$T/study2"; $PY "$MP_SRC/tests/tools/gen_study.py" "$T/study2" 1 --size 32 --seed 8 >/dev/null
G=$(ls -d "$T"/study2/*.dcm)
before=$(http GET /statistics | json 'j["CountInstances"]')
storescu -aet KNOWN -aec ORTHANC 127.0.0.1 "$DICOM_PORT" "$F" || fail "known modality refused"
if storescu -aet STRANGER -aec ORTHANC 127.0.0.1 "$DICOM_PORT" "$G" > "$T/s.log" 2>&1; then fail "unknown AET stored"; fi
if storescu -aet FAR -aec ORTHANC 127.0.0.1 "$DICOM_PORT" "$G" > "$T/s.log" 2>&1; then fail "known AET from the wrong host stored"; fi
echoscu -aet STRANGER -aec ORTHANC 127.0.0.1 "$DICOM_PORT" || fail "echo from an unknown AET refused"
[ "$(http GET /statistics | json 'j["CountInstances"]')" = "$before" ] || fail "count after policy checks"
grep "rejected association" "$T/server.log" | grep "STRANGER" | grep -q "127.0.0.1" || fail "store rejection not logged"
pass "DicomAlwaysAllowStore / DicomModalities / DicomCheckModalityHost"
