#!/usr/bin/env bash
# Issue 11: OverwriteInstances as Orthanc 1.10.1 (compared request by request): storing an
# instance again deletes the old one with the parents it leaves empty (their changes, their
# user attachments and the old file go), then stores it anew, so the New* changes are logged
# again with new sequence numbers, and Stable* once the resources are stable again
# (StableAge 1 s); a parent that keeps other children stays (no New* for it).
# What came through the REST API carries RemoteAET "" (instance and series) and
# HttpUsername "" (no authentication here), as Orthanc writes them.
source "$(dirname "$0")/lib.sh"
write_config '"OverwriteInstances": true, "StableAge": 1'
start_server
F="$PYDICOM_FILES/CT_small.dcm"
types() { http GET /changes?limit=100 | json '" ".join(c["ChangeType"] for c in j["Changes"] if not c["ChangeType"].startswith("Stable"))'; }
stable() { http GET /changes?limit=100 | json '" ".join(sorted(c["ChangeType"] for c in j["Changes"] if c["ChangeType"].startswith("Stable")))'; }
wait_stable() {  # wait_stable -> the three Stable* changes are logged (StableAge 1 s; 20 s under load)
  for _ in $(seq 1 200); do [ "$(stable)" = "StablePatient StableSeries StableStudy" ] && return 0; sleep 0.1; done
  fail "Stable* changes: '$(stable)'"
}
seqs() { http GET /changes?limit=100 | json '" ".join(str(c["Seq"]) for c in j["Changes"])'; }
nfiles() { find "$T/db" -type f ! -name '*.db*' ! -name '*.sqlite*' ! -name '*-wal' ! -name '*-shm' | grep -v '/index' | wc -l; }

I=$(upload "$F" | json 'j["ID"]')
SE=$(http GET "/instances/$I" | json 'j["ParentSeries"]')

# ---- REST origin metadata ----
[ "$(http GET "/instances/$I/metadata?expand" | json 'j.get("RemoteAET")')" = "" ] || fail "instance RemoteAET: $(http GET "/instances/$I/metadata?expand")"
http GET "/instances/$I/metadata?expand" | json '"RemoteAET" in j and "HttpUsername" in j and j["HttpUsername"] == "" and j["Origin"] == "RestApi"' | grep -qx True \
  || fail "instance metadata of a REST upload: $(http GET "/instances/$I/metadata?expand")"
http GET "/series/$SE/metadata?expand" | json '"RemoteAET" in j and j["RemoteAET"] == ""' | grep -qx True \
  || fail "series metadata of a REST upload: $(http GET "/series/$SE/metadata?expand")"
pass "REST upload: RemoteAET \"\" on instance and series, HttpUsername \"\""

# ---- overwrite of the only instance: everything logged anew ----
[ "$(types)" = "NewInstance NewSeries NewStudy NewPatient" ] || fail "changes after the first store: $(types)"
wait_stable
before=$(seqs)
curl -sf -X PUT --data-binary 'attached' "$URL/instances/$I/attachments/1025" >/dev/null || fail "user attachment"
files0=$(nfiles)
[ "$files0" = 2 ] || fail "expected the DICOM file and the attachment on disk, found $files0"
r=$(upload "$F")
[ "$(echo "$r" | json 'j["Status"]')" = Success ] || fail "overwrite answer: $r"
[ "$(types)" = "NewInstance NewSeries NewStudy NewPatient" ] || fail "changes after the overwrite: $(types)"
after=$(seqs)
for s in $before; do
  case " $after " in *" $s "*) fail "old change $s still listed after the overwrite: $after";; esac
done
[ "$(nfiles)" = 1 ] || fail "after the overwrite $(nfiles) files remain (the old file and the attachment must go)"
code=$(curl -s -o /dev/null -w '%{http_code}' "$URL/instances/$I/attachments/1025/data")
[ "$code" = 404 ] || fail "the old instance's user attachment survived the overwrite ($code)"
http GET /statistics | json 'j["CountInstances"] == 1 and j["CountSeries"] == 1 and j["CountPatients"] == 1' | grep -qx True \
  || fail "statistics after the overwrite: $(http GET /statistics)"
[ "$(http GET "/instances/$I/metadata/RemoteAET")" = "" ] || fail "RemoteAET after the overwrite"
wait_stable
pass "overwrite: old changes, file and attachment gone; New* and Stable* logged anew ($before -> $(seqs))"

# ---- a second instance in the same series: overwriting it keeps the series ----
J=$(http POST "/instances/$I/modify" -d '{"Replace": {"SOPInstanceUID": "1.2.3.4.5.6.7.8.9"}, "Keep": ["SeriesInstanceUID", "StudyInstanceUID"], "Force": true}' > "$T/m.dcm"; upload "$T/m.dcm" | json 'j["ID"]')
[ "$(http GET "/instances/$J" | json 'j["ParentSeries"]')" = "$SE" ] || fail "the modified copy is not in the same series"
n0=$(types)
upload "$T/m.dcm" >/dev/null
n1=$(types)
[ "${n1##* }" = NewInstance ] || fail "overwriting one of two instances logged: $n1"
[ "$(echo "$n1" | wc -w)" = "$(echo "$n0" | wc -w)" ] || fail "overwrite of one of two: New* changes $n0 -> $n1"
[ "$(http GET "/series/$SE" | json 'len(j["Instances"])')" = 2 ] || fail "series lost an instance"
pass "overwrite of one of two instances: only its NewInstance logged anew, the series stays"
