#!/usr/bin/env bash
# 78_large_cstore: a large C-STORE dataset goes to a spool file in the storage area as it
# arrives, never held in memory: a 300 MB instance sent by storescu is stored (dataset bytes
# identical) while the server's peak RSS (VmHWM) grows by less than 64 MB; an association
# aborted mid-dataset leaves no spool file and no instance; a dataset past MaximumUploadSize
# aborts the association and leaves no spool file either.
source "$(dirname "$0")/lib.sh"
write_config '"MaximumUploadSize": 400'
start_server
SIZE_MB=300
BOUND_KB=$((64 * 1024))
RAW="$MP_SRC/tests/tools/dicom_raw.py"

hwm_kb() { awk '/^VmHWM:/ {print $2}' "/proc/$SERVER_PID/status"; }
spool_files() { find "$T/db/spool" -type f 2>/dev/null | wc -l; }
count_instances() { curl -sf "$URL/instances" | json 'len(j)'; }

[ "$(df --output=avail -k "$T" | tail -1)" -gt $((4 * SIZE_MB * 1024)) ] || fail "not enough free disk for a ${SIZE_MB} MB scenario"
$PY "$MP_SRC/tests/tools/large_dicom.py" "$T/big.dcm" $SIZE_MB 8 >/dev/null

storescu -aec ORTHANC 127.0.0.1 "$DICOM_PORT" "$PYDICOM_FILES/CT_small.dcm" || fail "small C-STORE"
BASE=$(hwm_kb)

# 1. storescu, 300 MB
storescu -aec ORTHANC -xs 127.0.0.1 "$DICOM_PORT" "$T/big.dcm" || fail "large C-STORE failed"
GROWTH=$(( $(hwm_kb) - BASE ))
echo "peak RSS growth for a ${SIZE_MB} MB C-STORE: $((GROWTH / 1024)) MB (baseline $((BASE / 1024)) MB)"
[ "$GROWTH" -lt "$BOUND_KB" ] || fail "peak RSS grew by $((GROWTH / 1024)) MB (bound 64 MB)"
ID=$(curl -sf "$URL/tools/lookup" -d "$($PY -c 'import pydicom,sys; print(pydicom.dcmread(sys.argv[1], stop_before_pixels=True).SOPInstanceUID)' "$T/big.dcm")" | json 'j[0]["ID"]')
curl -sf "$URL/instances/$ID/file" -o "$T/back.dcm" || fail "cannot read the stored file"
want=$($PY "$RAW" dsbytes "$T/big.dcm")
got=$($PY "$RAW" dsbytes "$T/back.dcm")
[ "$got" = "$want" ] || fail "stored dataset differs: $got != $want"
rm -f "$T/back.dcm"
[ "$(curl -sf "$URL/instances/$ID/metadata/Origin")" = DicomProtocol ] || fail "Origin metadata"
[ "$(spool_files)" = 0 ] || fail "spool file left after a stored C-STORE"
pass "300 MB C-STORE stored (dataset identical), RSS growth $((GROWTH / 1024)) MB"
n_before=$(count_instances)

# 2. association aborted mid-dataset (50 MB of a dataset sent, then the socket closed);
# 3. a dataset past MaximumUploadSize (400 MB of fragments): association aborted
$PY - "$MP_SRC/tests/tools" "$DICOM_PORT" <<'PY' || fail "raw peers"
import sys, time
sys.path.insert(0, sys.argv[1]); import dicom_raw as R
port = int(sys.argv[2])
a = R.Assoc(port, calling="CUTOFF", timeout=60)
assert a.result == 2, a.result
a.store_begin("1.2.3.4.5.6.7.8.9.1")
head = b"\x08\x00\x16\x00UI\x1a\x00" + R.CT_IMAGE.encode() + b"\0"
a.fragment(head, False)
chunk = b"\0" * 16000
for _ in range(50 * 1024 * 1024 // len(chunk)):
    a.fragment(chunk, False)
a.close()
b = R.Assoc(port, calling="ENDLESS", timeout=60)
assert b.result == 2, b.result
b.store_begin("1.2.3.4.5.6.7.8.9.2")
b.fragment(head, False)
try:
    for _ in range(410 * 1024 * 1024 // len(chunk)):
        b.fragment(chunk, False)
    closed = b.wait_closed(30)
except OSError:
    closed = 0
assert closed is not None, "association past MaximumUploadSize not aborted"
print("cut-off and oversized associations done")
PY
for _ in $(seq 1 100); do [ "$(spool_files)" = 0 ] && break; sleep 0.1; done
[ "$(spool_files)" = 0 ] || fail "spool file left after an aborted association"
[ "$(count_instances)" = "$n_before" ] || fail "an aborted dataset was indexed"
grep -q "ENDLESS.*MaximumUploadSize\|MaximumUploadSize.*association aborted" "$T/server.log" || fail "oversized dataset not logged"
pass "aborted mid-dataset and oversized: no spool file, nothing indexed"
echoscu -aec ORTHANC 127.0.0.1 "$DICOM_PORT" || fail "listener unusable afterwards"
rm -f "$T/big.dcm"
