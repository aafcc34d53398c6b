#!/usr/bin/env bash
# Orthanc compatibility: POST /studies/{id}/split ("Series", "Instances", "Replace", "Remove",
# "KeepSource", synchronous answer, asynchronous job "SplitStudy") and /studies/{id}/merge
# ("Resources", "KeepSource", job "MergeStudy"), with Orthanc 1.10.1's errors; the files written
# are checked with pydicom (UIDs, tags taken from the target study).
source "$(dirname "$0")/lib.sh"
start_server
$PY - "$T" <<'PY'
import sys
from pydicom.dataset import Dataset, FileMetaDataset
from pydicom.uid import ExplicitVRLittleEndian
k = 0
for st in (1, 2):
    for se in (1, 2):
        for i in (1, 2):
            ds = Dataset(); ds.file_meta = FileMetaDataset(); ds.file_meta.TransferSyntaxUID = ExplicitVRLittleEndian
            ds.PatientID = "PAT%d" % st; ds.PatientName = "Split^%d" % st
            ds.StudyInstanceUID = "1.2.826.0.1.87.%d" % st; ds.StudyDescription = "Study%d" % st
            ds.AccessionNumber = "ACC%d" % st
            ds.SeriesInstanceUID = "1.2.826.0.1.87.%d.%d" % (st, se); ds.Modality = "CT" if se == 1 else "MR"
            ds.SeriesDescription = "Series%d" % se
            ds.SOPInstanceUID = "1.2.826.0.1.87.%d.%d.%d" % (st, se, i); ds.InstanceNumber = i
            ds.SOPClassUID = "1.2.840.10008.5.1.4.1.1.7"
            ds.is_little_endian = True; ds.is_implicit_VR = False
            ds.save_as(f"{sys.argv[1]}/f{k}.dcm", write_like_original=False); k += 1
PY
for k in 0 1 2 3 4 5 6 7; do upload "$T/f$k.dcm" >/dev/null; done
lookup() { http POST /tools/lookup -d "$1" | json 'j[0]["ID"]'; }
ST1=$(lookup 1.2.826.0.1.87.1); ST2=$(lookup 1.2.826.0.1.87.2)
SE11=$(lookup 1.2.826.0.1.87.1.1); SE12=$(lookup 1.2.826.0.1.87.1.2); SE21=$(lookup 1.2.826.0.1.87.2.1)
I121=$(lookup 1.2.826.0.1.87.1.2.1); I221=$(lookup 1.2.826.0.1.87.2.2.1)

# ---- errors, before any job exists ----
err() { http POST "$1" -d "$2" | json 'str(j["HttpStatus"]) + " " + j["Details"]'; }
err /studies/$ST1/split '{}' | grep -qx '400 Both the "Series" and the "Instances" fields are missing' || fail "split without Series/Instances"
err /studies/$ST1/split "{\"Series\":[\"$SE21\"]}" | grep -q '^404 This series does not belong to the study to be split' || fail "split of a foreign series"
err /studies/$ST1/split "{\"Series\":\"$SE11\"}" | grep -qx '400 List of strings expected in field: Series' || fail "Series not a list"
err /studies/$ST1/split "{\"Series\":[\"$SE11\"],\"Replace\":{\"SeriesDescription\":\"x\"}}" | grep -q '^400 Cannot modify the following tag while splitting a study' || fail "Replace outside the modules"
err /studies/$ST1/split "{\"Series\":[\"$SE11\"],\"Replace\":{\"StudyInstanceUID\":\"1.2\"}}" | grep -q '^400 Cannot modify' || fail "Replace StudyInstanceUID"
http POST /studies/nope/split -d "{\"Series\":[\"$SE11\"]}" >/dev/null; [ "$(status)" = 404 ] || fail "split of an unknown study"
err /studies/$ST1/merge '{}' | grep -qx '400 List of strings expected in field: Resources' || fail "merge without Resources"
err /studies/$ST1/merge "{\"Resources\":[\"$ST1\"]}" | grep -q '^404 Cannot merge a study into the same study' || fail "merge into itself"
http POST /studies/$ST1/merge -d '{"Resources":["nope"]}' >/dev/null; [ "$(status)" = 404 ] || fail "merge of an unknown resource"
[ "$(http GET /instances | json 'len(j)')" = 8 ] || fail "a refused request wrote something"
[ "$(http GET /jobs | json 'len(j)')" = 0 ] || fail "a refused request made a job"
pass "errors"

# ---- split, synchronous, KeepSource, Replace, Remove ----
out=$(http POST /studies/$ST1/split -d "{\"Series\":[\"$SE12\"],\"KeepSource\":true,\"Replace\":{\"StudyDescription\":\"SPLIT\",\"PatientName\":\"Renamed^One\"},\"Remove\":[\"AccessionNumber\"]}")
[ "$(status)" = 200 ] || fail "split status $(status): $out"
echo "$out" | json 'j["Description"] == "REST API" and j["InstancesCount"] == 2 and j["FailedInstancesCount"] == 0 and j["TargetStudyUID"].startswith("2.25.")' | grep -qx True || fail "split answer: $out"
NEW=$(echo "$out" | json 'j["TargetStudy"]'); NEWUID=$(echo "$out" | json 'j["TargetStudyUID"]')
http GET /studies/$NEW | json 'j["MainDicomTags"]["StudyInstanceUID"] == "'$NEWUID'" and j["MainDicomTags"]["StudyDescription"] == "SPLIT" and "AccessionNumber" not in j["MainDicomTags"] and j["PatientMainDicomTags"]["PatientID"] == "PAT1" and len(j["Series"]) == 1' | grep -qx True || fail "split target study"
http GET /studies/$NEW/series | json 'j[0]["MainDicomTags"]["SeriesDescription"] == "Series2" and j[0]["MainDicomTags"]["SeriesInstanceUID"] != "1.2.826.0.1.87.1.2"' | grep -qx True || fail "split series gets a new UID"
NI=$(http GET /studies/$NEW/instances | json 'j[0]["ID"]')
http GET /instances/$NI/file > "$T/split.dcm"
$PY - "$T/split.dcm" "$NEWUID" <<'PY' || fail "split file"
import sys, pydicom
ds = pydicom.dcmread(sys.argv[1])
assert ds.StudyInstanceUID == sys.argv[2], ds.StudyInstanceUID
assert ds.SOPInstanceUID.startswith("2.25.") and ds.file_meta.MediaStorageSOPInstanceUID == ds.SOPInstanceUID
assert "AccessionNumber" not in ds and str(ds.PatientName) == "Renamed^One" and ds.StudyDescription == "SPLIT"
assert ds.Modality == "MR" and ds.SeriesDescription == "Series2"
PY
[ "$(http GET /studies/$ST1 | json 'len(j["Series"])')" = 2 ] || fail "KeepSource true keeps the source"
# without KeepSource, by instance: the instance leaves the source study
out=$(http POST /studies/$ST1/split -d "{\"Instances\":[\"$I121\"]}")
echo "$out" | json 'j["InstancesCount"]' | grep -qx 1 || fail "split by instance: $out"
http GET /instances/$I121 >/dev/null; [ "$(status)" = 404 ] || fail "split without KeepSource deletes the source instance"
[ "$(http GET /series/$SE12 | json 'len(j["Instances"])')" = 1 ] || fail "the rest of the source series stays"
pass "split"

# ---- merge, asynchronous job ----
out=$(http POST /studies/$ST1/merge -d "{\"Resources\":[\"$SE21\",\"$I221\"],\"Asynchronous\":true}")
JOB=$(echo "$out" | json 'j["ID"]'); echo "$out" | json 'j["Path"]' | grep -qx "/jobs/$JOB" || fail "merge job answer: $out"
for _ in $(seq 1 100); do [ "$(http GET /jobs/$JOB | json 'j["State"]')" = Success ] && break; sleep 0.1; done
http GET /jobs/$JOB | json 'j["Type"] == "MergeStudy" and j["Content"]["TargetStudy"] == "'$ST1'" and j["Content"]["InstancesCount"] == 3 and j["Progress"] == 100' | grep -qx True || fail "merge job: $(http GET /jobs/$JOB)"
http GET /series/$SE21 >/dev/null; [ "$(status)" = 404 ] || fail "merge without KeepSource deletes the sources"
[ "$(http GET /studies/$ST2 | json 'len(j["Series"])')" = 1 ] || fail "the rest of study 2 stays"
[ "$(http GET /studies/$ST1 | json 'len(j["Series"])')" = 4 ] || fail "two series merged into study 1"
[ "$(http POST /tools/find -d '{"Level":"Instance","Query":{"StudyInstanceUID":"1.2.826.0.1.87.1","PatientID":"PAT1"}}' | json 'len(j)')" = 6 ] || fail "merged instances under patient 1"
MI=$(http POST /tools/find -d '{"Level":"Instance","Query":{"StudyInstanceUID":"1.2.826.0.1.87.1","Modality":"CT","SOPInstanceUID":"2.25.*"}}' | json 'j')
[ "$(echo "$MI" | json 'len(j)')" = 2 ] || fail "two merged CT instances: $MI"
http GET /instances/$(echo "$MI" | json 'j[0]')/file > "$T/merge.dcm"
$PY - "$T/merge.dcm" <<'PY' || fail "merged file"
import sys, pydicom
ds = pydicom.dcmread(sys.argv[1])
assert ds.StudyInstanceUID == "1.2.826.0.1.87.1" and ds.PatientID == "PAT1" and str(ds.PatientName) == "Split^1", ds
assert ds.StudyDescription == "Study1" and ds.AccessionNumber == "ACC1"
assert ds.SeriesInstanceUID.startswith("2.25.") and ds.SOPInstanceUID.startswith("2.25.")
PY
# KeepSource true: a study merged whole stays where it was
out=$(http POST /studies/$ST1/merge -d "{\"Resources\":[\"$ST2\"],\"KeepSource\":true}")
echo "$out" | json 'j["InstancesCount"] == 1 and "TargetStudyUID" not in j' | grep -qx True || fail "merge KeepSource: $out"
http GET /studies/$ST2 >/dev/null; [ "$(status)" = 200 ] || fail "KeepSource keeps the merged study"
pass "merge"

# ---- Permissive: an instance whose file is gone fails; the job goes on and counts it ----
BAD=$(http GET /series/$SE12 | json 'j["Instances"][0]')
U=$(http GET /instances/$BAD | json 'j["FileUuid"]'); rm -f "$T/db/${U:0:2}/${U:2:2}/$U"
http POST /tools/invalidate-tags >/dev/null # the DICOM cache may still hold its parse
http POST /studies/$ST1/split -d "{\"Series\":[\"$SE12\"],\"KeepSource\":true}" >/dev/null
[ "$(status)" != 200 ] || fail "a missing file fails the split"
out=$(http POST /studies/$ST1/split -d "{\"Series\":[\"$SE11\",\"$SE12\"],\"Permissive\":true}")
echo "$out" | json 'j["InstancesCount"] == 3 and j["FailedInstancesCount"] == 1' | grep -qx True || fail "Permissive split: $out"
http GET /instances/$BAD >/dev/null; [ "$(status)" = 200 ] || fail "the failed instance stays"
[ "$(http GET /series/$SE11 >/dev/null; status)" = 404 ] || fail "the copied ones leave (KeepSource false)"
pass "Permissive"
