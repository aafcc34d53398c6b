#!/usr/bin/env bash
# Orthanc compatibility: /changes: New* in Orthanc's order, StableSeries/StableStudy/
# StablePatient after StableAge without new instances (and not before), IsStable, CompletedSeries
# and series Status from ExpectedNumberOfInstances, since/limit/last, DELETE /changes, Deleted.
source "$(dirname "$0")/lib.sh"
write_config '"StableAge": 2'
start_server
types() { json '[c["ChangeType"] for c in j["Changes"]]'; }
# "not stable yet" can only be asserted while StableAge has not passed since the last instance
# went in: on a loaded machine (CI runs two tests at once) the calls between may take longer.
t0=0; mark() { t0=$(date +%s%N); }
young() { [ $(( ($(date +%s%N) - t0) / 1000000 )) -lt 1900 ] || { echo "note: $1 not checked: StableAge passed meanwhile"; false; }; }

# a series announcing 3 instances (CardiacNumberOfImages), sent one by one
$PY - "$T" <<'PY'
import sys
from pydicom.dataset import Dataset, FileMetaDataset
from pydicom.uid import ExplicitVRLittleEndian, generate_uid
st, se = generate_uid(), generate_uid()
for k in (1, 2, 3, 4):
    ds = Dataset(); ds.file_meta = FileMetaDataset(); ds.file_meta.TransferSyntaxUID = ExplicitVRLittleEndian
    ds.PatientID = "CHG"; ds.StudyInstanceUID = st; ds.SeriesInstanceUID = se; ds.SOPInstanceUID = generate_uid()
    ds.SOPClassUID = "1.2.840.10008.5.1.4.1.1.7"; ds.InstanceNumber = k; ds.CardiacNumberOfImages = 3
    ds.is_little_endian = True; ds.is_implicit_VR = False
    ds.save_as(f"{sys.argv[1]}/c{k}.dcm", write_like_original=False)
PY
mark; r=$(upload "$T/c1.dcm"); SE=$(echo "$r" | json 'j["ParentSeries"]'); S=$(echo "$r" | json 'j["ParentStudy"]'); P=$(echo "$r" | json 'j["ParentPatient"]')
# (the first four: on a loaded machine Stable* may already follow, StableAge being 2 s)
[ "$(http GET /changes | json '[c["ChangeType"] for c in j["Changes"]][:4]')" = '["NewInstance", "NewSeries", "NewStudy", "NewPatient"]' ] || fail "New* order: $(cat "$T/body")"
http GET /series/$SE | json 'j["ExpectedNumberOfInstances"] == 3 and j["Status"] == "Missing"' | grep -qx True || fail "series after 1: $(cat "$T/body")"
st=$(http GET /series/$SE | json 'j["IsStable"]')   # (young is asked after the answer came)
if young "IsStable false after 1"; then [ "$st" = False ] || fail "IsStable after 1: $(cat "$T/body")"; fi
upload "$T/c2.dcm" >/dev/null; mark; upload "$T/c3.dcm" >/dev/null
http GET /series/$SE | json 'j["Status"]' | grep -qx Complete || fail "Status Complete"
http GET "/changes?since=4" | types | grep -q CompletedSeries || fail "CompletedSeries: $(cat "$T/body")"
# not stable before StableAge, stable after (the thread wakes at the deadline)
t=$(http GET /changes | json '[c["ChangeType"] for c in j["Changes"]][max(i for i, c in enumerate(j["Changes"]) if c["ChangeType"] == "NewInstance"):]')
if young "Stable* before StableAge"; then echo "$t" | grep -q Stable && fail "Stable* before StableAge (since the last NewInstance): $t"; fi
sleep 2.6
t=$(http GET /changes | types)
echo "$t" | grep -q '"StableSeries", "StableStudy", "StablePatient"' || fail "Stable* after StableAge: $t"
http GET /series/$SE | json 'j["IsStable"]' | grep -qx True || fail IsStable
http GET /studies/$S | json 'j["IsStable"]' | grep -qx True || fail "study IsStable"
stables() { http GET /changes | json '[c["ChangeType"] for c in j["Changes"]].count("StableSeries")'; }
n=$(stables)   # 1, or 2 when the series was already stable once between c1 and c2 (loaded machine)
mark; upload "$T/c4.dcm" >/dev/null
http GET /series/$SE | json 'j["Status"]' | grep -qx Inconsistent || fail "Status Inconsistent"
last=$(http GET /changes | json 'j["Changes"][-1]["ChangeType"]')
if young "a new instance after stable"; then [ "$last" = NewInstance ] || fail "a new instance after stable: $last"; fi
sleep 2.6
[ "$(stables)" = $((n + 1)) ] || fail "stable again after new instance: $(stables) StableSeries, $n before"
pass "New*, CompletedSeries, Stable*, IsStable, Status"

# since / limit / last / Done
all=$(http GET "/changes?limit=1000")
n=$(echo "$all" | json 'len(j["Changes"])'); last=$(echo "$all" | json 'j["Last"]')
http GET "/changes?limit=2" | json 'len(j["Changes"]) == 2 and j["Done"] == False and j["Last"] == j["Changes"][1]["Seq"]' | grep -qx True || fail "limit"
http GET "/changes?since=2&limit=1" | json 'j["Changes"][0]["Seq"] == 3' | grep -qx True || fail "since"
http GET "/changes?last" | json "len(j['Changes']) == 1 and j['Changes'][0]['Seq'] == $last and j['Last'] == $last" | grep -qx True || fail "last"
http GET "/changes?limit=1000" | json 'j["Done"] == True and all(set(c) == {"ChangeType","Date","ID","Path","ResourceType","Seq"} for c in j["Changes"])' | grep -qx True || fail "shape"
pass "since, limit, last ($n changes)"

# DELETE /changes: empty log, Seq never reused; as Orthanc, a delete logs no change
http DELETE /changes >/dev/null; [ "$(status)" = 200 ] || fail "DELETE /changes"
http GET /changes | json "j['Changes'] == [] and j['Last'] == $last" | grep -qx True || fail "after clear: $(cat "$T/body")"
http DELETE /patients/$P >/dev/null
http GET /changes | json "j['Changes'] == [] and j['Last'] == $last" | grep -qx True || fail "after delete: $(cat "$T/body")"
sleep 2.3
http GET /changes | types | grep -q Stable && fail "Stable* for a deleted resource"
pass "DELETE /changes, no change for a delete"
