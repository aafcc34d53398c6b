#!/usr/bin/env bash
# The DICOM cache stays within DicomCacheSize (1 MB here) while a study of a few MB is
# anonymized: orthanc_dicom_cache_size_mb sampled during the job never exceeds it, and the
# cache is used (non-zero count); /tags goes through it; a deleted instance leaves it.
source "$(dirname "$0")/lib.sh"
write_config '"DicomCacheSize": 1'
start_server
$PY "$MP_SRC/tests/tools/gen_study.py" "$T/in" 120 --series 2 --size 128 >/dev/null
$PY - "$T/in" "$HTTP_PORT" <<'PY'
import glob, http.client, sys
c = http.client.HTTPConnection("127.0.0.1", int(sys.argv[2]))
for f in sorted(glob.glob(sys.argv[1] + "/*.dcm")):
    c.request("POST", "/instances", open(f, "rb").read()); r = c.getresponse(); r.read()
    assert r.status == 200, r.status
PY
S=$(http GET /studies | json 'j[0]')
metric() { curl -s "$URL/tools/metrics-prometheus" | awk -v n="$1" '$1 == n {print $2}'; }
[ -n "$(metric orthanc_dicom_cache_size_mb)" ] || fail "no orthanc_dicom_cache_size_mb metric"

r=$(http POST "/studies/$S/anonymize" -d '{"Asynchronous": true}')
J=$(echo "$r" | json 'j["ID"]')
: > "$T/samples"
for _ in $(seq 1 3000); do
  echo "$(metric orthanc_dicom_cache_size_mb) $(metric orthanc_dicom_cache_count)" >> "$T/samples"
  s=$(http GET "/jobs/$J" | json 'j["State"]')
  [ "$s" = Success ] && break
  [ "$s" = Failure ] && fail "job failed"
done
[ "$s" = Success ] || fail "job did not finish"
echo "$(metric orthanc_dicom_cache_size_mb) $(metric orthanc_dicom_cache_count)" >> "$T/samples"
$PY - "$T/samples" <<'PY' || fail "cache bound: $(sort -u "$T/samples" | tail -5)"
import sys
rows = [l.split() for l in open(sys.argv[1]) if len(l.split()) == 2]
size = [float(a) for a, b in rows]; count = [int(float(b)) for a, b in rows]
print("samples %d, max size %.3f MB, max count %d" % (len(rows), max(size), max(count)))
sys.exit(0 if rows and max(size) <= 1.0 and max(count) > 0 else 1)
PY
pass "cache within 1 MB during the job, and used"

I=$(http GET "/studies/$S/instances" | json 'j[0]["ID"]')
http GET "/instances/$I/tags" >/dev/null
http GET "/instances/$I/tags?simplify" | json 'j["Modality"]' | grep -qx CT || fail "/tags through the cache"
http DELETE "/instances/$I" >/dev/null
http GET "/instances/$I/tags" >/dev/null; [ "$(status)" = 404 ] || fail "deleted instance still served: $(status)"
pass "/tags through the cache, invalidated on delete"
