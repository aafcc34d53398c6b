#!/usr/bin/env bash
# /tags, /content, /frames and empty pages as Orthanc 1.10.1 answers them (compared request by
# request): PixelData listed as a Null placeholder, binary values Type Null, ?simplify keys every
# tag by name (unknown ones "Unknown Tag & Data"), private sequences without PrivateCreator;
# native PixelData in /content as one item "0"; /frames lists the frame indexes; limit=0 is an
# empty page for resource lists and /changes.
source "$(dirname "$0")/lib.sh"
write_config '"Dictionary": { "0009,1010": ["LO", "MyPrivName", 1, 1, "MyCreator"] }'
start_server
$PY "$MP_SRC/tests/tools/gen_compat.py" "$T/a.dcm" "$T/b.dcm"
B=$(upload "$T/b.dcm" | json 'j["ID"]')
M=$(upload "$PYDICOM_FILES/rtdose.dcm" | json 'j["ID"]')

http GET "/instances/$B/tags" > "$T/tags.json"
json 'j["7fe0,0010"]' < "$T/tags.json" | grep -qxF '{"Name": "PixelData", "Type": "Null", "Value": null}' || fail "PixelData placeholder: $(json 'j.get("7fe0,0010")' < "$T/tags.json")"
json 'j["0034,0002"]["Type"]' < "$T/tags.json" | grep -qx Null || fail "binary value not Type Null"
json 'j["0008,2218"]["Value"][0]["0034,0002"]["Type"]' < "$T/tags.json" | grep -qx Null || fail "nested binary not Null"
json '"PrivateCreator" in j["0009,1020"]' < "$T/tags.json" | grep -qx False || fail "private sequence with a PrivateCreator"
json 'j["0009,1020"]["Type"]' < "$T/tags.json" | grep -qx Sequence || fail "private sequence type"
json 'j["0009,1010"]["PrivateCreator"]' < "$T/tags.json" | grep -qx MyCreator || fail "private element lost its PrivateCreator"
pass "/tags: PixelData placeholder, binary Null, private sequences"

http GET "/instances/$B/tags?simplify" > "$T/s.json"
json 'j["PixelData"] is None and "7fe0,0010" not in j' < "$T/s.json" | grep -qx True || fail "simplify: PixelData"
json 'j["AnatomicRegionSequence"][0]["Unknown Tag & Data"]' < "$T/s.json" | grep -qx no-creator-private || fail "simplify: unknown tag by name"
json '[k for k in j if k[:1].isdigit()]' < "$T/s.json" | grep -qx '\[\]' || fail "simplify: keys by number: $(json '[k for k in j if k[:1].isdigit()]' < "$T/s.json")"
http GET "/instances/$B/simplified-tags" | json 'j["PixelData"] is None' | grep -qx True || fail "simplified-tags: PixelData"
pass "/tags?simplify keys every tag by name"

http GET "/instances/$B/content/7fe0-0010" | json 'j' | grep -qxF '["0"]' || fail "native PixelData listing"
curl -sf "$URL/instances/$B/content/7fe0-0010/0" | od -An -tx1 | tr -d ' \n' | grep -qx 01020304 || fail "native PixelData item 0"
http GET "/instances/$B/content/7fe0-0010/1" >/dev/null; [ "$(status)" = 404 ] || fail "item 1 -> $(status)"
http GET "/instances/$B/content" | json '"7fe0-0010" in j' | grep -qx True || fail "content listing lacks PixelData"
pass "/content: native PixelData as item 0"

http GET "/instances/$B/frames" | json 'j' | grep -qxF '[0]' || fail "frames of a single-frame instance"
http GET "/instances/$M/frames" | json 'j == list(range(15))' | grep -qx True || fail "frames of a 15-frame instance"
http GET "/instances/nope/frames" >/dev/null; [ "$(status)" = 404 ] || fail "frames of an unknown instance -> $(status)"
pass "/frames"

for l in patients studies series instances; do
  http GET "/$l?since=0&limit=0" | json 'j' | grep -qxF '[]' || fail "/$l?since=0&limit=0"
  http GET "/$l?since=1&limit=0&expand" | json 'j' | grep -qxF '[]' || fail "/$l?since=1&limit=0&expand"
done
last=$(http GET "/changes?last" | json 'j["Last"]')
r=$(http GET "/changes?since=0&limit=0")
echo "$r" | json 'j["Changes"] == [] and j["Done"] is False and j["Last"]' | grep -qx "$last" || fail "/changes?limit=0: $r"
pass "limit=0 answers an empty page"

# /tools/create-dicom: the legacy body (tags at top level), private tags with PrivateCreator,
# inside sequences too; unknown private VRs are UN
create() { # create BODY -> dump of the stored file in $T/c.txt
  local id
  id=$(curl -sf -X POST "$URL/tools/create-dicom" -d "$1" | json 'j["ID"]') || fail "create-dicom $1"
  curl -sf "$URL/instances/$id/file" -o "$T/c.dcm"
  $PY "$MP_SRC/tests/tools/dump_paths.py" "$T/c.dcm" > "$T/c.txt"
}
chk() { grep -qxF -- "$1" "$T/c.txt" || fail "create-dicom: no '$1' in: $(cat "$T/c.txt")"; }
create '{"PatientName":"Legacy^X","PatientID":"L1","StudyDescription":"legacy"}'
chk "0010,0010 PN Legacy^X"; chk "0010,0020 LO L1"; chk "0008,1030 LO legacy"
create '{"Tags":{"PatientName":"P^X","0009,1011":"v0","MyPrivName":"v2","RequestAttributesSequence":[{"0009,1010":"nested","RequestedProcedureID":"R"}]},"PrivateCreator":"MyCreator"}'
chk "0009,0010 LO MyCreator"; chk "0009,1010 LO v2"; chk "0009,1011 UN 7630"
chk "0040,0275[0].0009,1010 LO nested"; chk "0040,0275[0].0009,0010 LO MyCreator"
create '{"Tags":{"PatientName":"P^Z","0013,1010":"x"},"PrivateCreator":"Foo"}'
chk "0013,1010 UN 7800"; chk "0013,0010 LO Foo"
r=$(http POST /tools/create-dicom -d '{"Tags":{"PatientName":"P"},"PrivateCreator":3}')
[ "$(status)" = 400 ] || fail "PrivateCreator not a string -> $(status)"
pass "create-dicom: legacy body, PrivateCreator, private tags in sequences"
