#!/usr/bin/env bash
# The housekeeper through the real server: with MemoryTrimmingInterval 1 the trim metrics
# appear and the count grows; with 0 there is no "housekeeper" thread (threads are named);
# SIGTERM in the middle of a 30 s sleep stops the server within 1 s.
source "$(dirname "$0")/lib.sh"
threads() { for t in /proc/$SERVER_PID/task/*; do cat "$t/comm"; done 2>/dev/null | sort | uniq -c; }
metric() { http GET /tools/metrics-prometheus | awk -v n="$1" '$1 == n {print $2}'; }

write_config '"MemoryTrimmingInterval": 1'
start_server
threads | grep -q ' housekeeper$' || fail "no housekeeper thread: $(threads)"
a=$(metric minipacs_memory_trims_total)
sleep 3.2
b=$(metric minipacs_memory_trims_total)
echo "trims: $a -> $b"
[ "$b" -ge $((a + 2)) ] || fail "trim count did not grow ($a -> $b)"
[ "$(metric minipacs_memory_trimming_enabled)" = 1 ] || fail "enabled gauge"
[ -n "$(metric orthanc_memory_trimming_duration_ms)" ] || fail "duration missing"
[ -n "$(metric minipacs_memory_trim_released_bytes)" ] || fail "released missing"
pass "trimming every second"
stop_server

write_config '"MemoryTrimmingInterval": 0'
start_server
echo "threads:"; threads
threads | grep -q ' housekeeper$' && fail "housekeeper thread exists with interval 0"
threads | grep -q ' http$' || fail "threads are not named (no http): $(threads)"
[ "$(metric minipacs_memory_trims_total)" = 0 ] || fail "trims with interval 0"
[ "$(metric minipacs_memory_trimming_enabled)" = 0 ] || fail "enabled gauge with interval 0"
pass "no thread with interval 0"
stop_server

write_config '"MemoryTrimmingInterval": 30'
start_server
sleep 0.5   # the housekeeper is now inside its 30 s sleep
t0=$(date +%s%N)
kill -TERM "$SERVER_PID"
for _ in $(seq 1 200); do kill -0 "$SERVER_PID" 2>/dev/null || break; sleep 0.01; done
t1=$(date +%s%N)
kill -0 "$SERVER_PID" 2>/dev/null && fail "still running 2 s after SIGTERM"
wait "$SERVER_PID"; rc=$?
SERVER_PID=""
ms=$(( (t1 - t0) / 1000000 ))
echo "SIGTERM -> exit in $ms ms (rc $rc)"
[ "$rc" = 0 ] || fail "exit code $rc"
[ "$ms" -lt 1000 ] || fail "shutdown took $ms ms"
grep -q 'stopped' "$T/server.log" || fail "no orderly stop in the log"
pass "SIGTERM mid-sleep: $ms ms"
