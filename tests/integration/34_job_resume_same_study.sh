#!/usr/bin/env bash
# A job interrupted by a crash resumes into the SAME new study. Deterministic: the job is
# paused once it has written part of its output (Progress > 0), the server is killed -9 while
# it is paused (a saved, partly done job), restarted, and the job resumed. It must finish with
# exactly one anonymized study holding every instance, the instances written before the crash
# among them (a resumed job that drew a new UID key would write a second study).
source "$(dirname "$0")/lib.sh"
write_config '"ConcurrentJobs": 1'
start_server
N=400
$PY "$MP_SRC/tests/tools/gen_study.py" "$T/in" $N --size 32 >/dev/null
$PY - "$T/in" "$HTTP_PORT" <<'PY'
import glob, http.client, sys
c = http.client.HTTPConnection("127.0.0.1", int(sys.argv[2]))
for f in sorted(glob.glob(sys.argv[1] + "/*.dcm")):
    c.request("POST", "/instances", open(f, "rb").read()); r = c.getresponse(); r.read()
    assert r.status == 200, r.status
PY
S=$(http GET /studies | json 'j[0]')
J=$(http POST "/studies/$S/anonymize" -d '{"Asynchronous": true}' | json 'j["ID"]')
for _ in $(seq 1 5000); do
  p=$(http GET "/jobs/$J" | json '"%s %s" % (j["State"], j["Progress"])')
  case "$p" in "Running 0"|Pending*) ;; Running*) break;; *) fail "job state $p before it could be paused";; esac
done
http POST "/jobs/$J/pause" >/dev/null; [ "$(status)" = 200 ] || fail "pause: $(status)"
for _ in $(seq 1 500); do s=$(http GET "/jobs/$J" | json 'j["State"]'); [ "$s" = Paused ] && break; sleep 0.01; done
[ "$s" = Paused ] || fail "job not paused (state $s)"
before=$(http GET /instances | json 'len(j)')
written=$((before - N))
[ "$written" -gt 0 ] && [ "$written" -lt $N ] || fail "expected a partly done job, $written of $N written"
http GET /studies | json 'j' > "$T/studies.before"
http GET /instances | json 'j' > "$T/inst.before"
echo "paused with $written of $N instances written; kill -9"
kill9_server
start_server
[ "$(http GET "/jobs/$J" | json 'j["State"]')" = Paused ] || fail "job not restored as Paused"
http POST "/jobs/$J/resume" >/dev/null
for _ in $(seq 1 3000); do s=$(http GET "/jobs/$J" | json 'j["State"]'); case $s in Success|Failure) break;; esac; sleep 0.02; done
[ "$s" = Success ] || fail "resumed job ended in $s"
[ "$(http GET /studies | json 'len(j)')" = 2 ] || fail "expected 2 studies (source + one anonymized), got $(http GET /studies)"
A=$(http GET "/jobs/$J" | json 'j["Content"]["ID"]')
[ "$(http GET "/studies/$A/instances" | json 'len(j)')" = $N ] || fail "anonymized study incomplete"
[ "$(http GET /instances | json 'len(j)')" = $((2 * N)) ] || fail "instance count $(http GET /instances | json 'len(j)') != $((2 * N))"
$PY - "$T/inst.before" "$URL" "$S" "$A" <<'PY' || fail "instances written before the crash are not in the resumed job's study"
import json, sys, urllib.request
get = lambda p: json.load(urllib.request.urlopen(sys.argv[2] + p))
source = {i["ID"] for i in get("/studies/%s/instances" % sys.argv[3])}
early = set(json.load(open(sys.argv[1]))) - source
final = {i["ID"] for i in get("/studies/%s/instances" % sys.argv[4])}
assert early and early <= final, (len(early), len(early - final))
PY
pass "resumed after kill -9: one anonymized study of $N instances ($written written before the crash)"
