#!/usr/bin/env bash
# Hostile DICOM peers cannot stall or exhaust the listener (issue 18):
# - idle sockets (connected, nothing sent) and a partial A-ASSOCIATE-RQ do not hold up other
#   associations: echoscu answers while they are open (~0.1-0.2 s on an idle machine; the
#   bound is its time alone + 2 s, at most 5 s, below the 6 s a stalled listener takes); they
#   are closed after the handshake timeout (min(DicomScpTimeout, 10) s = 6 s);
# - more idle sockets than the handshake cap: the oldest are cut, echoscu still answers;
# - C-STORE data past MaximumUploadSize (endless fragments, never the last one): the
#   association is aborted with a clear log line, and the server's memory does not follow;
# - a C-FIND / C-MOVE / C-GET identifier that never ends (endless fragments): cut past 4 MB
#   (the identifier bound, through the same bounded consumer as C-STORE), RSS bounded;
# - a P-DATA PDU whose length exceeds MaximumPduLength (and one of 4 GB): aborted at once,
#   nothing allocated for it;
# - malformed A-ASSOCIATE-RQs (a sub-item longer than its presentation context, the input the
#   fuzzer found leaking DCMTK's lists; a role selection UID of 70 bytes, past the buffer DCMTK
#   copies it into; stray bytes after the items): answered at once with an A-ABORT (service
#   provider, invalid PDU parameter value) and a log line naming the fault, never parsed.
# Each time the server still answers C-ECHO and REST afterwards.
source "$(dirname "$0")/lib.sh"
# RSS bound of each hostile peer. Under ASan freed memory sits in the allocator's quarantine
# (and every block has redzones), so the same bounded buffers show up to twice as much RSS:
# the plain run keeps the real bound.
RSS_BOUND_KB=40000
[ "${MP_SANITIZER:-none}" = asan ] && RSS_BOUND_KB=80000
write_config '"DicomScpTimeout": 6, "MaximumUploadSize": 4, "MaximumPduLength": 16384,
  "DicomAlwaysAllowFind": true, "DicomAlwaysAllowMove": true, "DicomAlwaysAllowGet": true'
start_server

rss_kb() { awk '/^VmRSS/ {print $2}' "/proc/$SERVER_PID/status"; }

# echo_time: milliseconds taken by one echoscu (99999 when it fails)
echo_time() {
  local t0 t1
  t0=$(date +%s%N)
  echoscu -to 20 -ta 20 -aec ORTHANC 127.0.0.1 "$DICOM_PORT" 2>/dev/null || { echo 99999; return; }
  t1=$(date +%s%N)
  echo $(( (t1 - t0) / 1000000 ))
}
# best of up to six echoscu runs; stops at the first one under the bound
echo_best() {
  local bound=$1 best=999999 ms
  for _ in 1 2 3 4 5 6; do
    ms=$(echo_time)
    [ "$ms" -lt "$best" ] && best=$ms
    [ "$best" -lt "$bound" ] && break
  done
  echo "$best"
}
# A listener stalled by a hostile socket takes the whole handshake timeout (6 s) for it: the
# first echoscu must answer within 5 s, and the best of six within what echoscu takes on this
# machine with nobody in the way plus 2 s (at most 5 s).
base=$(echo_best 0)
limit=$((base + 2000)); [ $limit -gt 5000 ] && limit=5000
echo "echoscu alone: $base ms; bound with hostile peers: $limit ms"
echo_fast() {
  local first best
  first=$(echo_time)
  [ "$first" -lt 5000 ] || { echo "FAIL: the first echoscu took $first ms $* (alone: $base ms)" >&2; echo 99999; return; }
  best=$(echo_best "$limit")
  [ "$first" -lt "$best" ] && best=$first
  echo "$best"
}
# check_fast WHAT: fails the scenario unless echo_fast is within the bound
check_fast() {
  best=$(echo_fast "$@")
  [ "$best" -lt "$limit" ] || fail "echoscu took $best ms at best $* (alone: $base ms, bound $limit ms)"
}

# ---- idle sockets and a partial PDU -------------------------------------------------------
$PY - "$DICOM_PORT" > "$T/hold.log" 2>&1 <<'PY' &
import socket, struct, sys, time
port = int(sys.argv[1])
socks = [socket.create_connection(("127.0.0.1", port)) for _ in range(5)]
# a partial A-ASSOCIATE-RQ: the header announces 1000 bytes, 10 come
p = socket.create_connection(("127.0.0.1", port))
p.sendall(struct.pack(">BBI", 1, 0, 1000) + b"\0" * 10)
socks.append(p)
print("held", flush=True)
t0 = time.time()
closed = {}
for s in socks:
    s.settimeout(30)
while len(closed) < len(socks) and time.time() - t0 < 30:
    for i, s in enumerate(socks):
        if i in closed:
            continue
        s.settimeout(0.05)
        try:
            d = s.recv(100)
            if not d:
                closed[i] = time.time() - t0
        except socket.timeout:
            pass
        except OSError:
            closed[i] = time.time() - t0
print("closed", len(closed), "max %.1f" % max(closed.values() or [99]), flush=True)
PY
HOLD=$!
for _ in $(seq 1 100); do grep -q held "$T/hold.log" && break; sleep 0.05; done
grep -q held "$T/hold.log" || fail "idle sockets not opened: $(cat "$T/hold.log")"
check_fast "with 5 idle sockets and a partial PDU open"
pass "echoscu answers in $best ms while 5 idle sockets and a partial PDU are open"
wait "$HOLD" || fail "idle holder: $(cat "$T/hold.log")"
line=$(grep closed "$T/hold.log")
set -- $line
[ "$2" = 6 ] || fail "idle sockets not all closed: $line"
awk -v m="$4" 'BEGIN { exit !(m >= 5.0 && m <= 15.0) }' || fail "idle sockets closed after $4 s (handshake timeout 6 s)"
grep -q "handshake timed out" "$T/server.log" || fail "handshake timeout not logged"
pass "idle sockets and the partial PDU closed after the handshake timeout ($4 s)"

# ---- more idle sockets than the handshake cap (32) ----------------------------------------
$PY - "$DICOM_PORT" > "$T/hold2.log" 2>&1 <<'PY' &
import socket, sys, time
port = int(sys.argv[1])
socks = [socket.create_connection(("127.0.0.1", port)) for _ in range(60)]
print("held", flush=True)
time.sleep(30)   # killed once echoscu has answered
PY
HOLD=$!
for _ in $(seq 1 100); do grep -q held "$T/hold2.log" && break; sleep 0.05; done
check_fast "with 60 idle sockets open"
kill "$HOLD" 2>/dev/null || true
wait "$HOLD" 2>/dev/null || true
grep -q "handshakes in progress" "$T/server.log" || fail "eviction of the oldest handshake not logged"
pass "60 idle sockets (cap 32): the oldest are cut, echoscu answers in $best ms"

# ---- endless C-STORE fragments past MaximumUploadSize (4 MB) ------------------------------
rss0=$(rss_kb)
$PY - "$MP_SRC/tests/tools" "$DICOM_PORT" <<'PY' || fail "endless fragments"
import sys, time, socket
sys.path.insert(0, sys.argv[1]); import dicom_raw as R
a = R.Assoc(int(sys.argv[2]))
assert a.result == 2, a.result
a.store_begin("1.2.3.999.1")
chunk = b"\0" * 16000
sent, t0 = 0, time.time()
try:
    while sent < 64 << 20:          # the limit is 4 MB: we must be cut long before 64 MB
        a.fragment(chunk, last=False)
        sent += len(chunk)
    raise SystemExit("64 MB of fragments accepted without an abort")
except (BrokenPipeError, ConnectionResetError, OSError):
    pass
print("cut after %.1f MB, %.1f s" % (sent / 1048576, time.time() - t0))
assert sent < 16 << 20, sent
PY
rss1=$(rss_kb)
[ $((rss1 - rss0)) -lt $RSS_BOUND_KB ] || fail "RSS grew by $((rss1 - rss0)) kB on endless fragments"
for _ in $(seq 1 100); do grep -q "dataset larger than .* (MaximumUploadSize), association aborted" "$T/server.log" && break; sleep 0.05; done
grep -q "dataset larger than .* (MaximumUploadSize), association aborted" "$T/server.log" || fail "no log line for the size limit"
check_fast "after endless fragments"
pass "endless C-STORE fragments: aborted past MaximumUploadSize, RSS +$((rss1 - rss0)) kB, echo in $best ms"

# ---- endless command fragments (an element announcing 2 GB, then zeros) -------------------
$PY - "$MP_SRC/tests/tools" "$DICOM_PORT" <<'PY' || fail "endless command"
import sys, struct
sys.path.insert(0, sys.argv[1]); import dicom_raw as R
a = R.Assoc(int(sys.argv[2]))
assert a.result == 2, a.result
sent, first = 0, True
try:
    while sent < 64 << 20:
        d = b"\0" * 16000
        if first:
            d = struct.pack("<HHI", 0, 0x1000, 0x7FFFFF00) + d[8:]
            first = False
        pdv = struct.pack(">IBB", len(d) + 2, 1, 1) + d   # command PDV, not the last
        a.s.sendall(struct.pack(">BBI", 4, 0, len(pdv)) + pdv)
        sent += len(d)
    raise SystemExit("64 MB of command fragments accepted without an abort")
except OSError:
    pass
print("command cut after %.1f MB" % (sent / 1048576))
PY
rss1=$(rss_kb)
[ $((rss1 - rss0)) -lt $RSS_BOUND_KB ] || fail "RSS grew by $((rss1 - rss0)) kB on endless command fragments"
# The peer sees the socket close when the meter trips, a moment before the association's thread
# logs why (slower under the sanitizers): wait for the line rather than race it.
for _ in $(seq 1 100); do grep -q "command set longer than .* association aborted" "$T/server.log" && break; sleep 0.05; done
grep -q "command set longer than .* association aborted" "$T/server.log" || fail "no log line for the command limit"
pass "endless command fragments: aborted, RSS +$((rss1 - rss0)) kB"

# ---- endless C-FIND / C-MOVE / C-GET identifiers (the identifier bound is 4 MB) ------------
for kind in find move get; do
  $PY - "$MP_SRC/tests/tools" "$DICOM_PORT" "$kind" <<'PY' || fail "endless $kind identifier"
import sys, time
sys.path.insert(0, sys.argv[1]); import dicom_raw as R
kind = sys.argv[3]
model = {"find": "1.2.840.10008.5.1.4.1.2.2.1", "move": "1.2.840.10008.5.1.4.1.2.2.2",
         "get": "1.2.840.10008.5.1.4.1.2.2.3"}[kind]
field = {"find": 0x0020, "move": 0x0021, "get": 0x0010}[kind]
a = R.Assoc(int(sys.argv[2]), contexts=[(1, model, [R.IMPLICIT_LE])], timeout=3)
assert a.result == 2, a.result
cmd = [(0x0002, model), (0x0100, field), (0x0110, 1)]
if kind == "move":
    cmd.append((0x0600, "DEST"))
cmd += [(0x0700, 0), (0x0800, 0x0000)]
a._pdata(1, R.command(cmd), True)
# an identifier whose one element announces 2 GB, then zeros, never the last fragment
import struct
chunk = struct.pack("<HHI", 0x0010, 0x0010, 0x7FFFFF00) + b"\0" * 15992
sent, t0 = 0, time.time()
try:
    while sent < 64 << 20:
        a.fragment(chunk if sent == 0 else b"\0" * 16000, last=False, pcid=1)
        sent += 16000
    raise SystemExit("64 MB of identifier accepted without an abort")
except OSError:
    pass
print("%s identifier cut after %.1f MB, %.1f s" % (kind, sent / 1048576, time.time() - t0))
assert sent < 16 << 20, sent
PY
done
rss1=$(rss_kb)
[ $((rss1 - rss0)) -lt $RSS_BOUND_KB ] || fail "RSS grew by $((rss1 - rss0)) kB on endless identifiers"
for _ in $(seq 1 100); do [ "$(grep -c "identifier from .* larger than .* association aborted" "$T/server.log")" -ge 3 ] && break; sleep 0.05; done
[ "$(grep -c "identifier from .* larger than .* association aborted" "$T/server.log")" -ge 3 ] || fail "no log line for the identifier limit"
check_fast "after endless identifiers"
findscu -S -aec ORTHANC -k QueryRetrieveLevel=STUDY -k StudyInstanceUID 127.0.0.1 "$DICOM_PORT" >"$T/find.log" 2>&1 || fail "C-FIND after endless identifiers: $(cat "$T/find.log")"
pass "endless C-FIND/C-MOVE/C-GET identifiers: aborted past 4 MB, RSS +$((rss1 - rss0)) kB, echo in $best ms"

# the A-ASSOCIATE-AC announces MaximumPduLength
$PY - "$MP_SRC/tests/tools" "$DICOM_PORT" <<'PY' || fail "announced PDU length"
import sys, struct
sys.path.insert(0, sys.argv[1]); import dicom_raw as R
a = R.Assoc(int(sys.argv[2]))
assert a.result == 2 and a.max_pdu == 16384, (a.result, a.max_pdu)
a.release()
PY

# ---- a P-DATA PDU longer than MaximumPduLength, and one of 4 GB ---------------------------
for len in 40000 4294967000; do
  $PY - "$MP_SRC/tests/tools" "$DICOM_PORT" "$len" <<'PY' || fail "oversized PDU $len"
import sys, time, struct
sys.path.insert(0, sys.argv[1]); import dicom_raw as R
a = R.Assoc(int(sys.argv[2]))
assert a.result == 2, a.result
n = int(sys.argv[3])
t0 = time.time()
a.s.sendall(struct.pack(">BBI", 4, 0, n) + b"\0" * 4096)
dt = a.wait_closed(15)
assert dt is not None, "PDU of %d bytes: association still open after 15 s" % n
assert dt < 3.0, "PDU of %d bytes: closed only after %.1f s (the idle timeout, not the check)" % (n, dt)
print("PDU of %d bytes: closed after %.2f s" % (n, dt))
PY
done
rss2=$(rss_kb)
[ $((rss2 - rss0)) -lt $RSS_BOUND_KB ] || fail "RSS grew by $((rss2 - rss0)) kB on oversized PDUs"
check_fast "after oversized PDUs"
[ "$(http GET /statistics | json 'j["CountInstances"]')" = 0 ] || fail "something was stored"
pass "PDU longer than MaximumPduLength and a 4 GB one: aborted, RSS +$((rss2 - rss0)) kB, echo in $best ms"

# ---- malformed A-ASSOCIATE-RQs: refused before DCMTK parses them --------------------------
$PY - "$MP_SRC/tests/tools" "$DICOM_PORT" <<'PY' || fail "malformed A-ASSOCIATE-RQ"
import socket, struct, sys, time
sys.path.insert(0, sys.argv[1]); import dicom_raw as R
port = int(sys.argv[2])
good = R.associate_rq("ORTHANC", "HOSTILE", [(1, R.VERIFICATION, [R.IMPLICIT_LE])])
body = good[6:]
def pdu(b): return struct.pack(">BBI", 1, 0, len(b)) + b
# 1: the transfer syntax sub-item claims 0x3011 bytes inside a presentation context of 25
pc = body.index(b"\x40\x00\x00")
cut = bytearray(body); cut[pc + 2] = 0x30
# 2: a role selection sub-item whose UID is 70 bytes (DCMTK copies it into 65)
uid = b"1" * 70
role = R._item(0x54, struct.pack(">H", len(uid)) + uid + b"\x01\x01")
ui = body.index(b"\x50\x00")
ui_body = body[ui + 4:] + role
longrole = body[:ui] + R._item(0x50, ui_body)
# 3: two stray bytes after the user information item
stray = body + b"\x52\x00"
for name, b in (("sub-item overrun", bytes(cut)), ("70-byte role UID", longrole), ("stray bytes", stray)):
    s = socket.create_connection(("127.0.0.1", port))
    s.settimeout(10)
    t0 = time.time()
    s.sendall(pdu(b))
    t, data = R.read_pdu(s)
    dt = time.time() - t0
    assert t == 7 and data[2:4] == b"\x02\x06", (name, t, data)
    assert dt < 3, (name, dt)
    s.close()
    print("%s: A-ABORT (source 2, reason 6) after %.2f s" % (name, dt))
PY
for _ in $(seq 1 100); do [ "$(grep -c "malformed A-ASSOCIATE-RQ" "$T/server.log")" -ge 3 ] && break; sleep 0.05; done
grep -q "malformed A-ASSOCIATE-RQ: presentation context sub-item 0x40 of 12305 bytes overruns" "$T/server.log" || fail "no log line naming the overrun: $(grep -i assoc "$T/server.log" | tail -3)"
grep -q "malformed A-ASSOCIATE-RQ: role selection sub-item: a UID of 70 bytes" "$T/server.log" || fail "no log line for the 70-byte role UID"
grep -q "malformed A-ASSOCIATE-RQ: 2 stray bytes after the items" "$T/server.log" || fail "no log line for stray bytes"
check_fast "after malformed A-ASSOCIATE-RQs"
pass "malformed A-ASSOCIATE-RQs: A-ABORT at once, a log line each, echo in $best ms"
