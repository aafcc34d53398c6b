#!/usr/bin/env bash
# The housekeeper's interval and its metric, counted, not sampled once:
# - MemoryTrimmingInterval 2: over a 7 s window the trim counter grows by 3 or 4 (not 7:
#   a thread waking every second whatever the option says fails here);
# - the default (30 s): no trim at all during the first 5 s;
# - a trim's measured duration is above 0 (a metric stuck at 0 fails).
source "$(dirname "$0")/lib.sh"
metric() { http GET /tools/metrics-prometheus | awk -v n="$1" '$1 == n {print $2}'; }

write_config '"MemoryTrimmingInterval": 2'
start_server
sleep 0.3
a=$(metric minipacs_memory_trims_total)
sleep 7
b=$(metric minipacs_memory_trims_total)
echo "interval 2 s: trims $a -> $b over 7 s"
d=$((b - a))
[ "$d" -ge 3 ] && [ "$d" -le 4 ] || fail "expected 3 or 4 trims in 7 s with an interval of 2 s, got $d"
pass "interval 2 s: $d trims in 7 s"
dur=$(metric orthanc_memory_trimming_duration_ms)
echo "last trim took $dur ms"
$PY -c "import sys; sys.exit(0 if float('$dur') > 0 else 1)" || fail "trim duration is $dur"
pass "trim duration measured: $dur ms"
stop_server

write_config
start_server
sleep 5
c=$(metric minipacs_memory_trims_total)
[ "$c" = 0 ] || fail "default interval: $c trims in the first 5 s"
[ "$(metric minipacs_memory_trimming_enabled)" = 1 ] || fail "trimming not enabled by default"
pass "default interval (30 s): no trim in the first 5 s"
