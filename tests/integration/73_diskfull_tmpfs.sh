#!/usr/bin/env bash
# Disk full: storage area and index on an 8 MB tmpfs, filled by parallel REST uploads and a
# C-STORE. Every refusal is a clean 507 (REST) or 0xA700 (C-STORE); nothing half-stored (no
# temp file, no orphan file, no row without its file); reads keep working while full; once
# the filesystem grows, ingest resumes; a restart finds the same consistent store.
# Needs root (mount); CI runs as root.
source "$(dirname "$0")/lib.sh"
[ "$(id -u)" = 0 ] || fail "needs root to mount a tmpfs"
FS="$T/fs"; mkdir -p "$FS"
mount -t tmpfs -o size=8m tmpfs "$FS" || fail "cannot mount a tmpfs"
umount_fs() { stop_server; umount "$FS" 2>/dev/null || umount -l "$FS" 2>/dev/null || true; }
trap 'rc=$?; umount_fs; (exit $rc); on_exit' EXIT

$PY "$MP_SRC/tests/tools/gen_study.py" "$T/src" 90 --series 3 --size 256 --seed 5 >/dev/null  # ~130 KB each, ~12 MB
( cd "$T/src" && md5sum *.dcm | awk '{print $1}' | sort > "$T/src.md5" )
cat > "$T/Orthanc.json" <<JSON
{ "Name": "it", "StorageDirectory": "$FS/db", "IndexDirectory": "$FS/db", "HttpPort": $HTTP_PORT,
  "DicomPort": $DICOM_PORT, "SyncStorageArea": true, "LogLevel": "info" }
JSON
start_server

check_store() { # consistent store: rows == files, no temp file, every file readable and a source file
  local n files tmps
  n=$(http GET /instances | json 'len(j)')
  files=$(find "$FS/db" -type f ! -name 'index.sqlite*' ! -name '*.tmp' | wc -l)
  tmps=$(find "$FS/db" -name '*.tmp' | wc -l)
  [ "$tmps" = 0 ] || fail "$1: $tmps temp files"
  [ "$n" = "$files" ] || fail "$1: $n instances, $files files"
  for id in $(http GET /instances | json '" ".join(j)'); do
    curl -sf "$URL/instances/$id/file" | md5sum | awk '{print $1}'
  done | sort > "$T/back.md5"
  [ "$(comm -23 "$T/back.md5" "$T/src.md5" | wc -l)" = 0 ] || fail "$1: a stored file differs from every upload"
  [ "$(http GET /statistics | json 'j["CountInstances"]')" = "$n" ] || fail "$1: statistics"
  echo "$n"
}

files=( "$T"/src/*.dcm )
: > "$T/codes"
pids=()
for k in 0 1 2 3; do
  ( for ((i = k; i < ${#files[@]}; i += 4)); do
      curl -s -o "$T/b$k" -w '%{http_code}\n' -X POST --data-binary @"${files[$i]}" "$URL/instances" >> "$T/codes.$k" || echo 000 >> "$T/codes.$k"
    done ) &
  pids+=($!)
done
wait "${pids[@]}"   # not the server
cat "$T"/codes.* > "$T/codes"
ok=$(grep -c '^200$' "$T/codes" || true); full=$(grep -c '^507$' "$T/codes" || true)
other=$(grep -vc '^200$\|^507$' "$T/codes" || true)
echo "uploads: $ok stored, $full refused with 507, $other other"
[ "$other" = 0 ] || fail "unexpected statuses: $(sort "$T/codes" | uniq -c | tr '\n' ' ')"
[ "$full" -gt 0 ] || fail "the filesystem never filled up"
[ "$ok" -gt 10 ] || fail "too few stored before full: $ok"
kill -0 "$SERVER_PID" || fail "server died"
n1=$(check_store "while full")
pass "full disk: $ok stored, $full refused with 507, store consistent ($n1 instances), reads served"

# C-STORE while full: 0xA700
storescu -v -aec ORTHANC 127.0.0.1 "$DICOM_PORT" "${files[-1]}" "${files[-2]}" >"$T/sc.log" 2>&1 || true
if grep -q 'Store Response (Success)' "$T/sc.log"; then
  echo "note: a C-STORE still fit"
else
  grep -qi 'OutOfResources\|a700' "$T/sc.log" || fail "C-STORE on a full disk: $(tail -4 "$T/sc.log")"
fi
check_store "after C-STORE" >/dev/null
pass "C-STORE on a full disk: 0xA700"

# space returns: ingest resumes
mount -o remount,size=32m "$FS" || fail "cannot grow the tmpfs"
left=0
for f in "${files[@]}"; do
  c=$(curl -s -o /dev/null -w '%{http_code}' -X POST --data-binary @"$f" "$URL/instances")
  [ "$c" = 200 ] || fail "after growing the filesystem: $c"
done
n2=$(check_store "after space returned")
[ "$n2" = "${#files[@]}" ] || fail "expected all ${#files[@]} instances, got $n2"
pass "ingest resumes when space returns: $n2 instances"

# restart: same consistent store, deletes work
stop_server
start_server
[ "$(check_store "after restart")" = "$n2" ] || fail "restart changed the store"
P=$(http GET /patients | json 'j[0]')
http DELETE /patients/$P >/dev/null; [ "$(status)" = 200 ] || fail "delete after restart"
[ "$(check_store "after delete")" = 0 ] || fail "delete left instances"
pass "restart and delete on the recovered store"
