#!/usr/bin/env bash
# Orthanc compatibility of /tools/find and /tools/lookup, expectations taken from Debian's
# Orthanc 1.10.1 on the same files: PatientID collisions (each study keeps its own patient
# tags: queries above the patient level match them, /studies/{id} shows them), case folding of
# every tag unless CaseSensitive, '\' lists compared item by item without wildcards, brackets
# and stars in PN and LO values, wildcards refused on dates, a lower level's main tag matching
# nothing, ModalitiesInStudy, answers sorted by ID with Since/Limit paging them, a tag read from
# the files, and a case-insensitive identifier lookup.
source "$(dirname "$0")/lib.sh"
start_server
$PY - "$T" <<'PY'
import sys
from pydicom.dataset import Dataset, FileMetaDataset
from pydicom.uid import ExplicitVRLittleEndian
rows = [
 ("COL", "Alpha^One", "1.9.1", "1.9.1.1", "CT", "20200115", "Head [x]", "1.2.840.10008.5.1.4.1.1.2", "A1"),
 ("COL", "Beta^Two",  "1.9.2", "1.9.2.1", "MR", "20210101", "Knee*star", "1.2.840.10008.5.1.4.1.1.4", "A2"),
 ("COL", "Beta^Two",  "1.9.2", "1.9.2.2", "CT", "20210101", "Knee*star", "1.2.840.10008.5.1.4.1.1.2", "A2"),
 ("P2",  "de Gaulle^Charles", "1.9.3", "1.9.3.1", "US", "20190505", "abc", "1.2.840.10008.5.1.4.1.1.6.1", "A3"),
 ("P3",  "[Bracket]^Name", "1.9.4", "1.9.4.1", "MR", "", "Other", "1.2.840.10008.5.1.4.1.1.4", ""),
 ("P4",  "star*name", "1.9.5", "1.9.5.1", "SR", "20221231", "x?y", "1.2.840.10008.5.1.4.1.1.88.11", "A5"),
]
for k, (pid, name, st, se, mod, date, desc, sop, acc) in enumerate(rows):
    ds = Dataset(); ds.file_meta = FileMetaDataset(); ds.file_meta.TransferSyntaxUID = ExplicitVRLittleEndian
    ds.PatientID = pid; ds.PatientName = name; ds.StudyInstanceUID = st; ds.SeriesInstanceUID = se
    ds.SOPInstanceUID = se + ".1"; ds.Modality = mod; ds.StudyDate = date; ds.StudyDescription = desc
    ds.InstanceNumber = str(k + 1); ds.SOPClassUID = sop; ds.AccessionNumber = acc; ds.PatientSex = "M" if k % 2 else "F"
    ds.BodyPartExamined = "HEAD" if k < 3 else "KNEE"; ds.ImageComments = "comment %d" % k
    ds.SliceThickness = "1.5" if k < 3 else "3"
    ds.file_meta.MediaStorageSOPClassUID = sop; ds.file_meta.MediaStorageSOPInstanceUID = ds.SOPInstanceUID
    ds.is_little_endian = True; ds.is_implicit_VR = False
    ds.save_as(f"{sys.argv[1]}/f{k}.dcm", write_like_original=False)
PY
for k in 0 1 2 3 4 5; do upload "$T/f$k.dcm" >/dev/null; done
# the IDs Orthanc gives these studies (SHA-1s of PatientID|StudyInstanceUID)
S1=9422271d-89ebf8a3-cf430f46-8bde292c-b640913f  # COL 1.9.1 Alpha
S2=ac5d4318-0dcdc006-05521f5a-92cfd088-1c4839e7  # COL 1.9.2 Beta
S3=aee85b49-94b56a63-80a651cd-a8be5c8d-a48e9e5d  # P2
S4=d2a3b1e1-895b57a9-faf79d11-b0627715-9221eb8a  # P3, no StudyDate
S5=57f0ab83-a719301b-e5d2b4e8-89ddf407-30cbecf3  # P4
find_() { http POST /tools/find -d "$1"; }
ids() { find_ "$1" | json '",".join(j)'; }
expect() { local got; got=$(ids "$1"); [ "$got" = "$2" ] || fail "$3: $1 -> $got (want $2)"; }

# ---- PatientID collisions: each study keeps the patient tags of its own files ----
expect '{"Level":"Study","Query":{"PatientName":"Alpha*"}}' "$S1" "collision, study 1"
expect '{"Level":"Study","Query":{"PatientName":"beta^two"}}' "$S2" "collision, study 2"
expect '{"Level":"Study","Query":{"PatientID":"COL","PatientName":"Alpha^One"}}' "$S1" "collision, both tags"
expect '{"Level":"Study","Query":{"PatientSex":"M"}}' "$S5,$S2,$S3" "collision, PatientSex of the study's first file"
[ "$(find_ '{"Level":"Series","Query":{"PatientName":"Beta*"}}' | json 'len(j)')" = 2 ] || fail "collision, series level"
[ "$(find_ '{"Level":"Instance","Query":{"PatientName":"Alpha*"}}' | json 'len(j)')" = 1 ] || fail "collision, instance level"
http GET /studies/$S2 | json 'j["PatientMainDicomTags"]["PatientName"] + "|" + str("PatientName" in j["MainDicomTags"])' | grep -qx 'Beta^Two|False' || fail "/studies shows the study's own patient tags"
http GET /studies/$S1 | json 'j["PatientMainDicomTags"]["PatientName"]' | grep -qx 'Alpha^One' || fail "/studies of study 1"
[ "$(find_ '{"Level":"Patient","Query":{"PatientName":"Alpha*"}}' | json 'len(j)')" = 1 ] || fail "patient level: the patient's tags"
pass "PatientID collisions"

# ---- case folding, CaseSensitive ----
[ "$(find_ '{"Level":"Patient","Query":{"PatientID":"col"}}' | json 'len(j)')" = 1 ] || fail "LO folded"
[ "$(find_ '{"Level":"Patient","Query":{"PatientID":"col"},"CaseSensitive":true}' | json 'len(j)')" = 0 ] || fail "CaseSensitive LO"
[ "$(find_ '{"Level":"Series","Query":{"Modality":"ct"}}' | json 'len(j)')" = 2 ] || fail "CS folded"
[ "$(find_ '{"Level":"Study","Query":{"PatientName":"beta^two"},"CaseSensitive":true}' | json 'len(j)')" = 0 ] || fail "CaseSensitive PN"
expect '{"Level":"Study","Query":{"StudyDescription":"ABC"}}' "$S3" "LO folded, study"
[ "$(find_ '{"Level":"Instance","Query":{"BodyPartExamined":"knee"}}' | json 'len(j)')" = 3 ] || fail "folded"
pass "case folding"

# ---- brackets, stars, lists ----
expect '{"Level":"Study","Query":{"StudyDescription":"Head [x]"}}' "$S1" "brackets literal"
expect '{"Level":"Study","Query":{"StudyDescription":"Head [*"}}' "$S1" "bracket and star"
expect '{"Level":"Study","Query":{"StudyDescription":"*[x]"}}' "$S1" "star then brackets"
expect '{"Level":"Study","Query":{"StudyDescription":"Knee*star"}}' "$S2" "a star in a value matches itself"
expect '{"Level":"Study","Query":{"StudyDescription":"x?y"}}' "$S5" "question mark"
[ "$(find_ '{"Level":"Patient","Query":{"PatientName":"[Bracket]*"}}' | json 'len(j)')" = 1 ] || fail "PN brackets"
[ "$(find_ '{"Level":"Patient","Query":{"PatientName":"[bracket]^name"}}' | json 'len(j)')" = 1 ] || fail "PN brackets folded"
[ "$(find_ '{"Level":"Patient","Query":{"PatientName":"*]^*"}}' | json 'len(j)')" = 1 ] || fail "PN ] between stars"
[ "$(find_ '{"Level":"Patient","Query":{"PatientName":"star*"}}' | json 'len(j)')" = 1 ] || fail "PN star"
[ "$(find_ '{"Level":"Patient","Query":{"PatientName":"*gaulle*"}}' | json 'len(j)')" = 1 ] || fail "PN inner"
[ "$(find_ '{"Level":"Patient","Query":{"PatientName":"?e*"}}' | json 'len(j)')" = 1 ] || fail "PN ? (the patient's own name: Alpha, not Beta)"
[ "$(find_ '{"Level":"Patient","Query":{"PatientName":"STAR\\*"}}' | json 'len(j)')" = 0 ] || fail "list items have no wildcards"
[ "$(find_ '{"Level":"Study","Query":{"StudyDescription":"Knee\\*star"}}' | json 'len(j)')" = 0 ] || fail "list items compared whole"
[ "$(find_ '{"Level":"Study","Query":{"StudyDescription":"knee*STAR\\x?y"}}' | json 'len(j)')" = 2 ] || fail "list items compared whole, folded"
[ "$(find_ '{"Level":"Patient","Query":{"PatientID":"P2\\P4"}}' | json 'len(j)')" = 2 ] || fail "list"
pass "brackets, stars, lists"

# ---- dates, levels, ModalitiesInStudy, files ----
find_ '{"Level":"Study","Query":{"StudyDate":"2021*"}}' | json 'j["HttpStatus"], j["OrthancStatus"], j["Details"]' | grep -qx "(400, 3, 'Wildcards are not allowed on tag 0008,0020')" || fail "wildcard on DA"
http POST /tools/find -d '{"Level":"Study","Query":{"StudyTime":"*"}}' >/dev/null; [ "$(status)" = 400 ] || fail "* on TM"
expect '{"Level":"Study","Query":{"StudyDate":"20200101-20211231"}}' "$S1,$S2" "DA range"
expect '{"Level":"Study","Query":{"StudyDate":""}}' "$S5,$S1,$S2,$S3,$S4" "empty = universal, sorted"
[ "$(find_ '{"Level":"Study","Query":{"BodyPartExamined":"HEAD"}}' | json 'len(j)')" = 0 ] || fail "a series tag at study level matches nothing"
[ "$(find_ '{"Level":"Series","Query":{"BodyPartExamined":"HEAD"}}' | json 'len(j)')" = 3 ] || fail "series tag at series level"
[ "$(find_ '{"Level":"Study","Query":{"ImageComments":"comment 0"}}' | json 'len(j)')" = 0 ] || fail "an instance tag at study level matches nothing"
expect '{"Level":"Study","Query":{"ModalitiesInStudy":"CT"}}' "$S1,$S2" ModalitiesInStudy
expect '{"Level":"Study","Query":{"ModalitiesInStudy":"MR\\US"}}' "$S2,$S3,$S4" "ModalitiesInStudy list"
[ "$(find_ '{"Level":"Series","Query":{"ModalitiesInStudy":"CT"}}' | json 'len(j)')" = 0 ] || fail "ModalitiesInStudy below the study level: no series has it"
[ "$(find_ '{"Level":"Instance","Query":{"SliceThickness":"1.5"}}' | json 'len(j)')" = 3 ] || fail "a tag from the files"
[ "$(find_ '{"Level":"Study","Query":{"SliceThickness":"3"}}' | json 'len(j)')" = 3 ] || fail "a tag from the files, study level"
# a tag outside the main tags is read from the first instance of the resource, as Orthanc
expect '{"Level":"Study","Query":{"SOPClassUID":"1.2.840.10008.5.1.4.1.1.4"}}' "$S2,$S4" "file tag, study level (first instance)"
[ "$(find_ '{"Level":"Patient","Query":{"SOPClassUID":"1.2.840.10008.5.1.4.1.1.4"}}' | json 'len(j)')" = 1 ] || fail "file tag, patient level (first instance)"
pass "dates, levels, ModalitiesInStudy, files"

# ---- sorted answers, Since/Limit ----
expect '{"Level":"Study","Query":{},"Limit":2}' "$S5,$S1" "Limit"
expect '{"Level":"Study","Query":{},"Since":2,"Limit":2}' "$S2,$S3" "Since + Limit"
expect '{"Level":"Study","Query":{},"Since":4}' "$S4" "Since"
expect '{"Level":"Study","Query":{},"Since":10}' "" "Since past the end"
# exact where Orthanc 1.10.1 is not (it ignores Since with ModalitiesInStudy, and answers
# nothing to Since + Limit)
expect '{"Level":"Study","Query":{"ModalitiesInStudy":"CT\\MR"},"Since":1}' "$S2,$S4" "Since after a computed filter"
expect '{"Level":"Study","Query":{"ModalitiesInStudy":"CT\\MR"},"Since":1,"Limit":1}' "$S2" "Since/Limit after a computed filter"
[ "$(find_ '{"Level":"Instance","Query":{"ImageComments":"comment*"},"Since":3,"Limit":2}' | json 'len(j)')" = 2 ] || fail "Since/Limit on instances"
all=$(ids '{"Level":"Instance","Query":{"SliceThickness":"*"}}'); page=$(ids '{"Level":"Instance","Query":{"SliceThickness":"*"},"Since":2,"Limit":3}')
[ "$page" = "$(echo "$all" | cut -d, -f3-5)" ] || fail "pages are slices of the whole answer"
find_ '{"Level":"Study","Query":{"PatientID":"P2"},"Expand":true,"Short":true}' | json 'j[0]["MainDicomTags"]["0008,1030"] == "abc" and j[0]["PatientMainDicomTags"]["0010,0020"] == "P2"' | grep -qx True || fail "Expand + Short"
find_ '{"Level":"Study","Query":{"PatientID":"P2"},"Expand":true,"Full":true}' | json 'j[0]["MainDicomTags"]["0008,0050"] == {"Name": "AccessionNumber", "Type": "String", "Value": "A3"}' | grep -qx True || fail "Expand + Full"
pass "sorted answers, Since/Limit"

# ---- lookup ----
http POST /tools/lookup -d col | json 'len(j) == 1 and j[0]["Type"] == "Patient" and j[0]["Path"] == "/patients/" + j[0]["ID"]' | grep -qx True || fail "lookup folded"
http POST /tools/lookup -d ' 1.9.1 ' | json '[x["Type"] for x in j]' | grep -qx '\["Study"\]' || fail "lookup trimmed"
[ "$(http POST /tools/lookup -d '1.9.1\1.9.2' | json 'len(j)')" = 0 ] || fail "lookup of a list"
[ "$(http POST /tools/lookup -d nope | json 'len(j)')" = 0 ] || fail "lookup unknown"
pass "lookup"
