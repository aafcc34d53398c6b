#!/usr/bin/env bash
# 8 parallel storescu associations of 250 small generated instances each (one study per
# association): all 2,000 stored, exact counts in /statistics, no error or warning in the log.
source "$(dirname "$0")/lib.sh"
start_server
gens=()
for k in $(seq 1 8); do
  $PY "$MP_SRC/tests/tools/gen_study.py" "$T/s$k" 250 --series 5 --size 64 --seed $k >/dev/null &
  gens+=($!)
done
for p in "${gens[@]}"; do wait "$p" || fail "gen_study"; done
pids=()
for k in $(seq 1 8); do
  storescu -aec ORTHANC +sd 127.0.0.1 "$DICOM_PORT" "$T/s$k" > "$T/sc$k.log" 2>&1 &
  pids+=($!)
done
for k in $(seq 1 8); do wait "${pids[$((k-1))]}" || { cat "$T/sc$k.log"; fail "storescu $k"; }; done
st=$(http GET /statistics)
echo "$st" | json 'j["CountInstances"]==2000 and j["CountSeries"]==40 and j["CountStudies"]==8 and j["CountPatients"]==8' | grep -qx True || fail "statistics: $st"
[ "$(find "$T/db" -type f ! -name 'index.sqlite*' | wc -l)" = 2000 ] || fail "files on disk"
[ "$(grep -c 'released: 250 stored, 0 failed' "$T/server.log")" = 8 ] || fail "association summaries"
if grep -E '^[^ ]+ [EW] ' "$T/server.log"; then fail "errors or warnings in the log"; fi
pass "8 x 250 parallel C-STORE"
