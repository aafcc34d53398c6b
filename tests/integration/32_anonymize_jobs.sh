#!/usr/bin/env bash
# Asynchronous anonymization jobs: Pending -> Running -> Success with Progress reaching 100;
# cancel of a running job (Failure, ErrorCode 37 CanceledJob; as in Orthanc the instances it
# already wrote STAY, and a resubmit finishes the job, finding them AlreadyStored); pause and
# resume; a server killed (-9) with a running and a pending job finishes both after restart.
source "$(dirname "$0")/lib.sh"
write_config '"ConcurrentJobs": 1, "JobsHistorySize": 20'
start_server
$PY "$MP_SRC/tests/tools/gen_study.py" "$T/in" 600 --series 3 --size 128 >/dev/null
$PY - "$T/in" "$HTTP_PORT" <<'PY'
import glob, http.client, sys
c = http.client.HTTPConnection("127.0.0.1", int(sys.argv[2]))
for f in sorted(glob.glob(sys.argv[1] + "/*.dcm")):
    c.request("POST", "/instances", open(f, "rb").read()); r = c.getresponse(); r.read()
    assert r.status == 200, r.status
PY
S=$(http GET /studies | json 'j[0]')
[ "$(http GET /instances | json 'len(j)')" = 600 ] || fail "upload"

# poll JOB: records every State/Progress seen until Success or Failure into $T/seen
poll() {
  : > "$T/seen"
  for _ in $(seq 1 3000); do
    local s; s=$(http GET "/jobs/$1" | json '"%s %s" % (j["State"], j["Progress"])')
    echo "$s" >> "$T/seen"
    case "$s" in Success*|Failure*) return 0;; esac
    sleep 0.01
  done
  fail "job $1 did not finish"
}

r=$(http POST "/studies/$S/anonymize" -d '{"Asynchronous": true, "Priority": 3}')
J=$(echo "$r" | json 'j["ID"]')
[ "$(echo "$r" | json 'j["Path"]')" = "/jobs/$J" ] || fail "async answer: $r"
poll "$J"
grep -q "^Running" "$T/seen" || fail "never saw Running: $(sort -u "$T/seen" | head)"
tail -1 "$T/seen" | grep -qx "Success 100" || fail "did not end in Success 100: $(tail -1 "$T/seen")"
job=$(http GET "/jobs/$J")
for k in ID Type State Progress Priority CreationTime EffectiveRuntime ErrorCode ErrorDescription Content CompletionTime Timestamp; do
  echo "$job" | json "'$k' in j" | grep -qx True || fail "job JSON lacks $k: $job"; done
[ "$(echo "$job" | json 'j["Type"]')" = ResourceModification ] || fail "job Type"
[ "$(echo "$job" | json 'j["Priority"]')" = 3 ] || fail "job Priority"
N=$(echo "$job" | json 'j["Content"]["ID"]')
[ "$(http GET "/studies/$N/instances" | json 'len(j)')" = 600 ] || fail "600 instances in the new study"
http GET /jobs | json 'j' | grep -q "$J" || fail "/jobs lists the job"
http GET "/jobs?expand" | json 'j[0]["State"]' | grep -qx Success || fail "/jobs?expand"
pass "async: Pending/Running -> Success, Progress 100"

# Cancel while running: Failure/CanceledJob, partial output kept, resubmit completes it.
r=$(http POST "/studies/$S/anonymize" -d '{"Asynchronous": true}')
J=$(echo "$r" | json 'j["ID"]')
for _ in $(seq 1 2000); do
  p=$(http GET "/jobs/$J" | json '"%s %s" % (j["State"], j["Progress"])')
  case "$p" in "Running 0") ;; Running*) break;; Success*) fail "job finished before it could be canceled";; esac
  sleep 0.002
done
http POST "/jobs/$J/cancel" >/dev/null
[ "$(status)" = 200 ] || fail "cancel: $(status)"
poll "$J"
job=$(http GET "/jobs/$J")
[ "$(echo "$job" | json 'j["State"]')" = Failure ] || fail "canceled job state: $job"
[ "$(echo "$job" | json 'j["ErrorCode"]')" = 37 ] || fail "canceled job ErrorCode: $job"
written=$(( $(http GET /instances | json 'len(j)') - 1200 ))
[ "$written" -gt 0 ] && [ "$written" -lt 600 ] || fail "partial output after cancel: $written instances"
N2=$(echo "$job" | json 'j["Content"]["ID"]')
[ "$(http GET "/studies/$N2/instances" | json 'len(j)')" = "$written" ] || fail "partial study"
http POST "/jobs/$J/cancel" >/dev/null; [ "$(status)" = 400 ] || fail "cancel of a finished job: $(status)"
pass "cancel: Failure (CanceledJob), $written instances already written stay"
http POST "/jobs/$J/resubmit" >/dev/null
poll "$J"
tail -1 "$T/seen" | grep -qx "Success 100" || fail "resubmit: $(tail -1 "$T/seen")"
[ "$(http GET "/studies/$N2/instances" | json 'len(j)')" = 600 ] || fail "resubmitted job completes the same study"
pass "resubmit finishes the canceled job into the same study"

# Pause / resume
r=$(http POST "/studies/$S/anonymize" -d '{"Asynchronous": true}')
J=$(echo "$r" | json 'j["ID"]')
http POST "/jobs/$J/pause" >/dev/null
for _ in $(seq 1 500); do s=$(http GET "/jobs/$J" | json 'j["State"]'); [ "$s" = Paused ] || [ "$s" = Success ] && break; sleep 0.01; done
if [ "$s" = Paused ]; then
  p1=$(http GET "/jobs/$J" | json 'j["Progress"]'); sleep 0.3
  [ "$(http GET "/jobs/$J" | json 'j["Progress"]')" = "$p1" ] || fail "paused job progressed"
  http POST "/jobs/$J/resume" >/dev/null
fi
poll "$J"
tail -1 "$T/seen" | grep -qx "Success 100" || fail "resumed job"
pass "pause/resume"

# Restart: a job Running and one Pending (ConcurrentJobs 1) when the server is killed -9.
r1=$(http POST "/studies/$S/anonymize" -d '{"Asynchronous": true}')
r2=$(http POST "/studies/$S/anonymize" -d '{"Asynchronous": true}')
J1=$(echo "$r1" | json 'j["ID"]'); J2=$(echo "$r2" | json 'j["ID"]')
kill9_server
start_server
grep -q "restored job $J2 (ResourceModification) as Pending" "$T/server.log" || fail "pending job not restored as Pending"
poll "$J1"; tail -1 "$T/seen" | grep -qx "Success 100" || fail "job 1 after restart: $(tail -1 "$T/seen")"
poll "$J2"; tail -1 "$T/seen" | grep -qx "Success 100" || fail "job 2 after restart: $(tail -1 "$T/seen")"
for J in $J1 $J2; do
  N=$(http GET "/jobs/$J" | json 'j["Content"]["ID"]')
  [ "$(http GET "/studies/$N/instances" | json 'len(j)')" = 600 ] || fail "job $J after restart: incomplete study"
done
pass "restart: running and pending jobs finish"
