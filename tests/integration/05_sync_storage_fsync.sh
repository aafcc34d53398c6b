#!/usr/bin/env bash
# SyncStorageArea is observed, not assumed: under strace, with true every stored file is
# fsync'ed while it still has its temporary name (before the rename makes it visible), one
# fsync per new file; with false no stored file is fsync'ed (the index may still sync its own
# files: only paths under the storage area's ab/cd folders count).
source "$(dirname "$0")/lib.sh"
command -v strace >/dev/null || fail "strace missing (scripts/deps.sh installs it)"
$PY "$MP_SRC/tests/tools/gen_study.py" "$T/in" 5 --size 32 >/dev/null

run_traced() {  # run_traced SYNC -> number of fsyncs of storage files, and renames checked
  local sync=$1
  reset_store; rm -f "$T/strace.out"
  write_config
  sed -i "s/\"SyncStorageArea\": false,/\"SyncStorageArea\": $sync,/" "$T/Orthanc.json"
  strace -f -y -qq -e trace=fsync,fdatasync,rename,renameat,renameat2 -o "$T/strace.out" \
    "$MINIPACS_BIN" "$T/Orthanc.json" >>"$T/server.log" 2>&1 &
  local tracer=$!
  for _ in $(seq 1 400); do curl -sf "$URL/system" >/dev/null 2>&1 && break; sleep 0.05; done
  SERVER_PID=$(pgrep -P "$tracer" | head -1)   # signals go to the server, not to strace
  [ -n "$SERVER_PID" ] || fail "no server under strace"
  for f in "$T"/in/*.dcm; do upload "$f" >/dev/null || fail "upload $f"; done
  stop_server
  wait "$tracer" 2>/dev/null || true
  # fsync(12</tmp/mp-it.X/db/ab/cd/<uuid>.tmp>) = 0
  { grep -E 'f(data)?sync\([0-9]+<[^>]*/db/[0-9a-f]{2}/[0-9a-f]{2}/[0-9a-f-]{36}\.tmp>\) = 0' "$T/strace.out" || true; } | wc -l
}

n=$(run_traced true)
echo "SyncStorageArea true: $n fsyncs of stored files for 5 uploads"
[ "$n" = 5 ] || { grep -E 'sync|rename' "$T/strace.out" | head -20; fail "expected 5 fsyncs, saw $n"; }
# each fsync comes before the rename of the same temporary file
$PY - "$T/strace.out" <<'PY' || fail "an fsync did not precede its file's rename"
import re, sys
seen = set(); ok = 0
for line in open(sys.argv[1]):
    m = re.search(r'f(?:data)?sync\(\d+<([^>]*\.tmp)>\) = 0', line)
    if m: seen.add(m.group(1)); continue
    m = re.search(r'rename(?:at2?)?\((?:[^,]*, )?"([^"]*/db/[0-9a-f]{2}/[0-9a-f]{2}/[0-9a-f-]{36}\.tmp)"', line)
    if m:
        if m.group(1) not in seen: sys.exit("renamed without fsync: " + m.group(1))
        ok += 1
if ok != 5: sys.exit("expected 5 renames of stored files, saw %d" % ok)
PY
pass "SyncStorageArea true: each stored file fsync'ed before its rename"

n=$(run_traced false)
echo "SyncStorageArea false: $n fsyncs of stored files"
[ "$n" = 0 ] || fail "SyncStorageArea false still fsyncs stored files ($n)"
pass "SyncStorageArea false: no fsync of stored files"

# STOW-RS (rest/h_stow.c): its parts are spooled under db/spool/ and renamed into place. With
# true, every stored part is fsync'ed before its rename, and all the parts of the request are
# fsync'ed before the first rename (the batch costs one journal commit, not one per instance);
# with false, no part is fsync'ed.
$PY "$MP_SRC/tests/tools/multipart_body.py" "$T/stow.bin" ok "$T"/in/*.dcm
run_stow() {  # run_stow SYNC: strace of one 5-part STOW-RS request in $T/strace.out
  reset_store; rm -f "$T/strace.out"
  write_config
  sed -i "s/\"SyncStorageArea\": false,/\"SyncStorageArea\": $1,/" "$T/Orthanc.json"
  strace -f -y -qq -e trace=fsync,fdatasync,rename,renameat,renameat2 -o "$T/strace.out" \
    "$MINIPACS_BIN" "$T/Orthanc.json" >>"$T/server.log" 2>&1 &
  local tracer=$!
  for _ in $(seq 1 400); do curl -sf "$URL/system" >/dev/null 2>&1 && break; sleep 0.05; done
  SERVER_PID=$(pgrep -P "$tracer" | head -1)
  [ -n "$SERVER_PID" ] || fail "no server under strace"
  code=$(curl -s -o "$T/stow.json" -w '%{http_code}' -X POST --data-binary @"$T/stow.bin" \
    -H 'Content-Type: multipart/related; type="application/dicom"; boundary=mpTEST42' "$URL/dicom-web/studies")
  [ "$code" = 200 ] || fail "STOW-RS of 5 files: $code $(head -c 300 "$T/stow.json")"
  stop_server
  wait "$tracer" 2>/dev/null || true
}
check_stow() {  # check_stow SYNC
  $PY - "$T/strace.out" "$1" <<'PY'
import re, sys
sync = sys.argv[2] == "true"
synced = set(); renamed = []
for line in open(sys.argv[1]):
    m = re.search(r'f(?:data)?sync\(\d+<([^>]*/spool/[0-9a-f-]{36}\.spool)>\) = 0', line)
    if m:
        if renamed: sys.exit("a part was fsync'ed after the first rename of the batch: " + m.group(1))
        synced.add(m.group(1)); continue
    m = re.search(r'rename(?:at2?)?\((?:[^,]*, )?"([^"]*/spool/[0-9a-f-]{36}\.spool)", (?:[^,]*, )?"[^"]*/db/[0-9a-f]{2}/[0-9a-f]{2}/[0-9a-f-]{36}"\) = 0', line)
    if m: renamed.append(m.group(1))
if len(renamed) != 5: sys.exit("expected 5 spool files renamed into place, saw %d" % len(renamed))
if sync and not all(r in synced for r in renamed): sys.exit("a part was renamed without fsync")
if not sync and synced: sys.exit("SyncStorageArea false still fsyncs %d parts" % len(synced))
PY
}
run_stow true
check_stow true || { grep -E 'spool' "$T/strace.out" | head -30; fail "STOW-RS with SyncStorageArea true"; }
pass "STOW-RS, SyncStorageArea true: every part fsync'ed before its rename, all before the first"
run_stow false
check_stow false || fail "STOW-RS with SyncStorageArea false"
pass "STOW-RS, SyncStorageArea false: no part fsync'ed"
