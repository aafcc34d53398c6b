#!/usr/bin/env bash
# Parallel C-MOVE (a destination's "ParallelAssociations", ours): the key is checked (config and
# PUT /modalities: 1..8, else an error), shown only when not 1 (Orthanc's shape otherwise) and
# kept across a restart. To storescp --fork with ParallelAssociations 3: every instance of a
# 30-instance study arrives byte-identical over more than one association. To a plain storescp
# (one association at a time) the move still completes in well under DicomScuTimeout: the
# C-MOVE thread releases its association before waiting for the extra ones, which wait in the
# receiver's backlog (joining first would cost the whole timeout). Extra associations the
# receiver refuses are logged, not failures. A C-CANCEL and a receiver
# killed mid-move end the move with Cancel / 0xA702 and leave no thread or descriptor behind.
source "$(dirname "$0")/lib.sh"
RAW="$MP_SRC/tests/tools/dicom_raw.py"
PAR_PORT=$(free_port)
write_config "\"DicomModalities\": {
    \"par\": {\"AET\": \"PAR\", \"Host\": \"127.0.0.1\", \"Port\": $PAR_PORT, \"ParallelAssociations\": 3},
    \"mover\": [\"MOVESCU\", \"127.0.0.1\", 1] },
  \"DicomScuTimeout\": 10"
RECV_PID=""; PROXY_PID=""
trap 'rc=$?; set +e; [ -n "$RECV_PID" ] && kill -KILL -- -$RECV_PID 2>/dev/null; [ -n "$PROXY_PID" ] && kill $PROXY_PID 2>/dev/null
  (exit $rc); on_exit' EXIT
# storescp in its own process group (its --fork children die with it)
start_recv() { # log, storescp options...
  local log=$1; shift
  mkdir -p "$T/recv"; rm -f "$T"/recv/*
  setsid storescp -aet PAR -od "$T/recv" "$@" "$PAR_PORT" >"$log" 2>&1 &
  RECV_PID=$!
  for _ in $(seq 1 100); do echoscu -aec PAR 127.0.0.1 "$PAR_PORT" 2>/dev/null && return 0; sleep 0.05; done
  fail "storescp did not start"
}
stop_recv() {
  if [ -n "$RECV_PID" ]; then kill -KILL -- -$RECV_PID 2>/dev/null || true; wait $RECV_PID 2>/dev/null || true; fi
  RECV_PID=""
}

# ---- configuration --------------------------------------------------------------------------
echo '{"DicomModalities": {"x": {"AET": "X", "Host": "h", "Port": 104, "ParallelAssociations": 9}}}' > "$T/bad.json"
"$MINIPACS_BIN" "$T/bad.json" >"$T/bad.log" 2>&1 && fail "ParallelAssociations 9 accepted in the configuration"
grep -q 'ParallelAssociations must be an integer from 1 to 8' "$T/bad.log" || fail "config error: $(tail -2 "$T/bad.log")"
start_server
[ "$(http GET /modalities/par/configuration | json 'j.get("ParallelAssociations")')" = 3 ] || fail "par: $(cat "$T/body")"
[ "$(http GET '/modalities?expand' | json '"ParallelAssociations" in j["mover"]')" = False ] ||
  fail "ParallelAssociations shown for a default modality: $(cat "$T/body")"
for v in 0 9 2.5 '"3"' true; do
  http PUT /modalities/x -d "{\"AET\": \"X\", \"Host\": \"h\", \"Port\": 104, \"ParallelAssociations\": $v}" >/dev/null
  [ "$(status)" = 400 ] || fail "PUT ParallelAssociations $v: HTTP $(status)"
  json 'j["HttpStatus"]' < "$T/body" | grep -qx 400 || fail "PUT $v: not an error object: $(cat "$T/body")"
done
http PUT /modalities/x -d '{"AET": "X", "Host": "h", "Port": 104, "ParallelAssociations": 4}' >/dev/null
[ "$(status)" = 200 ] || fail "PUT ParallelAssociations 4: HTTP $(status)"
http PUT /modalities/y -d '{"AET": "Y", "Host": "h", "Port": 104, "ParallelAssociations": 1}' >/dev/null
stop_server; start_server
[ "$(http GET /modalities/x/configuration | json 'j.get("ParallelAssociations")')" = 4 ] || fail "x after restart: $(cat "$T/body")"
[ "$(http GET /modalities/y/configuration | json '"ParallelAssociations" in j')" = False ] || fail "y: $(cat "$T/body")"
pass "ParallelAssociations: 1..8 checked (config, PUT 400), shown only when not 1, kept across a restart"

# ---- the study ------------------------------------------------------------------------------
$PY "$MP_SRC/tests/tools/gen_study.py" "$T/study" 30 --series 3 --size 64 --seed 5 >/dev/null
storescu -aec ORTHANC +sd 127.0.0.1 "$DICOM_PORT" "$T/study" || fail "storescu"
STUDY=$($PY -c "import pydicom,glob; print(pydicom.dcmread(sorted(glob.glob('$T/study/*.dcm'))[0]).StudyInstanceUID)")
for id in $(http GET /instances | json '" ".join(j)'); do
  curl -sf "$URL/instances/$id/file" -o "$T/one.dcm"; $PY "$RAW" dsbytes "$T/one.dcm"
done | sort > "$T/want"
[ "$(wc -l < "$T/want")" = 30 ] || fail "30 instances expected"
move() { # log -> movescu's exit status
  movescu -d -S -aet MOVESCU -aec ORTHANC -aem PAR -k QueryRetrieveLevel=STUDY -k "StudyInstanceUID=$STUDY" \
    "${@:2}" 127.0.0.1 "$DICOM_PORT" >"$1" 2>&1
}
received() { for f in "$T"/recv/*; do $PY "$RAW" dsbytes "$f"; done | sort; }
pid=$SERVER_PID
threads0=$(ls /proc/$pid/task | wc -l); fds0=$(ls /proc/$pid/fd | wc -l)
no_leftovers() { # what
  for _ in $(seq 1 40); do
    [ "$(ls /proc/$pid/task | wc -l)" -le "$threads0" ] && [ "$(ls /proc/$pid/fd | wc -l)" -le "$fds0" ] && return 0
    sleep 0.25
  done
  fail "$1: threads $(ls /proc/$pid/task | wc -l) (before $threads0), fds $(ls /proc/$pid/fd | wc -l) (before $fds0)"
}

# ---- to a forking receiver: several associations ------------------------------------------
start_recv "$T/fork.log" --fork -v
move "$T/move1.log" || fail "movescu: $(tail -5 "$T/move1.log")"
received > "$T/got"
[ "$(wc -l < "$T/got")" = 30 ] || fail "storescp --fork received $(wc -l < "$T/got") instances, not 30"
cmp -s "$T/want" "$T/got" || fail "moved datasets differ from the stored ones"
grep -q "C-MOVE for MOVESCU@127.0.0.1: 30 instance(s), 30 sent, 0 warning, 0 failed ([23] of 3 association(s))" \
  "$T/server.log" || fail "parallel move not logged: $(grep 'C-MOVE for' "$T/server.log" | tail -1)"
grep -q "Completed Suboperations *: 30" "$T/move1.log" || fail "final counts: $(tail -8 "$T/move1.log")"
grep -q "Failed Suboperations *: 0" "$T/move1.log" || fail "final counts: $(tail -8 "$T/move1.log")"
nassoc=$(grep -c "Association Received" "$T/fork.log")
[ "$nassoc" -ge 3 ] || fail "storescp saw $nassoc associations (echo + 1), not more than one for the move"
stop_recv
pass "ParallelAssociations 3 to storescp --fork: 30 instances byte-identical, $((nassoc - 1)) associations"

# ---- to a receiver that serves one association at a time -----------------------------------
start_recv "$T/plain.log" -v
t0=$(date +%s%N)
move "$T/move2.log" || fail "movescu (plain storescp): $(tail -5 "$T/move2.log")"
ms=$(( ($(date +%s%N) - t0) / 1000000 ))
[ "$(received | wc -l)" = 30 ] || fail "plain storescp received $(received | wc -l) instances, not 30"
cmp -s "$T/want" <(received) || fail "moved datasets differ (plain storescp)"
grep -q "Completed Suboperations *: 30" "$T/move2.log" || fail "final counts: $(tail -8 "$T/move2.log")"
[ "$ms" -lt 5000 ] || fail "move to a one-association receiver took $ms ms (DicomScuTimeout 10 s): joined before releasing?"
stop_recv
no_leftovers "after the moves"
pass "ParallelAssociations 3 to a plain storescp: all 30 received in $ms ms (< 5 s, timeout 10 s)"

# ---- extra associations refused: not a failure ------------------------------------------------
# A front on PAR_PORT passes the first connection to storescp and closes every later one at once.
REAL_PORT=$(free_port)
rm -f "$T"/recv/*
setsid storescp -aet PAR -od "$T/recv" "$REAL_PORT" >"$T/front.log" 2>&1 &
RECV_PID=$!
$PY - "$PAR_PORT" "$REAL_PORT" >"$T/proxy.log" 2>&1 <<'PY' &
import socket, sys, threading, time
ls = socket.socket(); ls.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
ls.bind(("127.0.0.1", int(sys.argv[1]))); ls.listen(8)
def pipe(a, b):
    try:
        while True:
            d = a.recv(65536)
            if not d: break
            b.sendall(d)
    except OSError: pass
    for s in (a, b):
        try: s.shutdown(socket.SHUT_RDWR)
        except OSError: pass
first = True
while True:
    c, _ = ls.accept()
    if not first:
        c.close(); print("refused", flush=True); continue
    first = False
    for _ in range(100):
        try: r = socket.create_connection(("127.0.0.1", int(sys.argv[2]))); break
        except OSError: time.sleep(0.05)
    threading.Thread(target=pipe, args=(c, r), daemon=True).start()
    threading.Thread(target=pipe, args=(r, c), daemon=True).start()
PY
PROXY_PID=$!
sleep 0.5
move "$T/move5.log" || fail "movescu (extra associations refused): $(tail -5 "$T/move5.log")"
kill $PROXY_PID 2>/dev/null || true; wait $PROXY_PID 2>/dev/null || true; PROXY_PID=""
grep -q "Completed Suboperations *: 30" "$T/move5.log" || fail "final counts: $(tail -8 "$T/move5.log")"
[ "$(received | wc -l)" = 30 ] || fail "received $(received | wc -l) instances, not 30"
grep -q "refused" "$T/proxy.log" || fail "no extra association was tried"
grep -q "C-MOVE for MOVESCU@127.0.0.1: 30 instance(s), 30 sent, 0 warning, 0 failed (1 of 3 association(s))" \
  "$T/server.log" || fail "refused associations: $(grep 'C-MOVE for' "$T/server.log" | tail -1)"
grep -q " I .*could not be opened, the others carry the work" "$T/server.log" || fail "refusal not logged at info"
stop_recv
no_leftovers "after refused associations"
pass "extra associations refused: logged at info, the move succeeds over the one left"

# ---- C-CANCEL during a parallel move --------------------------------------------------------
start_recv "$T/slow.log" --fork --sleep-during 1
t0=$(date +%s)
move "$T/move3.log" --cancel 2 || true
t1=$(date +%s)
grep -qi "Cancel" "$T/move3.log" || fail "cancel status: $(tail -8 "$T/move3.log")"
grep -q "C-MOVE for MOVESCU@127.0.0.1: 30 instance(s), .*, canceled (" "$T/server.log" || fail "cancel not logged"
done3=$(sed -n "/Final Move Response/,\$ s/.*Completed Suboperations *: //p" "$T/move3.log" | head -1)
[ -n "$done3" ] && [ "$done3" -lt 15 ] || fail "C-CANCEL did not stop the associations: $done3 of 30 sent"
[ $((t1 - t0)) -le 15 ] || fail "canceled move took $((t1 - t0)) s"
stop_recv
no_leftovers "after a canceled move"
pass "C-CANCEL stops every association (status Cancel, $done3 of 30 sent, $((t1 - t0)) s), no thread or fd left"

# ---- the receiver killed mid-move -----------------------------------------------------------
start_recv "$T/killed.log" --fork --sleep-during 1
move "$T/move4.log" &
MOVE_PID=$!
sleep 1.5
stop_recv
t0=$(date +%s)
wait $MOVE_PID || true
t1=$(date +%s)
grep -qi "OutOfResourcesSubOperations\|0xa702" "$T/move4.log" || fail "killed receiver: status $(tail -8 "$T/move4.log")"
grep -q "C-MOVE for MOVESCU@127.0.0.1: 30 instance(s), .*, stopped on a network error (" "$T/server.log" ||
  fail "network failure not logged"
$PY - "$T/move4.log" <<'PY' || fail "killed receiver: counts do not add up: $(tail -8 "$T/move4.log")"
import re, sys
t = open(sys.argv[1]).read().rsplit("Move Response", 1)[-1]
n = {k: int(v) for k, v in re.findall(r"(Completed|Failed|Warning) Suboperations *: (\d+)", t)}
assert n["Completed"] + n["Failed"] + n.get("Warning", 0) == 30 and n["Failed"] > 0, n
PY
[ $((t1 - t0)) -le 8 ] || fail "move went on $((t1 - t0)) s after the receiver died"
no_leftovers "after a killed receiver"
echoscu -aec ORTHANC 127.0.0.1 "$DICOM_PORT" || fail "server unusable after the failed move"
pass "receiver killed mid-move: 0xA702, counts add up, no thread or fd left"
