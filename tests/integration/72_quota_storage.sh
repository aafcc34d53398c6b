#!/usr/bin/env bash
# Storage quotas as Orthanc's: MaximumPatientCount and MaximumStorageSize with
# MaximumStorageMode Recycle (oldest unprotected patient deleted first, never the one being
# stored into) or Reject (507 over REST, 0xA700 over C-STORE); PUT/GET /patients/{id}/protected.
# After every step the index and the files on disk agree.
source "$(dirname "$0")/lib.sh"
for p in 1 2 3 4 5 6; do
  $PY "$MP_SRC/tests/tools/gen_study.py" "$T/p$p" 2 --patient "PAT$p" --seed $p --size 64 >/dev/null
done
pid_of() { $PY -c "import hashlib,sys; h=hashlib.sha1(sys.argv[1].encode()).hexdigest(); print('-'.join(h[i:i+8] for i in range(0,40,8)))" "$1"; }
P1=$(pid_of PAT1); P2=$(pid_of PAT2); P3=$(pid_of PAT3); P4=$(pid_of PAT4); P5=$(pid_of PAT5)
up() { curl -s -o "$T/body" -w '%{http_code}' -X POST --data-binary @"$1" "$URL/instances" || true; }
up_patient() { for f in "$T/p$1"/*.dcm; do c=$(up "$f"); [ "$c" = 200 ] || fail "upload PAT$1 -> $c $(cat "$T/body")"; done; }
consistent() {
  local n files
  n=$(http GET /instances | json 'len(j)')
  files=$(find "$T/db" -type f ! -name 'index.sqlite*' | wc -l)
  [ "$n" = "$files" ] || fail "$1: $n instances but $files files"
  local disk; disk=$(find "$T/db" -type f ! -name 'index.sqlite*' -printf '%s\n' | awk '{s+=$1} END {print s+0}')
  [ "$(http GET /statistics | json 'j["TotalDiskSize"]')" = "$disk" ] || fail "$1: TotalDiskSize != $disk on disk"
}
patients() { http GET /patients | json '" ".join(sorted(j))'; }
sorted() { printf '%s\n' "$@" | sort | tr '\n' ' ' | sed 's/ $//'; }

# ---- MaximumPatientCount 3, Recycle ----
write_config '"MaximumPatientCount": 3'
start_server
up_patient 1; sleep 1.1; up_patient 2; sleep 1.1; up_patient 3
[ "$(http GET /patients/$P1/protected)" = 0 ] || fail "GET protected (default)"
http PUT /patients/$P1/protected -d 1 >/dev/null; [ "$(status)" = 200 ] || fail "PUT protected -> $(status)"
[ "$(http GET /patients/$P1/protected)" = 1 ] || fail "GET protected after PUT 1"
http PUT /patients/nope/protected -d 1 >/dev/null; [ "$(status)" = 404 ] || fail "unknown patient -> $(status)"
http PUT /patients/$P1/protected -d maybe >/dev/null; [ "$(status)" = 400 ] || fail "bad body -> $(status)"
sleep 1.1
up_patient 4   # P2 is the oldest unprotected one
[ "$(patients)" = "$(sorted $P1 $P3 $P4)" ] || fail "after PAT4: $(patients)"
# as Orthanc, a recycled patient's changes go with it (no Deleted entry either)
http GET '/changes?limit=1000' | json '[c["ID"] for c in j["Changes"]]' | grep -q "$P2" && fail "changes of the recycled PAT2 remain"
consistent "recycle by count"
# storing into an existing patient recycles nothing
$PY "$MP_SRC/tests/tools/gen_study.py" "$T/p3b" 1 --patient PAT3 --seed 33 --size 64 >/dev/null
[ "$(up "$T"/p3b/*.dcm)" = 200 ] || fail "upload into existing PAT3"
[ "$(patients)" = "$(sorted $P1 $P3 $P4)" ] || fail "existing patient caused recycling: $(patients)"
# everyone protected: no room, 507
http PUT /patients/$P3/protected -d 1 >/dev/null; http PUT /patients/$P4/protected -d 1 >/dev/null
c=$(up "$T/p5/$(ls "$T/p5" | head -1)"); [ "$c" = 507 ] || fail "all protected: $c"
json 'j["OrthancError"]' <"$T/body" | grep -qi 'full' || fail "507 body: $(cat "$T/body")"
consistent "all protected"
http PUT /patients/$P3/protected -d 0 >/dev/null
[ "$(http GET /patients/$P3/protected)" = 0 ] || fail "unprotect"
up_patient 5
[ "$(patients)" = "$(sorted $P1 $P4 $P5)" ] || fail "after unprotecting PAT3: $(patients)"
consistent "after unprotect"
pass "MaximumPatientCount + Recycle: oldest unprotected patient recycled, protected kept, 507 when none is left"
stop_server

# ---- MaximumStorageSize 1 MB, Reject ----
reset_store
$PY "$MP_SRC/tests/tools/gen_study.py" "$T/big" 12 --patient BIG --seed 9 --size 256 >/dev/null  # ~130 KB each
write_config '"MaximumStorageSize": 1, "MaximumStorageMode": "Reject"'
start_server
ok=0; rejected=0
for f in "$T"/big/*.dcm; do
  c=$(up "$f")
  case $c in 200) ok=$((ok+1));; 507) rejected=$((rejected+1));; *) fail "Reject mode: $c $(cat "$T/body")";; esac
done
[ $ok -ge 5 ] && [ $rejected -ge 1 ] || fail "Reject: $ok stored, $rejected rejected"
total=$(http GET /statistics | json 'int(j["TotalDiskSize"])')
[ "$total" -le $((1024 * 1024)) ] || fail "over quota: $total"
consistent "reject"
# C-STORE gets 0xA700
f=$(ls "$T"/big/*.dcm | tail -1)
storescu -v -aec ORTHANC 127.0.0.1 "$DICOM_PORT" "$f" >"$T/sc.log" 2>&1 || true
grep -qi 'a700\|OutOfResources' "$T/sc.log" || fail "C-STORE over quota: $(tail -5 "$T/sc.log")"
consistent "reject over C-STORE"
# room again after a delete
http DELETE /patients/$(pid_of BIG) >/dev/null
c=$(up "$f"); [ "$c" = 200 ] || fail "upload after delete -> $c"
pass "MaximumStorageSize + Reject: $ok stored, $rejected refused with 507, 0xA700 over C-STORE, room again after a delete"
stop_server

# ---- MaximumStorageSize 1 MB, Recycle: the store never exceeds it ----
reset_store
write_config '"MaximumStorageSize": 1'
start_server
for p in 1 2 3 4 5 6; do
  $PY "$MP_SRC/tests/tools/gen_study.py" "$T/q$p" 2 --patient "Q$p" --seed $((p+50)) --size 256 >/dev/null
  for f in "$T/q$p"/*.dcm; do c=$(up "$f"); [ "$c" = 200 ] || fail "Recycle by size: $c $(cat "$T/body")"; done
  total=$(http GET /statistics | json 'int(j["TotalDiskSize"])')
  [ "$total" -le $((1024 * 1024)) ] || fail "over quota after Q$p: $total"
done
http GET /patients | json 'len(j)' | grep -qx '[1-4]' || fail "patients left: $(patients)"
http GET /patients | grep -q "$(pid_of Q6)" || fail "newest patient recycled"
if http GET /patients | grep -q "$(pid_of Q1)"; then fail "oldest patient kept"; fi
# a single instance larger than the whole quota is refused even in Recycle mode
$PY "$MP_SRC/tests/tools/gen_study.py" "$T/huge" 1 --patient HUGE --seed 77 --size 1100 >/dev/null
c=$(up "$T"/huge/*.dcm); [ "$c" = 507 ] || fail "instance over the whole quota -> $c"
consistent "recycle by size"
pass "MaximumStorageSize + Recycle: total stays under 1 MB, oldest patients go first"
