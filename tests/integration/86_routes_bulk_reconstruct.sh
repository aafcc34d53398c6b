#!/usr/bin/env bash
# Orthanc compatibility: /tools/bulk-content (order, duplicates, Level up and down, Metadata,
# unknown IDs skipped, errors), /tools/bulk-delete, /{level}/{id}/reconstruct and
# /tools/reconstruct (main tags rewritten from the files after the index was damaged by hand,
# on either index backend), /tools/invalidate-tags. Answers as Debian's Orthanc 1.10.1 gives.
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
            ds.PatientID = "PAT%d" % st; ds.PatientName = "Bulk^%d" % st
            ds.StudyInstanceUID = "1.2.826.0.1.86.%d" % st; ds.StudyDescription = "Study%d" % st
            ds.SeriesInstanceUID = "1.2.826.0.1.86.%d.%d" % (st, se); ds.Modality = "CT" if se == 1 else "MR"
            ds.SOPInstanceUID = "1.2.826.0.1.86.%d.%d.%d" % (st, se, i); ds.InstanceNumber = i
            ds.SOPClassUID = "1.2.840.10008.5.1.4.1.1.7"
            ds.is_little_endian = True; ds.is_implicit_VR = False
            ds.save_as(f"{sys.argv[1]}/f{k}.dcm", write_like_original=False); k += 1
PY
for k in 0 1 2 3 4 5 6 7; do upload "$T/f$k.dcm" >/dev/null; done
PAT1=$(http POST /tools/lookup -d PAT1 | json 'j[0]["ID"]')
ST1=$(http POST /tools/lookup -d 1.2.826.0.1.86.1 | json 'j[0]["ID"]')
SE11=$(http POST /tools/lookup -d 1.2.826.0.1.86.1.1 | json 'j[0]["ID"]')
I111=$(http POST /tools/lookup -d 1.2.826.0.1.86.1.1.1 | json 'j[0]["ID"]')
I211=$(http POST /tools/lookup -d 1.2.826.0.1.86.2.1.1 | json 'j[0]["ID"]')

# ---- bulk-content ----
out=$(http POST /tools/bulk-content -d "{\"Resources\":[\"$I111\",\"nope\",\"$ST1\",\"$I111\"]}")
[ "$(status)" = 200 ] || fail "bulk-content status $(status)"
echo "$out" | json '[x["Type"] for x in j]' | grep -qx '\["Instance", "Study", "Instance"\]' || fail "bulk-content order/duplicates: $out"
echo "$out" | json 'j[0]["Metadata"]["Origin"] == "RestApi" and j[0]["FileSize"] > 0 and j[1]["Metadata"]["LastUpdate"] != "" and j[1]["PatientMainDicomTags"]["PatientID"] == "PAT1"' | grep -qx True || fail "bulk-content summaries: $out"
out=$(http POST /tools/bulk-content -d "{\"Resources\":[\"$PAT1\",\"$I211\",\"$I111\"],\"Level\":\"Instance\",\"Metadata\":false}")
echo "$out" | json 'len(j) == 5 and [x["ID"] for x in j] == sorted(x["ID"] for x in j) and all("Metadata" not in x and x["Type"] == "Instance" for x in j)' | grep -qx True || fail "bulk-content Level down: $out"
out=$(http POST /tools/bulk-content -d "{\"Resources\":[\"$I111\",\"$SE11\"],\"Level\":\"Patient\"}")
echo "$out" | json 'len(j) == 1 and j[0]["ID"] == "'$PAT1'" and j[0]["Metadata"]["LastUpdate"] != ""' | grep -qx True || fail "bulk-content Level up: $out"
out=$(http POST /tools/bulk-content -d "{\"Resources\":[\"$ST1\"],\"Short\":true}")
echo "$out" | json 'j[0]["MainDicomTags"]["0008,1030"] == "Study1" and j[0]["PatientMainDicomTags"]["0010,0020"] == "PAT1"' | grep -qx True || fail "bulk-content Short: $out"
out=$(http POST /tools/bulk-content -d "{\"Resources\":[\"$ST1\"],\"Full\":true}")
echo "$out" | json 'j[0]["MainDicomTags"]["0008,1030"] == {"Name": "StudyDescription", "Type": "String", "Value": "Study1"} and j[0]["PatientMainDicomTags"]["0010,0010"]["Value"] == "Bulk^1"' | grep -qx True || fail "bulk-content Full: $out"
http POST /tools/bulk-content -d '{"Resources":"x"}' >/dev/null; [ "$(status)" = 400 ] || fail "Resources not a list"
http POST /tools/bulk-content -d '{"Resources":[1]}' | json 'j["OrthancError"]' | grep -qx 'Bad file format' || fail "Resources of numbers"
http POST /tools/bulk-content -d "{\"Resources\":[\"$I111\"],\"Level\":\"Foo\"}" | json 'j["OrthancStatus"]' | grep -qx 3 || fail "bad Level"
http POST /tools/bulk-content -d '[]' | json 'j["OrthancStatus"]' | grep -qx 8 || fail "body not an object"
pass "bulk-content"

# ---- reconstruct: damage the index by hand, then rebuild it from the files ----
index_sql "UPDATE main_tags SET value = 'BROKEN' WHERE tag IN ($((0x00081030)), $((0x00100010)), $((0x00080060)), $((0x00200013)))" >/dev/null
http GET /studies/$ST1 | json 'j["MainDicomTags"]["StudyDescription"]' | grep -qx BROKEN || fail "index not damaged"
[ "$(http POST /tools/find -d '{"Level":"Series","Query":{"Modality":"BROKEN"}}' | json 'len(j)')" = 4 ] || fail "damaged series"
http POST /instances/$I111/reconstruct >/dev/null; [ "$(status)" = 200 ] || fail "reconstruct status $(status)"
[ -z "$(cat "$T/body")" ] || fail "reconstruct answers an empty body"
http GET /instances/$I111 | json 'j["MainDicomTags"]["InstanceNumber"]' | grep -qx 1 || fail "instance reconstructed"
http GET /studies/$ST1 | json 'j["MainDicomTags"]["StudyDescription"] + "|" + j["PatientMainDicomTags"]["PatientName"]' | grep -qx 'Study1|Bulk^1' || fail "upper levels reconstructed"
http GET /instances/$(http POST /tools/lookup -d 1.2.826.0.1.86.1.2.2 | json 'j[0]["ID"]') | json 'j["MainDicomTags"]["InstanceNumber"]' | grep -qx BROKEN || fail "other series untouched by an instance reconstruct"
http POST /studies/$ST1/reconstruct >/dev/null; [ "$(status)" = 200 ] || fail "study reconstruct"
[ "$(http POST /tools/find -d '{"Level":"Series","Query":{"Modality":"BROKEN"}}' | json 'len(j)')" = 2 ] || fail "study reconstruct leaves the other study"
http POST /studies/nope/reconstruct >/dev/null; [ "$(status)" = 404 ] || fail "reconstruct unknown"
http POST /series/$I111/reconstruct >/dev/null; [ "$(status)" = 404 ] || fail "reconstruct wrong level"
http POST /tools/reconstruct >/dev/null; [ "$(status)" = 200 ] || fail "tools/reconstruct"
[ "$(http POST /tools/find -d '{"Level":"Series","Query":{"Modality":"BROKEN"}}' | json 'len(j)')" = 0 ] || fail "tools/reconstruct"
[ "$(http POST /tools/find -d '{"Level":"Instance","Query":{"Modality":"MR","InstanceNumber":"2"}}' | json 'len(j)')" = 2 ] || fail "find after reconstruct"
http GET /instances/$I211/metadata/Origin | grep -qx RestApi || fail "metadata kept by reconstruct"
http POST /tools/invalidate-tags >/dev/null; [ "$(status)" = 200 ] || fail invalidate-tags
http GET /instances/$I211/tags?simplify | json 'j["PatientName"]' | grep -qx 'Bulk^2' || fail "tags after invalidate-tags"
pass "reconstruct, invalidate-tags"

# ---- bulk-delete ----
http POST /tools/bulk-delete -d "{\"Resources\":[\"nope\",\"$SE11\",\"$I211\"]}" >/dev/null
[ "$(status)" = 200 ] || fail "bulk-delete status $(status)"
[ "$(http GET /instances | json 'len(j)')" = 5 ] || fail "bulk-delete removed 3 instances"
http GET /series/$SE11 >/dev/null; [ "$(status)" = 404 ] || fail "deleted series"
http POST /tools/bulk-delete -d '{"Resources":{}}' >/dev/null; [ "$(status)" = 400 ] || fail "bulk-delete bad body"
http POST /tools/bulk-delete -d "{\"Resources\":[\"$PAT1\"]}" >/dev/null
[ "$(http GET /patients | json 'len(j)')" = 1 ] || fail "bulk-delete patient"
[ "$(http GET /statistics | json 'j["CountInstances"]')" = 3 ] || fail "statistics after bulk-delete"
pass "bulk-delete"
