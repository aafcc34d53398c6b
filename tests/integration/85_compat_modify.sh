#!/usr/bin/env bash
# Modify/anonymize as Orthanc 1.10.1 answers them (each case compared request by request with
# Debian's Orthanc): private tags by Dictionary name land on gggg,10ee (never on the creator
# slot), PrivateCreator / DefaultPrivateCreator give private VRs (unknown: UN), AT values,
# sequences as JSON arrays, tag paths Seq[i].Tag / Seq[*].Tag / nested / (gggg,eeee), Keep of a
# whole sequence, the profile inside sequences (non-text Z/D elements removed, D emptied),
# DicomVersion 2008/2017c/2021b,
# replaced UIDs followed into reference sequences, the modified level following the identifiers
# replaced, DeidentificationMethod only for the plain profile.
source "$(dirname "$0")/lib.sh"
write_config '"DefaultPrivateCreator": "DefCreator",
  "Dictionary": {
    "0009,1010": ["LO", "MyPrivName", 1, 1, "MyCreator"],
    "0009,1012": ["UL", "MyPrivNum", 1, 1, "MyCreator"],
    "0011,1001": ["LO", "DefPrivName", 1, 1, "DefCreator"]
  }'
start_server
$PY "$MP_SRC/tests/tools/gen_compat.py" "$T/a.dcm" "$T/b.dcm"
A=$(upload "$T/a.dcm" | json 'j["ID"]')
B=$(upload "$T/b.dcm" | json 'j["ID"]')
# The requests are sent first (req), their answers dumped by one Python run, then checked
# (run: the next answer's dump, path VR value, in $T/d), so Python starts once.
mkdir -p "$T/o"; NREQ=0; NRUN=0
# req OP BODY [ID]: POST /instances/ID/OP, the answer kept for the matching run
req() {
  local code
  NREQ=$((NREQ + 1))
  code=$(curl -s -o "$T/o/$NREQ.dcm" -w '%{http_code}' -X POST "$URL/instances/${3:-$A}/$1" -d "$2")
  [ "$code" = 200 ] || fail "$1 $2: HTTP $code $(cat "$T/o/$NREQ.dcm")"
}
run() { NRUN=$((NRUN + 1)); cp "$T/o/$NRUN.txt" "$T/d"; }
has() { grep -qxF -- "$1" "$T/d" || fail "$CASE: expected line '$1' in:
$(cat "$T/d")"; }
hasnt() { ! grep -q -- "^$1" "$T/d" || fail "$CASE: unexpected '$1' in:
$(grep -- "^$1" "$T/d")"; }
bad() {
  local r; r=$(http POST "/instances/$A/${2:-modify}" -d "$1")
  [ "$(status)" = 400 ] || fail "expected 400 for $1, got $(status): $r"
}

req modify '{"Replace":{"MyPrivName":"new"},"Force":true}'
req modify '{"Replace":{"MyPrivNum":"12"},"PrivateCreator":"MyCreator"}'
req modify '{"Replace":{"0011,1001":"x"}}'
req modify '{"Replace":{"DefPrivName":"y"}}'
req modify '{"Replace":{"0013,1001":"x"},"PrivateCreator":"Foo"}'
req modify '{"Replace":{"0028,9999":"ab"}}'
req modify '{"Replace":{"DimensionIndexPointer":"0020,9057"}}'
req modify '{"Replace":{"DimensionIndexPointer":"PatientName"}}'
req modify '{"Replace":{"RequestAttributesSequence":[{"RequestedProcedureID":"A"},{"RequestedProcedureID":"B","ReferencedStudySequence":[{"ReferencedSOPInstanceUID":"1.2"}]}]}}'
req modify '{"Replace":{"RequestAttributesSequence[0].RequestedProcedureID":"NEW"}}'
req modify '{"Replace":{"RequestAttributesSequence[*].RequestedProcedureID":"NEW"}}'
req modify '{"Replace":{"(0040,0275)[1].(0040,1001)":"P"}}'
req modify '{"Replace":{"0040,0275[1].StudyDescription":"D"}}'
req modify '{"Replace":{"RequestAttributesSequence[5].RequestedProcedureID":"N","ReferencedStudySequence[0].PatientName":"x"}}'
req modify '{"Remove":["ReferencedSeriesSequence[0].ReferencedInstanceSequence[0].ReferencedSOPClassUID","RequestAttributesSequence[*].RequestedProcedureID"]}'
req modify '{"Replace":{"RequestAttributesSequence[0].MyPrivName":"NEW"}}'
req anonymize '{"Keep":["RequestAttributesSequence"]}'
req anonymize '{}' "$B"
req anonymize '{"Keep":["AnatomicRegionSequence[0].FlowIdentifier","AnatomicRegionSequence[*].PatientBirthDate"]}' "$B"
for body in '{"KeepPrivateTags":true}' '{"Remove":["StudyID"]}' '{"Replace":{"StudyID":"1"}}'; do req anonymize "$body"; done
req anonymize '{"Replace":{"SeriesInstanceUID":"9.9.2","StudyInstanceUID":"9.9.1","SOPInstanceUID":"9.9.3"},"Force":true}'
req modify '{"Replace":{"SeriesInstanceUID":"9.9.2","StudyInstanceUID":"9.9.1","SOPInstanceUID":"9.9.3"},"Force":true}'
req modify '{"Replace":{"StudyInstanceUID":"9.9.1"},"Force":true}'
req modify '{"Replace":{"PatientID":"P2"},"Force":true}'
req modify '{"Replace":{"SeriesInstanceUID":"9.9.2"},"Force":true}'
for v in 2008 2017c 2021b; do req anonymize "{\"DicomVersion\":\"$v\"}" "$B"; done
$PY "$MP_SRC/tests/tools/dump_paths.py" "$T"/o/*.dcm
CASE="private by name"; run
has "0009,0010 LO MyCreator"; has "0009,1010 LO new"; has "0009,1012 UL 7"
has "0040,0275[0].0009,1010 LO nested-private"
CASE="private by name, PrivateCreator"; run
has "0009,0010 LO MyCreator"; has "0009,1012 UL 12"; hasnt "0009,0012"
CASE="private by number, DefaultPrivateCreator"; run
has "0011,1001 LO x"; has "0011,0010 LO DefCreator"
CASE="private by DefaultPrivateCreator name"; run
has "0011,1001 LO y"
CASE="private, unknown creator: UN"; run
has "0013,1001 UN 7800"; has "0013,0010 LO Foo"
CASE="unknown public tag: UN"; run
has "0028,9999 UN 6162"
pass "private tags and unknown VRs"

CASE="AT"; run
has "0020,9165 AT 0020,9057"
run; has "0020,9165 AT 0010,0010"
bad '{"Replace":{"DimensionIndexPointer":"nonsense"}}'
pass "AT values"

CASE="sequence as JSON"; run
has "0040,0275 SQ 2"; has "0040,0275[0].0040,1001 SH A"; hasnt "0040,0275\[0\].0040,0009"
has "0040,0275[1].0008,1110[0].0008,1155 UI 1.2"
bad '{"Replace":{"RequestAttributesSequence":[1,2]}}'
bad '{"Replace":{"PatientName":[{"PatientID":"x"}]}}'
pass "sequences given as JSON arrays"

CASE="path [0]"; run
has "0040,0275[0].0040,1001 SH NEW"; has "0040,0275[1].0040,1001 SH RP2"
CASE="path [*]"; run
has "0040,0275[0].0040,1001 SH NEW"; has "0040,0275[1].0040,1001 SH NEW"
CASE="path (gggg,eeee)"; run
has "0040,0275[1].0040,1001 SH P"; has "0040,0275[0].0040,1001 SH RP1"
CASE="path inserts"; run
has "0040,0275[1].0008,1030 LO D"
CASE="path missing item"; run
has "0040,0275 SQ 2"; hasnt "0008,1110"; hasnt "0040,0275\[.\].0040,1001 SH N$"
CASE="nested remove"; run
hasnt "0008,1115\[0\].0008,114a\[0\].0008,1150"; has "0008,1115[0].0008,114a[0].0008,1155 UI 1.2.3.4.5.3.2"
hasnt "0040,0275\[.\].0040,1001"; has "0040,0275[1].0040,0009 SH SP2"
CASE="private name in a path"; run
has "0040,0275[0].0009,1010 LO NEW"; has "0040,0275[0].0009,0010 LO MyCreator"; has "0009,1010 LO orig-private"
bad '{"Remove":["RequestAttributesSequence[0]"]}'
bad '{"Replace":{"NoSuchSeq[0].PatientName":"x"}}'
bad '{"Keep":["RequestAttributesSequence[x].PatientName"]}' anonymize
pass "tag paths"

CASE="anonymize, Keep sequence"; run
for l in "0040,0275[0].0008,0080 LO NestedHosp" "0040,0275[0].0009,1010 LO nested-private" \
         "0040,0275[0].0010,0030 DA 19700101" "0040,0275[0].0020,000d UI 1.2.3.4.5.1"; do has "$l"; done
hasnt "0012,0063"
CASE="anonymize plain"; run
hasnt "0040,0275"; hasnt "0009,"; has "0010,0030 DA -"; has "0070,0084 PN -"
has "0034,0002 OB -"; has "0040,a073 SQ 0"
hasnt "0008,2218\[0\].0034,000"; hasnt "0008,2218\[0\].0040,a073"; hasnt "0008,2218\[0\].0009"
has "0008,2218[0].0010,0030 DA -"; has "0008,2218[0].0070,0084 PN -"; hasnt "0008,2218\[0\].0008,0080"
has "0008,2218[0].0008,0100 SH T-1"
grep -q "^0012,0063 LO .*PS 3.15-2023b Table E.1-1 Basic Profile" "$T/d" || fail "plain profile: DeidentificationMethod"
CASE="anonymize, nested Keep"; run
has "0008,2218[0].0034,0002 OB 0304"; has "0008,2218[0].0010,0030 DA 19800101"; hasnt "0008,2218\[0\].0034,0007"
hasnt "0012,0063"
for body in '{"KeepPrivateTags":true}' '{"Remove":["StudyID"]}' '{"Replace":{"StudyID":"1"}}'; do
  CASE="no DeidentificationMethod with $body"; run; hasnt "0012,0063"; done
pass "anonymization inside sequences, Keep of a sequence, DeidentificationMethod"

CASE="UID references"; run
has "0020,000e UI 9.9.2"; has "0008,1115[0].0020,000e UI 9.9.2"; has "0008,2112[0].0008,1155 UI 9.9.3"
run
has "0008,1115[0].0020,000e UI 9.9.2"; has "0008,2112[0].0008,1155 UI 9.9.3"; has "0040,0275[0].0020,000d UI 9.9.1"
has "0008,1115[0].0008,114a[0].0008,1155 UI 1.2.3.4.5.3.2"
pass "replaced UIDs followed into sequences"

CASE="level follows identifiers"; run
has "0020,000d UI 9.9.1"; hasnt "0020,000e UI 1.2.3.4.5.2"; hasnt "0008,0018 UI 1.2.3.4.5.3.1"
run
hasnt "0020,000d UI 1.2.3.4.5.1"; hasnt "0020,000e UI 1.2.3.4.5.2"
run
has "0020,000d UI 1.2.3.4.5.1"; has "0020,000e UI 9.9.2"
# a series modified with a new StudyInstanceUID gets a new study: new series UIDs too
SE=$(http GET "/instances/$A/series" | json 'j["ID"]')
r=$(curl -sf -X POST "$URL/series/$SE/modify" -d '{"Replace":{"StudyInstanceUID":"9.9.9"},"Force":true}') || fail "series modify"
NS=$(echo "$r" | json 'j["ID"]')
http GET "/series/$NS" | json 'j["MainDicomTags"]["SeriesInstanceUID"]' | grep -qvx "1.2.3.4.5.2" || fail "series UID kept"
http GET "/series/$NS/study" | json 'j["MainDicomTags"]["StudyInstanceUID"]' | grep -qx "9.9.9" || fail "new study UID"
pass "the modified level follows the identifiers replaced"

# DicomVersion: the basic profile of each edition as Orthanc 1.10.1 applies it
CASE="DicomVersion 2008"; run
hasnt "0010,0030"; has "0008,0020 DA 20200101"; hasnt "0020,0010"; hasnt "0008,0050"; has "0070,0084 PN Creator^Top"
grep -q "^0012,0063 LO .*PS 3.15-2008 Table E.1-1 Basic Profile" "$T/d" || fail "2008: DeidentificationMethod"
for v in 2017c 2021b; do
  CASE="DicomVersion $v"; run
  has "0010,0030 DA -"; has "0008,0020 DA -"; has "0020,0010 SH -"; has "0070,0084 PN -"; hasnt "0008,0080"
  grep -q "^0012,0063 LO .*PS 3.15-$v Table E.1-1 Basic Profile" "$T/d" || fail "$v: DeidentificationMethod"
done
bad '{"DicomVersion":"2019a"}' anonymize
pass "DicomVersion 2008, 2017c, 2021b"

# /tools/bulk-anonymize and /tools/bulk-modify: several resources, one job, every new resource
$PY "$MP_SRC/tests/tools/gen_study.py" "$T/other" 2 --size 16 >/dev/null
for f in "$T"/other/*.dcm; do OI=$(upload "$f" | json 'j["ID"]'); done
ST1=$(http GET "/instances/$A/study" | json 'j["ID"]')
ST2=$(http GET "/instances/$OI/study" | json 'j["ID"]')
n_before=$(http GET /patients | json 'len(j)')
r=$(curl -sf -X POST "$URL/tools/bulk-anonymize" -d "{\"Resources\": [\"$ST1\", \"$ST2\"]}") || fail "bulk-anonymize"
echo "$r" | json 'j["IsAnonymization"] is True and j["InstancesCount"] == 4 and j["FailedInstancesCount"] == 0' | grep -qx True || fail "bulk-anonymize answer: $r"
echo "$r" | json 'sorted(set(x["Type"] for x in j["Resources"]))' | grep -qxF '["Instance", "Patient", "Series", "Study"]' || fail "bulk Resources types: $r"
echo "$r" | json 'len([x for x in j["Resources"] if x["Type"] == "Patient"])' | grep -qx 2 || fail "one anonymized patient per source patient: $r"
echo "$r" | json 'len([x for x in j["Resources"] if x["Type"] == "Instance"])' | grep -qx 4 || fail "4 instances: $r"
echo "$r" | json 'all(x["Path"] == "/" + {"Patient":"patients","Study":"studies","Series":"series","Instance":"instances"}[x["Type"]] + "/" + x["ID"] for x in j["Resources"])' | grep -qx True || fail "bulk paths: $r"
NS=$(echo "$r" | json '[x["ID"] for x in j["Resources"] if x["Type"] == "Study"][0]')
http GET "/studies/$NS" >/dev/null; [ "$(status)" = 200 ] || fail "new study not stored"
[ "$(http GET /patients | json 'len(j)')" = $((n_before + 2)) ] || fail "bulk-anonymize: patients"
r=$(curl -sf -X POST "$URL/tools/bulk-modify" -d "{\"Resources\": [\"$ST2\"], \"Replace\": {\"StudyDescription\": \"bulk\"}, \"KeepSource\": false}") || fail "bulk-modify"
NS=$(echo "$r" | json '[x["ID"] for x in j["Resources"] if x["Type"] == "Study"][0]')
http GET "/studies/$NS" | json 'j["MainDicomTags"]["StudyDescription"]' | grep -qx bulk || fail "bulk-modify: value"
http GET "/studies/$ST2" >/dev/null; [ "$(status)" = 404 ] || fail "bulk-modify KeepSource false: source kept"
r=$(curl -sf -X POST "$URL/tools/bulk-modify" -d "{\"Resources\": [\"$NS\"], \"Replace\": {\"StudyDescription\": \"b2\"}, \"Asynchronous\": true}") || fail "bulk async"
echo "$r" | json 'j["Path"] == "/jobs/" + j["ID"]' | grep -qx True || fail "bulk async answer: $r"
http POST /tools/bulk-modify -d '{"Replace": {"StudyDescription": "x"}}' >/dev/null; [ "$(status)" = 400 ] || fail "bulk without Resources -> $(status)"
http POST /tools/bulk-anonymize -d '{"Resources": ["nope"]}' >/dev/null; [ "$(status)" = 404 ] || fail "bulk unknown resource -> $(status)"
http POST /tools/bulk-anonymize -d "{\"Resources\": [\"$NS\"], \"Level\": \"Galaxy\"}" >/dev/null; [ "$(status)" = 400 ] || fail "bulk bad Level -> $(status)"
pass "bulk-anonymize, bulk-modify"

# the stored instance is untouched by all of the above (answers were files, not stored)
curl -sf "$URL/instances/$A/file" -o "$T/src.dcm"; cmp -s "$T/src.dcm" "$T/a.dcm" || fail "source instance changed"
pass "85_compat_modify"
