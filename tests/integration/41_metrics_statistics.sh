#!/usr/bin/env bash
# /statistics and /tools/metrics-prometheus against a recount after uploads and deletes:
# counts from the resource lists, sizes from the files on disk; every Prometheus sample line is
# `name value` with a `# TYPE` line before it; the design's names are all there.
source "$(dirname "$0")/lib.sh"
$PY "$MP_SRC/tests/tools/gen_study.py" "$T/a" 6 --series 2 --size 32 --seed 11
$PY "$MP_SRC/tests/tools/gen_study.py" "$T/b" 4 --series 1 --size 32 --seed 12
$PY "$MP_SRC/tests/tools/gen_study.py" "$T/c" 3 --series 3 --size 64 --seed 13
start_server

for f in "$T"/a/*.dcm "$T"/b/*.dcm "$T"/c/*.dcm "$PYDICOM_FILES/CT_small.dcm"; do
  upload "$f" >/dev/null || fail "upload $f"
done

# check_all LABEL: /statistics == recount == Prometheus
check_all() {
  local label=$1
  http GET /statistics > "$T/stats.json"
  [ "$(status)" = 200 ] || fail "$label: /statistics -> $(status)"
  http GET /tools/metrics-prometheus > "$T/prom.txt"
  [ "$(status)" = 200 ] || fail "$label: metrics-prometheus -> $(status)"
  for l in patients studies series instances; do http GET /$l > "$T/list_$l.json"; done
  find "$T/db" -type f ! -name 'index.sqlite*' -printf '%s\n' | awk '{s+=$1} END {print s+0}' > "$T/disk"
  $PY - "$T" "$label" "$MP_SRC" <<'PY' || fail "$label: mismatch (see above)"
import json, re, sys
T, label = sys.argv[1], sys.argv[2]
st = json.load(open(T + "/stats.json"))
recount = {l: len(json.load(open("%s/list_%s.json" % (T, l)))) for l in ("patients", "studies", "series", "instances")}
disk = int(open(T + "/disk").read())
errors = []
for l, key in (("patients", "CountPatients"), ("studies", "CountStudies"), ("series", "CountSeries"), ("instances", "CountInstances")):
    if st[key] != recount[l]:
        errors.append("%s %d != recount %d" % (key, st[key], recount[l]))
if int(st["TotalDiskSize"]) != disk:
    errors.append("TotalDiskSize %s != %d bytes on disk" % (st["TotalDiskSize"], disk))
if st["TotalDiskSizeMB"] != disk // (1024 * 1024) or int(st["TotalUncompressedSize"]) != disk:
    errors.append("MB or uncompressed size: %r" % st)
for k in ("TotalDiskSize", "TotalUncompressedSize"):
    if not isinstance(st[k], str):
        errors.append("%s is not a string" % k)
# Prometheus text: "# TYPE name type" or "name{labels} value", each name typed before use.
typed, samples = {}, {}
sample_re = re.compile(r'^([a-zA-Z_:][a-zA-Z0-9_:]*)(\{[^}]*\})? (-?[0-9.eE+-]+|NaN|[+-]Inf)$')
for line in open(T + "/prom.txt").read().splitlines():
    if line.startswith("# TYPE "):
        name, typ = line[7:].split(" ")
        assert typ in ("gauge", "counter", "summary"), line
        typed[name] = typ
        continue
    if line.startswith("#") or not line:
        continue
    m = sample_re.match(line)
    if not m:
        errors.append("bad sample line: %r" % line)
        continue
    name = m.group(1)
    base = re.sub(r"_(count|sum)$", "", name)
    if name not in typed and not (base in typed and typed[base] == "summary"):
        errors.append("no # TYPE before %s" % name)
    if not (name.startswith("orthanc_") or name.startswith("minipacs_")):
        errors.append("unexpected name %s" % name)
    samples[name] = float(m.group(3))
design = """orthanc_count_patients orthanc_count_studies orthanc_count_series orthanc_count_instances
orthanc_disk_size_mb orthanc_uncompressed_size_mb orthanc_dicom_cache_size_mb orthanc_dicom_cache_count
orthanc_jobs_pending orthanc_jobs_running orthanc_jobs_success orthanc_jobs_failed orthanc_jobs_completed
orthanc_memory_trimming_duration_ms orthanc_rest_api_active_requests orthanc_rest_api_duration_ms
orthanc_store_dicom_duration_ms orthanc_up_time_s orthanc_last_change
minipacs_resident_memory_bytes minipacs_memory_trim_released_bytes minipacs_memory_trims_total""".split()
for n in design:
    if n not in samples:
        errors.append("missing %s" % n)
for l, key in (("patients", "patients"), ("studies", "studies"), ("series", "series"), ("instances", "instances")):
    if samples.get("orthanc_count_" + key) != recount[l]:
        errors.append("orthanc_count_%s %r != %d" % (key, samples.get("orthanc_count_" + key), recount[l]))
for n in ("orthanc_disk_size_mb", "orthanc_uncompressed_size_mb"):
    if abs(samples.get(n, -1) - disk / 1048576.0) > 1e-6:
        errors.append("%s %r != %f" % (n, samples.get(n), disk / 1048576.0))
if samples.get("orthanc_rest_api_active_requests", 0) < 1:
    errors.append("active requests should count the scrape itself")
if not samples.get("minipacs_resident_memory_bytes", 0) > 1e6:
    errors.append("resident memory")
for e in errors:
    print("%s: %s" % (label, e))
sys.exit(1 if errors else 0)
PY
  pass "$label: /statistics == recount == Prometheus"
}

check_all "after uploads"
last_before=$(grep '^orthanc_last_change ' "$T/prom.txt" | awk '{print $2}')
[ "$last_before" = "$(http GET '/changes?last' | json 'j["Last"]')" ] || fail "orthanc_last_change != /changes Last"
[ "$(grep '^minipacs_store_dicom_duration_ms_count ' "$T/prom.txt" | awk '{print $2}')" -ge 14 ] || fail "store timer count"

# Deletes at every level, then an upload of something already stored.
S=$(http GET /studies | json 'j[0]')
http DELETE /studies/$S >/dev/null; [ "$(status)" = 200 ] || fail "delete study"
I=$(http GET /instances | json 'j[0]')
http DELETE /instances/$I >/dev/null
SE=$(http GET /series | json 'j[-1]')
http DELETE /series/$SE >/dev/null
upload "$PYDICOM_FILES/CT_small.dcm" >/dev/null
check_all "after deletes"
last_after=$(grep '^orthanc_last_change ' "$T/prom.txt" | awk '{print $2}')
[ "$last_after" -gt "$last_before" ] || fail "orthanc_last_change did not grow on delete ($last_before -> $last_after)"

# Everything deleted: zeros everywhere.
for P in $(http GET /patients | json '" ".join(j)'); do http DELETE /patients/$P >/dev/null; done
check_all "after deleting everything"
grep -qx 'orthanc_count_instances 0' "$T/prom.txt" || fail "instances not 0"
