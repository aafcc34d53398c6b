#!/usr/bin/env bash
# MaximumAssociations (a third association over a limit of 2 is rejected: transient, local
# limit exceeded, and logged; a rejected peer that keeps its socket open does not stall the
# next association), DicomScpTimeout (idle associations aborted after ~2 s, slots
# freed), and SIGTERM during a transfer: prompt exit, index consistent with the files.
source "$(dirname "$0")/lib.sh"
write_config '"MaximumAssociations": 2, "DicomScpTimeout": 2'
start_server
$PY - "$MP_SRC/tests/tools" "$DICOM_PORT" <<'PY' || fail "limit/timeout"
import sys, time
sys.path.insert(0, sys.argv[1]); import dicom_raw as R
port = int(sys.argv[2])
t0 = time.time()
a, b = R.Assoc(port, calling="HOLD1"), R.Assoc(port, calling="HOLD2")
assert a.result == 2 and b.result == 2, (a.result, b.result)
assert a.echo() == 0
c = R.Assoc(port, calling="THIRD")
assert c.result == 3 and c.reject == (2, 3, 2), ("third association", c.result, c.reject)
# the rejected peer keeps its socket open: the listener must not wait for it to close
t1 = time.time()
d = R.Assoc(port, calling="FOURTH")
assert d.result == 3, ("fourth association", d.result)
assert time.time() - t1 < 1.0, "listener stalled %.1f s behind a rejected peer" % (time.time() - t1)
c.close()
d.close()
# both held associations go idle: the server aborts them after DicomScpTimeout (2 s)
da, db = a.wait_closed(10), b.wait_closed(10)
elapsed = time.time() - t0
assert da is not None and db is not None, "idle associations not closed"
assert 1.5 <= elapsed <= 4.5, "closed after %.1f s" % elapsed
print("third rejected; idle associations closed after %.1f s" % elapsed)
PY
ok=0
for _ in $(seq 1 20); do echoscu -aec ORTHANC 127.0.0.1 "$DICOM_PORT" 2>/dev/null && { ok=1; break; }; sleep 0.1; done
[ $ok = 1 ] || fail "slots not freed after the timeout"
grep "rejected association" "$T/server.log" | grep THIRD | grep -q "MaximumAssociations" || fail "limit rejection not logged"
grep -q "HOLD1 -> ORTHANC from 127.0.0.1 aborted: idle timeout" "$T/server.log" || fail "timeout not logged"
pass "MaximumAssociations and DicomScpTimeout"

# SIGTERM while storescu sends: the server stops within the bound (5 s grace), exits 0, and
# after a restart the index and the storage area agree.
$PY "$MP_SRC/tests/tools/gen_study.py" "$T/st" 400 --size 64 --seed 3 >/dev/null
storescu -aec ORTHANC +sd 127.0.0.1 "$DICOM_PORT" "$T/st" > "$T/sc.log" 2>&1 &
SC=$!
for _ in $(seq 1 100); do [ "$(http GET /statistics | json 'j["CountInstances"]')" -gt 20 ] && break; sleep 0.02; done
t0=$(date +%s%N)
kill -TERM "$SERVER_PID"
wait "$SERVER_PID"; rc=$?
SERVER_PID=""
ms=$(( ($(date +%s%N) - t0) / 1000000 ))
wait "$SC" || true
[ $rc = 0 ] || fail "exit code $rc"
[ $ms -lt 7000 ] || fail "shutdown took $ms ms"
grep -q "listener stopped" "$T/server.log" || fail "no listener summary"
start_server
n=$(http GET /statistics | json 'j["CountInstances"]')
files=$(find "$T/db" -type f ! -name 'index.sqlite*' | wc -l)
[ "$n" = "$files" ] || fail "index has $n instances, disk $files files"
echoscu -aec ORTHANC 127.0.0.1 "$DICOM_PORT" || fail "echo after restart"
pass "SIGTERM during C-STORE: stopped in $ms ms, $n instances consistent"
