#!/usr/bin/env bash
# Anonymize/modify options: Keep, Replace, Remove, KeepPrivateTags change the outcome; invalid
# options are 400 with Orthanc's JSON error and create no job; Force guards identifiers; modify.
source "$(dirname "$0")/lib.sh"
start_server
$PY "$MP_SRC/tests/tools/gen_study.py" "$T/in" 2 --size 32 >/dev/null
$PY - "$T/in" <<'PY'
import glob, sys, pydicom
for f in glob.glob(sys.argv[1] + "/*.dcm"):
    ds = pydicom.dcmread(f)
    ds.add_new(0x00091010, "LO", "minipacs-test")
    ds.add_new(0x00091011, "LO", "PRIVATE-VALUE")
    ds.save_as(f)
PY
for f in "$T"/in/*.dcm; do upload "$f" >/dev/null; done
S=$(http GET /studies | json 'j[0]')
I=$(http GET /instances | json 'j[0]')
# anon_dump BODY: anonymizes the instance with BODY, prints dcmdump of the answer
anon_dump() {
  curl -sf -X POST "$URL/instances/$I/anonymize" -d "$1" -o "$T/a.dcm" || fail "anonymize $1"
  dcmdump -q +L "$T/a.dcm"
}
d=$(anon_dump '{}')
grep -q "StudyDescription" <<<"$d" && fail "default: StudyDescription kept"
grep -q "PRIVATE-VALUE" <<<"$d" && fail "default: private tag kept"
grep -q "(0008,0060) CS \[CT\]" <<<"$d" || fail "default: Modality lost"
d=$(anon_dump '{"Keep": ["StudyDescription", "0008,103e"]}')
grep -q "StudyDescription.*\|Generated CT" <<<"$d" || fail "Keep StudyDescription"
grep -q "Generated CT" <<<"$d" || fail "Keep StudyDescription value"
grep -q "Axial" <<<"$d" || fail "Keep by tag number"
pass "Keep"
d=$(anon_dump '{"Replace": {"PatientName": "Jane^Doe", "InstitutionName": "Nowhere", "0008-1030": "Replaced desc"}}')
grep -q "(0010,0010) PN \[Jane^Doe\]" <<<"$d" || fail "Replace PatientName: $d"
grep -q "(0008,0080) LO \[Nowhere\]" <<<"$d" || fail "Replace inserts/overrides InstitutionName"
grep -q "\[Replaced desc\]" <<<"$d" || fail "Replace by tag number"
pass "Replace"
d=$(anon_dump '{"Remove": ["Modality"]}')
grep -q "(0008,0060)" <<<"$d" && fail "Remove Modality"
pass "Remove"
d=$(anon_dump '{"KeepPrivateTags": true}')
grep -q "PRIVATE-VALUE" <<<"$d" || fail "KeepPrivateTags"
pass "KeepPrivateTags"
d=$(anon_dump '{"Replace": {"PatientID": "NEWID"}, "Force": true}')
grep -q "(0010,0020) LO \[NEWID\]" <<<"$d" || fail "Replace PatientID with Force"
pass "Force lets identifiers be replaced"

# Invalid options: 400, Orthanc's error JSON, no job created
jobs_before=$(http GET /jobs | json 'len(j)')
bad() {
  local body=$1 path=${2:-/studies/$S/anonymize}
  r=$(http POST "$path" -d "$body")
  [ "$(status)" = 400 ] || fail "expected 400 for $body on $path, got $(status): $r"
  for k in HttpError HttpStatus Message Method OrthancError OrthancStatus Uri; do
    echo "$r" | json "'$k' in j" | grep -qx True || fail "error JSON lacks $k: $r"; done
}
bad '{"DicomVersion": "2019a"}'
bad '{"DicomVersion": 2023}'
bad '{"Keep": ["NoSuchTagAtAll"]}'
bad '{"Keep": "StudyDescription"}'
bad '{"Remove": [12]}'
bad '{"Replace": {"StudyInstanceUID": "1.2.3"}}'
bad '{"Keep": ["SeriesInstanceUID"]}'
bad '{"Replace": {"PixelData": "x"}}'
bad '{"Replace": {"StudyDescription": ["a"]}}'
bad '{"Keep": ["StudyDescription"], "Remove": ["StudyDescription"]}'
bad '{"Priority": "high"}'
bad '{"Asynchronous": "yes"}'
bad '[1, 2]'
bad 'not json'
bad '{"Replace": {"PatientID": "X"}}' "/studies/$S/modify"
bad '{"Replace": {"PatientName": "X"}, "Force": true}' "/patients/$(http GET /patients | json 'j[0]')/modify"
[ "$(http GET /jobs | json 'len(j)')" = "$jobs_before" ] || fail "a bad request created a job"
http POST /studies/00000000-00000000-00000000-00000000-00000000/anonymize -d '{}' >/dev/null
[ "$(status)" = 404 ] || fail "unknown study: $(status)"
r=$(http POST "/studies/$S/anonymize" -d '{"DicomVersion": "2023b"}')
[ "$(status)" = 200 ] || fail "DicomVersion 2023b refused: $r"
pass "invalid options are 400 with no job"

# Modify: a new study with ModifiedFrom; identifiers need Force; the source stays
r=$(http POST "/studies/$S/modify" -d '{"Replace": {"StudyDescription": "Modified"}, "Remove": ["AccessionNumber"]}')
[ "$(status)" = 200 ] || fail "modify: $r"
M=$(echo "$r" | json 'j["ID"]')
st=$(http GET "/studies/$M")
[ "$(echo "$st" | json 'j["ModifiedFrom"]')" = "$S" ] || fail "ModifiedFrom: $st"
[ "$(echo "$st" | json 'j["MainDicomTags"]["StudyDescription"]')" = Modified ] || fail "modified StudyDescription"
echo "$st" | json 'j["MainDicomTags"].get("AccessionNumber")' | grep -qx None || fail "AccessionNumber not removed"
[ "$(echo "$st" | json 'j["PatientMainDicomTags"]["PatientName"]')" = "$(http GET "/studies/$S" | json 'j["PatientMainDicomTags"]["PatientName"]')" ] || fail "modify changed PatientName"
[ "$(http GET "/studies/$S" | json 'j["MainDicomTags"]["StudyDescription"]')" = "Generated CT" ] || fail "source modified"
r=$(http POST "/studies/$S/modify" -d '{"Replace": {"PatientID": "OTHER"}, "Force": true}')
[ "$(status)" = 200 ] || fail "modify PatientID with Force: $r"
[ "$(http GET "/patients/$(echo "$r" | json 'j["PatientID"]')" | json 'j["MainDicomTags"]["PatientID"]')" = OTHER ] || fail "new PatientID"
P=$(http GET "/studies/$S" | json 'j["ParentPatient"]')
r=$(http POST "/patients/$P/modify" -d '{"Replace": {"PatientID": "PAT2", "PatientName": "Two^Pat"}, "Force": true}')
[ "$(status)" = 200 ] || fail "patient modify: $r"
[ "$(echo "$r" | json 'j["Type"]')" = Patient ] || fail "patient modify Type"
pass "modify with Replace/Remove/Force"

# Modify of one instance answers the modified file: private tags stay unless RemovePrivateTags.
curl -sf -X POST "$URL/instances/$I/modify" -d '{"Replace": {"StudyDescription": "M"}}' -o "$T/m.dcm" || fail "instance modify"
dcmdump -q +L "$T/m.dcm" > "$T/m.txt"; grep -q "PRIVATE-VALUE" "$T/m.txt" || fail "modify dropped the private tags without RemovePrivateTags"
curl -sf -X POST "$URL/instances/$I/modify" -d '{"RemovePrivateTags": true}' -o "$T/m.dcm" || fail "modify RemovePrivateTags"
d=$(dcmdump -q +L "$T/m.dcm")
grep -q "PRIVATE-VALUE\|minipacs-test" <<<"$d" && fail "RemovePrivateTags kept private tags: $(echo "$d" | grep -i '(0009,')"
grep -q "(0008,0060) CS \[CT\]" <<<"$d" || fail "RemovePrivateTags lost Modality"
pass "modify: private tags kept by default, removed with RemovePrivateTags"
