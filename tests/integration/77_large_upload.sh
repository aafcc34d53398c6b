#!/usr/bin/env bash
# 77_large_upload: a large upload is written to a spool file in the storage area as it
# arrives and stored by a rename, never held in memory: a 300 MB POST /instances (announced
# length, then chunked) is stored byte for byte while the server's peak RSS (VmHWM) grows by
# less than 64 MB; an upload cut off mid-body leaves no spool file and no instance; a body over
# MaximumUploadSize still gets 413 (announced, and chunked past the ceiling), spool removed;
# an instance stored this way anonymizes like any other.
source "$(dirname "$0")/lib.sh"
write_config '"MaximumUploadSize": 400'
start_server
SIZE_MB=300
BOUND_KB=$((64 * 1024))

hwm_kb() { awk '/^VmHWM:/ {print $2}' "/proc/$SERVER_PID/status"; }
spool_files() { find "$T/db/spool" -type f 2>/dev/null | wc -l; }
count_instances() { curl -sf "$URL/instances" | json 'len(j)'; }

[ "$(df --output=avail -k "$T" | tail -1)" -gt $((4 * SIZE_MB * 1024)) ] || fail "not enough free disk for a ${SIZE_MB} MB scenario"
MD5=$($PY "$MP_SRC/tests/tools/large_dicom.py" "$T/big.dcm" $SIZE_MB 7)

# warm-up: a small upload, so the baseline includes the first request's allocations
upload "$PYDICOM_FILES/CT_small.dcm" >/dev/null || fail "small upload"
BASE=$(hwm_kb)

# 1. announced length (Content-Length)
out=$(curl -sf -X POST -T "$T/big.dcm" -H 'Content-Type: application/dicom' "$URL/instances") || fail "large upload refused"
ID=$(echo "$out" | json 'j["ID"]')
[ "$(echo "$out" | json 'j["Status"]')" = Success ] || fail "large upload: $out"
GROWTH=$(( $(hwm_kb) - BASE ))
echo "peak RSS growth for a ${SIZE_MB} MB upload: $((GROWTH / 1024)) MB (baseline $((BASE / 1024)) MB)"
[ "$GROWTH" -lt "$BOUND_KB" ] || fail "peak RSS grew by $((GROWTH / 1024)) MB (bound 64 MB)"
got=$(curl -sf "$URL/instances/$ID/file" | md5sum | cut -d' ' -f1)
[ "$got" = "$MD5" ] || fail "stored file differs: $got != $MD5"
[ "$(curl -sf "$URL/instances/$ID/metadata/TransferSyntax")" = 1.2.840.10008.1.2.1 ] || fail "TransferSyntax metadata"
[ "$(spool_files)" = 0 ] || fail "spool file left after a stored upload"
pass "300 MB upload stored (MD5 equal), RSS growth $((GROWTH / 1024)) MB"

# 2. the same file again, chunked: AlreadyStored, spool removed
out=$(curl -sf -X POST -T "$T/big.dcm" -H 'Transfer-Encoding: chunked' -H 'Content-Type: application/dicom' "$URL/instances") || fail "chunked upload refused"
[ "$(echo "$out" | json 'j["Status"]')" = AlreadyStored ] || fail "chunked re-upload: $out"
[ "$(spool_files)" = 0 ] || fail "spool file left after AlreadyStored"
GROWTH=$(( $(hwm_kb) - BASE ))
[ "$GROWTH" -lt "$BOUND_KB" ] || fail "chunked: peak RSS grew by $((GROWTH / 1024)) MB"
pass "chunked re-upload AlreadyStored, no spool file left"
n_before=$(count_instances)

# 3. client gone mid-body: no spool file, nothing indexed
$PY - "$HTTP_PORT" <<'PY'
import socket, sys, time
s = socket.create_connection(("127.0.0.1", int(sys.argv[1])))
s.sendall(b"POST /instances HTTP/1.1\r\nHost: x\r\nContent-Type: application/dicom\r\n"
          b"Content-Length: 209715200\r\n\r\n")
chunk = b"\0" * (1 << 20)
for _ in range(50):
    s.sendall(chunk)
time.sleep(0.3)
s.close()
PY
for _ in $(seq 1 100); do [ "$(spool_files)" = 0 ] && break; sleep 0.1; done
[ "$(spool_files)" = 0 ] || fail "spool file left after the client went away"
[ "$(count_instances)" = "$n_before" ] || fail "an interrupted upload was indexed"
pass "interrupted upload: no spool file, nothing indexed"

# 4. over MaximumUploadSize: 413, announced or found while receiving (chunked)
code=$($PY - "$HTTP_PORT" <<'PY'
import socket, sys
s = socket.create_connection(("127.0.0.1", int(sys.argv[1])))
s.sendall(b"POST /instances HTTP/1.1\r\nHost: x\r\nContent-Type: application/dicom\r\n"
          b"Content-Length: 524288000\r\n\r\n")
print(s.recv(4096).split(b" ")[1].decode())
PY
)
[ "$code" = 413 ] || fail "announced oversized body: $code"
code=$($PY - "$HTTP_PORT" <<'PY'
import socket, sys
s = socket.create_connection(("127.0.0.1", int(sys.argv[1])))
s.sendall(b"POST /instances HTTP/1.1\r\nHost: x\r\nContent-Type: application/dicom\r\n"
          b"Transfer-Encoding: chunked\r\n\r\n")
chunk = b"%x\r\n" % (1 << 20) + b"\1" * (1 << 20) + b"\r\n"
try:
    for _ in range(410):
        s.sendall(chunk)
    s.sendall(b"0\r\n\r\n")
except OSError:
    pass
data = b""
while b"\r\n" not in data:
    d = s.recv(4096)
    if not d:
        break
    data += d
print(data.split(b" ")[1].decode() if data else "none")
PY
)
[ "$code" = 413 ] || fail "chunked body past MaximumUploadSize: $code"
for _ in $(seq 1 50); do [ "$(spool_files)" = 0 ] && break; sleep 0.1; done
[ "$(spool_files)" = 0 ] || fail "spool file left after 413"
[ "$(count_instances)" = "$n_before" ] || fail "a refused upload was indexed"
pass "413 over MaximumUploadSize (announced and chunked), no spool file left"

# 5. an instance stored this way is like any other: anonymize it (the result is a whole file)
curl -sf -X POST "$URL/instances/$ID/anonymize" -d '{}' -o "$T/anon.dcm" || fail "anonymize a spooled instance"
$PY -c 'import pydicom,sys; d=pydicom.dcmread(sys.argv[1], stop_before_pixels=True); assert d.PatientID != "LARGE-7", d.PatientID' "$T/anon.dcm" || fail "anonymized file"
[ "$(stat -c %s "$T/anon.dcm")" -gt $((SIZE_MB * 1024 * 1024)) ] || fail "anonymized file lost its pixels"
rm -f "$T/anon.dcm"
pass "a spooled instance anonymizes"
rm -f "$T/big.dcm"
