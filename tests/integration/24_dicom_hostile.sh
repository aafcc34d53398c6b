#!/usr/bin/env bash
# Hostile DICOM peers cannot stall or exhaust the listener (issue 18):
# - idle sockets (connected, nothing sent) and a partial A-ASSOCIATE-RQ do not hold up other
#   associations: echoscu answers within 1 s while they are open; they are closed after the
#   handshake timeout (min(DicomScpTimeout, 10) s);
# - more idle sockets than the handshake cap: the oldest are cut, echoscu still answers;
# - C-STORE data past MaximumUploadSize (endless fragments, never the last one): the
#   association is aborted with a clear log line, and the server's memory does not follow;
# - a P-DATA PDU whose length exceeds MaximumPduLength (and one of 4 GB): aborted at once,
#   nothing allocated for it.
# Each time the server still answers C-ECHO and REST afterwards.
source "$(dirname "$0")/lib.sh"
write_config '"DicomScpTimeout": 3, "MaximumUploadSize": 4, "MaximumPduLength": 16384'
start_server

rss_kb() { awk '/^VmRSS/ {print $2}' "/proc/$SERVER_PID/status"; }

# echo_time: seconds taken by one echoscu (fails the scenario when it fails)
echo_time() {
  local t0 t1
  t0=$(date +%s%N)
  echoscu -to 20 -ta 20 -aec ORTHANC 127.0.0.1 "$DICOM_PORT" || fail "echoscu failed $*"
  t1=$(date +%s%N)
  echo $(( (t1 - t0) / 1000000 ))
}
# best of three echoscu runs under 1 s (each under 5 s): robust on a loaded machine, while a
# listener stalled by the idle sockets takes the whole handshake timeout
echo_fast() {
  local best=999999 ms
  for _ in 1 2 3; do
    ms=$(echo_time "$@")
    [ "$ms" -lt 5000 ] || fail "echoscu took $ms ms $*"
    [ "$ms" -lt "$best" ] && best=$ms
  done
  [ "$best" -lt 1000 ] || fail "echoscu took $best ms at best $*"
  echo "$best"
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
best=$(echo_fast "with 5 idle sockets and a partial PDU open")
pass "echoscu answers in $best ms while 5 idle sockets and a partial PDU are open"
wait "$HOLD" || fail "idle holder: $(cat "$T/hold.log")"
line=$(grep closed "$T/hold.log")
set -- $line
[ "$2" = 6 ] || fail "idle sockets not all closed: $line"
awk -v m="$4" 'BEGIN { exit !(m >= 2.0 && m <= 12.0) }' || fail "idle sockets closed after $4 s (handshake timeout 3 s)"
grep -q "handshake timed out" "$T/server.log" || fail "handshake timeout not logged"
pass "idle sockets and the partial PDU closed after the handshake timeout ($4 s)"

# ---- more idle sockets than the handshake cap (32) ----------------------------------------
$PY - "$DICOM_PORT" > "$T/hold2.log" 2>&1 <<'PY' &
import socket, sys, time
port = int(sys.argv[1])
socks = [socket.create_connection(("127.0.0.1", port)) for _ in range(60)]
print("held", flush=True)
time.sleep(4)
PY
HOLD=$!
for _ in $(seq 1 100); do grep -q held "$T/hold2.log" && break; sleep 0.05; done
best=$(echo_fast "with 60 idle sockets open")
wait "$HOLD" || true
grep -q "handshakes in progress" "$T/server.log" || fail "eviction of the oldest handshake not logged"
pass "60 idle sockets (cap 32): the oldest are cut, echoscu answers in $best ms"
