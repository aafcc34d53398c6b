#!/usr/bin/env bash
# A hostile SCP cannot corrupt or grow our SCU (C-ECHO/C-STORE/C-FIND/C-MOVE SCU through
# /tools/dicom-echo, /modalities): a malformed A-ASSOCIATE-AC is checked before DCMTK parses it
# (DCMTK 3.6.7 leaks its lists on a malformed one and copies role-selection UIDs unchecked),
# answered with an A-ABORT (service provider, invalid PDU parameter value), and the request
# fails with Orthanc's JSON error and a message naming the fault. Answers tried: an accepted
# presentation context whose transfer syntax sub-item overruns it, a role selection with a
# 70-byte UID, a user identity answer whose length disagrees with its field. A well-formed
# answer from a real SCP (storescp) still works afterwards.
source "$(dirname "$0")/lib.sh"
EVIL=$(free_port); SCP=$(free_port)
start_server
storescp "$SCP" >"$T/storescp.log" 2>&1 &
SCP_PID=$!
trap 'rc=$?; set +e; kill $SCP_PID 2>/dev/null; wait $SCP_PID 2>/dev/null; (exit $rc); on_exit' EXIT

cat > "$T/evil.py" <<'PY'
import socket, struct, sys
sys.path.insert(0, sys.argv[1]); import dicom_raw as R
port, kind, ready = int(sys.argv[2]), sys.argv[3], sys.argv[4]
L = socket.socket(); L.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
L.bind(("127.0.0.1", port)); L.listen(1); L.settimeout(30)
open(ready, "w").close()
s, _ = L.accept(); s.settimeout(10)
t, rq = R.read_pdu(s)
assert t == 1, t
pc = struct.pack(">BBBB", 1, 0, 0, 0) + R._item(0x40, R.IMPLICIT_LE.encode())
if kind == "overrun":
    pc = pc[:6] + b"\x30" + pc[7:]  # the transfer syntax sub-item claims 0x3011 bytes
ui = R._item(0x51, struct.pack(">I", 16384)) + R._item(0x52, b"1.2.3.4")
if kind == "role":
    uid = b"1" * 70
    ui += R._item(0x54, struct.pack(">H", len(uid)) + uid + b"\x01\x01")
if kind == "identity":
    ui += R._item(0x59, struct.pack(">H", 40) + b"token")
body = rq[:68] + R._item(0x10, b"1.2.840.10008.3.1.1.1") + R._item(0x21, pc) + R._item(0x50, ui)
s.sendall(struct.pack(">BBI", 2, 0, len(body)) + body)
t, data = R.read_pdu(s)
print("answer %d %s" % (t, data.hex()))
PY

declare -A WHY=(
  [overrun]="presentation context sub-item 0x40 of 12305 bytes overruns its item"
  [role]="role selection sub-item: a UID of 70 bytes"
  [identity]="user identity answer sub-item 0x59 of 7 bytes disagrees with its field"
)
for kind in overrun role identity; do
  rm -f "$T/ready"
  $PY "$T/evil.py" "$MP_SRC/tests/tools" "$EVIL" "$kind" "$T/ready" > "$T/evil.log" 2>&1 &
  EPID=$!
  for _ in $(seq 1 100); do [ -e "$T/ready" ] && break; sleep 0.05; done
  http POST /tools/dicom-echo -d "{\"AET\": \"EVIL\", \"Host\": \"127.0.0.1\", \"Port\": $EVIL}" >/dev/null
  [ "$(status)" = 500 ] && [ "$(json 'j["OrthancError"]' < "$T/body")" = "Error in the network protocol" ] \
    || fail "$kind: echo to a hostile SCP answered $(status) $(cat "$T/body")"
  wait $EPID || fail "$kind: the fake SCP: $(cat "$T/evil.log")"
  grep -qx "answer 7 00000206" "$T/evil.log" || fail "$kind: no A-ABORT (provider, invalid parameter value): $(cat "$T/evil.log")"
  grep -qF "malformed A-ASSOCIATE-AC from EVIL@127.0.0.1:$EVIL: ${WHY[$kind]}" "$T/server.log" \
    || fail "$kind: no message naming the fault: $(grep -i 'A-ASSOCIATE' "$T/server.log" | tail -2)"
done
pass "malformed A-ASSOCIATE-ACs (overrun, 70-byte role UID, user identity): A-ABORT, 500 JSON, fault named"

http POST /tools/dicom-echo -d "{\"AET\": \"STORESCP\", \"Host\": \"127.0.0.1\", \"Port\": $SCP}" >/dev/null
[ "$(status)" = 200 ] || fail "echo to storescp after the hostile SCPs: $(status) $(cat "$T/body")"
pass "a well-formed A-ASSOCIATE-AC (storescp) is accepted"
