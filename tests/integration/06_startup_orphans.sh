#!/usr/bin/env bash
# Start-up recovery, deterministically: a store is prepared with (a) a pending uuid whose file
# exists and has no index row (a crash between writing a file and committing its row),
# (b) its leftover temporary file, and (c) a pending uuid that an instance still references
# (a referenced file must never be removed, whatever the pending list says). After a restart the orphan and its temp file are gone, the referenced file is still served, and the
# pending list is empty.
source "$(dirname "$0")/lib.sh"
$PY "$MP_SRC/tests/tools/gen_study.py" "$T/in" 1 --size 32 >/dev/null
f=$(ls "$T"/in/*.dcm)
start_server
I=$(upload "$f" | json 'j["ID"]')
U=$(http GET "/instances/$I/attachments/dicom/info" | json 'j["Uuid"]')
stop_server

index_sql "SELECT count(*) FROM pending" >/dev/null || fail "the index has no pending table (schema changed: update this test)"
O=0a1b2c3d-1111-4222-8333-444455556666
mkdir -p "$T/db/0a/1b"
echo "orphan bytes" > "$T/db/0a/1b/$O"
echo "half" > "$T/db/0a/1b/$O.tmp"
index_sql "INSERT INTO pending(uuid) VALUES('$O'); INSERT INTO pending(uuid) VALUES('$U');"
[ "$(index_sql 'SELECT count(*) FROM pending')" = 2 ] || fail "setup"

start_server
[ -e "$T/db/0a/1b/$O" ] && fail "orphan file still on disk after start-up"
[ -e "$T/db/0a/1b/$O.tmp" ] && fail "orphan temp file still on disk after start-up"
pass "orphan file and its temp file removed at start-up"
http GET "/instances/$I/file" > "$T/back.dcm"; [ "$(status)" = 200 ] || fail "referenced file: $(status)"
cmp -s "$T/back.dcm" "$f" || fail "referenced file changed"
pass "pending but referenced file kept"
stop_server
[ "$(index_sql 'SELECT count(*) FROM pending')" = 0 ] || fail "pending marks not cleared"
pass "pending list empty after recovery"
