#!/usr/bin/env bash
# 45_memory_returned: memory taken by a burst of concurrent requests is given back by the
# housekeeper's next trim. While the housekeeper trims, glibc's own trim at free() is held back
# and blocks above 1 MiB are mapped on their own (housekeeper.c), so this guarantee rests on the
# trim and on those settings: four concurrent /modify of 8 MB instances (each parsed whole),
# twice, and a four-client STOW-RS burst; two trim intervals later the resident set is back
# within 12 MB of what it was after a warm-up round. Red without the trim (+17 MB here) and
# with a 32 MiB mmap threshold (8 MB blocks fragment the arenas: +16-42 MB).
source "$(dirname "$0")/lib.sh"
[ "${MP_SANITIZER:-none}" = none ] || { pass "skipped: the sanitizer's allocator keeps its own memory"; exit 0; }
write_config '"MemoryTrimmingInterval": 2'
start_server
$PY "$MP_SRC/tests/tools/gen_study.py" "$T/big" 4 --size 2048 --noise 8 >/dev/null
$PY "$MP_SRC/tests/tools/gen_study.py" "$T/ct" 40 --noise 8 >/dev/null
ids=()
for f in "$T"/big/*.dcm; do ids+=("$(upload "$f" | json 'j["ID"]')"); done
[ "${#ids[@]}" = 4 ] || fail "uploads"
CT='Content-Type: multipart/related; type="application/dicom"; boundary=mpTEST42'
for i in 0 1 2 3; do
  $PY "$MP_SRC/tests/tools/multipart_body.py" "$T/body$i" ok $(ls "$T"/ct/*.dcm | sed -n "$((i * 10 + 1)),$((i * 10 + 10))p")
done
rss_kb() { awk '/^VmRSS/ {print $2}' "/proc/$SERVER_PID/status"; }
modify() {
  curl -s -o "$T/mod$1.dcm" -w '%{http_code}\n' -X POST -d '{"Replace": {"PatientName": "MEM^TEST"}, "Force": true}' \
    "$URL/instances/${ids[$1]}/modify"
}
stow() { curl -s -o /dev/null -w '%{http_code}\n' -X POST -H "$CT" --data-binary @"$T/body$1" "$URL/dicom-web/studies"; }
burst() {  # burst FUNCTION: four at once, each answered 200
  local pids="" i
  for i in 0 1 2 3; do "$1" "$i" > "$T/code$i" & pids="$pids $!"; done
  wait $pids
  for i in 0 1 2 3; do [ "$(cat "$T/code$i")" = 200 ] || fail "$1 $i: $(cat "$T/code$i")"; done
}
burst modify  # warm-up: libraries, caches, arenas
sleep 5       # two trims
warm=$(rss_kb)
burst modify; burst modify; burst stow
burst_rss=$(rss_kb)
sleep 5       # two trims
after=$(rss_kb)
echo "RSS: warm ${warm} kB, after the bursts ${burst_rss} kB, two trims later ${after} kB"
[ "$(curl -s "$URL/statistics" | json 'j["CountInstances"]')" = 44 ] || fail "instances stored"
[ "$after" -le $((warm + 12288)) ] || fail "RSS did not come back: ${warm} kB -> ${after} kB"
pass "memory of the bursts given back by the trims (${warm} -> ${burst_rss} -> ${after} kB)"
