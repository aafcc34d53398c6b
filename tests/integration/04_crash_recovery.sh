#!/usr/bin/env bash
# kill -9 in the middle of 8 concurrent uploaders, then restart: every listed instance has its
# file with the uploaded bytes, no orphan or temp file remains, counts agree. Then the same with
# 4 concurrent STOW-RS requests of 100 instances each, killed as soon as the first instance
# is indexed (in the middle of a batch): no half-written instance, no spool file left.
source "$(dirname "$0")/lib.sh"
$PY "$MP_SRC/tests/tools/gen_study.py" "$T/src" 400 --series 4 --size 256 --seed 7
( cd "$T/src" && md5sum *.dcm | awk '{print $1}' | sort > "$T/src.md5" )
write_config '"SyncStorageArea": true'
start_server
files=( "$T"/src/*.dcm )
for k in 0 1 2 3 4 5 6 7; do
  ( for ((i = k; i < ${#files[@]}; i += 8)); do
      curl -s -o /dev/null -X POST --data-binary @"${files[$i]}" "$URL/instances" || true
    done ) &
done
sleep 1.2
kill9_server
wait 2>/dev/null || true
stored_before=$(find "$T/db" -type f ! -name 'index.sqlite*' | wc -l)
echo "files on disk at the crash: $stored_before"
start_server
n=$(http GET /instances | json 'len(j)')
files=$(find "$T/db" -type f ! -name 'index.sqlite*' | wc -l)
tmps=$(find "$T/db" -name '*.tmp' | wc -l)
echo "after restart: $n instances, $files files, $tmps temp files"
[ "$tmps" = 0 ] || fail "temp files left"
[ "$files" = "$n" ] || fail "files ($files) != instances ($n): orphans or missing files"
[ "$n" -gt 0 ] || fail "nothing was stored before the kill (test too fast?)"
for id in $(http GET /instances | json '" ".join(j)'); do
  curl -sf "$URL/instances/$id/file" | md5sum | awk '{print $1}'
done | sort > "$T/back.md5"
missing=$(comm -23 "$T/back.md5" "$T/src.md5" | wc -l)
[ "$missing" = 0 ] || fail "$missing stored files do not match any uploaded file"
[ "$(http GET /statistics | json 'j["CountInstances"]')" = "$n" ] || fail "statistics disagree"
# the store still works after recovery
r=$(upload "$T/src/img00000.dcm"); echo "$r" | json 'j["Status"]' | grep -Eqx 'Success|AlreadyStored' || fail "upload after restart"
pass "crash recovery: $n instances consistent"

# --- STOW-RS: kill -9 in the middle of batches (rest/h_stow.c spools, syncs, then ingests) ---
stop_server
reset_store
write_config '"SyncStorageArea": true'
start_server
files=( "$T"/src/*.dcm )
for k in 0 1 2 3; do
  $PY "$MP_SRC/tests/tools/multipart_body.py" "$T/stow$k.bin" ok "${files[@]:$((k * 100)):100}"
done
for k in 0 1 2 3; do
  curl -s -o /dev/null -X POST --data-binary @"$T/stow$k.bin" \
    -H 'Content-Type: multipart/related; type="application/dicom"; boundary=mpTEST42' "$URL/dicom-web/studies" &
done
for _ in $(seq 1 2000); do  # kill at the first indexed instance: the batches are mid-ingest
  c=$(curl -s "$URL/statistics" | $PY -c 'import json,sys; print(json.load(sys.stdin)["CountInstances"])' 2>/dev/null || echo 0)
  [ "${c:-0}" -gt 0 ] && break
  sleep 0.01
done
kill9_server
wait 2>/dev/null || true
echo "STOW-RS: $c instance(s) indexed when killed"
start_server
n=$(http GET /instances | json 'len(j)')
files_n=$(find "$T/db" -type f ! -name 'index.sqlite*' | wc -l)
spools=$(find "$T/db" -name '*.spool' -o -name '*.tmp' | wc -l)
echo "STOW-RS after restart: $n instances, $files_n files, $spools spool/temp files"
[ "$spools" = 0 ] || fail "STOW-RS: spool or temp files left after the crash"
[ "$files_n" = "$n" ] || fail "STOW-RS: files ($files_n) != instances ($n): orphans or missing files"
[ "$n" -gt 0 ] && [ "$n" -lt 400 ] || fail "STOW-RS: $n instances: the kill did not land in the middle of the batches"
for id in $(http GET /instances | json '" ".join(j)'); do
  curl -sf "$URL/instances/$id/file" | md5sum | awk '{print $1}'
done | sort > "$T/back.md5"
missing=$(comm -23 "$T/back.md5" "$T/src.md5" | wc -l)
[ "$missing" = 0 ] || fail "STOW-RS: $missing stored files do not match any uploaded file"
# the interrupted batches can be sent again: what was stored is answered as stored, the rest stored
code=$(curl -s -o "$T/again.json" -w '%{http_code}' -X POST --data-binary @"$T/stow0.bin" \
  -H 'Content-Type: multipart/related; type="application/dicom"; boundary=mpTEST42' "$URL/dicom-web/studies")
[ "$code" = 200 ] || fail "STOW-RS again after the crash: $code $(head -c 300 "$T/again.json")"
pass "STOW-RS crash mid-batch: $n instances consistent, no spool left"
