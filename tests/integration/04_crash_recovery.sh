#!/usr/bin/env bash
# kill -9 in the middle of 8 concurrent uploaders, then restart: every listed instance has its
# file with the uploaded bytes, no orphan or temp file remains, counts agree.
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
