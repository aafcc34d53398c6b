#!/usr/bin/env bash
# Anonymize a study (PS3.15-2023b basic profile): dcmdump every stored file of the new study and
# check no value of a tag the profile removes or empties is left (at any nesting level), UIDs
# are new and consistent (one study UID, one per series, references in sequences remapped),
# private tags gone, series grouping and pixel data preserved, the source untouched.
source "$(dirname "$0")/lib.sh"
start_server
$PY "$MP_SRC/tests/tools/gen_study.py" "$T/in" 12 --series 3 --size 64 >/dev/null
# Add identifying data the generator lacks: a private tag, other patient IDs, a referenced image
# sequence pointing at the previous instance, and a D-coded tag.
$PY - "$T/in" <<'PY'
import glob, sys, pydicom
from pydicom.dataset import Dataset
files = sorted(glob.glob(sys.argv[1] + "/*.dcm"))
prev = None
for f in files:
    ds = pydicom.dcmread(f)
    ds.add_new(0x00091010, "LO", "minipacs-test")          # private creator
    ds.add_new(0x00091011, "LO", "SECRET-PRIVATE-VALUE")   # private element
    ds.OtherPatientIDs = "OTHER-ID-123"
    ds.PatientAddress = "1 Secret Street"
    ds.ClinicalTrialSponsorName = "Sponsor Inc"            # code D: emptied, as Orthanc
    ds.FrameOfReferenceUID = "1.2.3.999.1"
    if prev is not None:
        item = Dataset()
        item.ReferencedSOPClassUID = prev.SOPClassUID
        item.ReferencedSOPInstanceUID = prev.SOPInstanceUID
        ds.ReferencedImageSequence = [item]
    ds.save_as(f)
    prev = ds
PY
for f in "$T"/in/*.dcm; do upload "$f" >/dev/null; done
S=$(http GET /studies | json 'j[0]')
src_files() { http GET "/studies/$1/instances" | json '" ".join(i["FileUuid"] for i in j)'; }
path_of() { echo "$T/db/${1:0:2}/${1:2:2}/$1"; }
before=$(for u in $(src_files "$S"); do md5sum < "$(path_of "$u")"; done)

r=$(http POST "/studies/$S/anonymize" -d '{}')
[ "$(status)" = 200 ] || fail "anonymize: $(status) $r"
N=$(echo "$r" | json 'j["ID"]')
[ "$(echo "$r" | json 'j["Type"]')" = Study ] || fail "Type: $r"
[ "$(echo "$r" | json 'j["Path"]')" = "/studies/$N" ] || fail "Path: $r"
P=$(echo "$r" | json 'j["PatientID"]')
[ "$N" != "$S" ] || fail "the anonymized study is the source"
[ "$(http GET /studies | json 'len(j)')" = 2 ] || fail "expected two studies"
[ "$(http GET "/studies/$N" | json 'j["AnonymizedFrom"]')" = "$S" ] || fail "AnonymizedFrom"
[ "$(http GET "/studies/$N" | json 'j["ParentPatient"]')" = "$P" ] || fail "PatientID of the answer"
pass "study anonymized into a new study"

mkdir -p "$T/out"
for u in $(src_files "$N"); do dcmdump -q +L "$(path_of "$u")" > "$T/out/$u.txt" || fail "dcmdump $u"; done
[ "$(ls "$T/out" | wc -l)" = 12 ] || fail "expected 12 anonymized files"
$PY - "$T/out" "$MP_SRC/dicom/data/deidentification-basic-profile-2023b.csv" "$T/in" <<'PY' || fail "profile check"
import csv, glob, re, sys, pydicom
rules, ranges = {}, []
for row in csv.reader(l for l in open(sys.argv[2]) if not l.startswith("#")):
    if row[0] == "tag": continue
    tag, action, code = row[0], row[1], row[2]
    a = "D" if code == "D" else "S" if action == "SEQ-REF" else action[0]
    if "-" in tag:
        g, e = tag.split(":"); g0, g1 = g.split("-"); e0, e1 = e.split("-")
        ranges.append((int(g0, 16), int(g1, 16), int(e0, 16), int(e1, 16), a))
    else:
        rules[int(tag, 16)] = a
def action(t):
    if t in rules: return rules[t]
    for g0, g1, e0, e1, a in ranges:
        if g0 <= t >> 16 <= g1 and e0 <= t & 0xFFFF <= e1: return a
    return "K"
src = [pydicom.dcmread(f) for f in sorted(glob.glob(sys.argv[3] + "/*.dcm"))]
secrets = set()
for ds in src:
    for k in ("PatientName", "PatientID", "PatientBirthDate", "InstitutionName", "ReferringPhysicianName",
              "StudyDescription", "SeriesDescription", "AccessionNumber", "OtherPatientIDs", "PatientAddress",
              "ClinicalTrialSponsorName", "StudyInstanceUID", "SeriesInstanceUID", "SOPInstanceUID", "FrameOfReferenceUID"):
        v = str(ds.get(k, "")).strip()
        if v: secrets.add(v)
secrets.add("SECRET-PRIVATE-VALUE")
line_re = re.compile(r"^\s*\(([0-9a-f]{4}),([0-9a-f]{4})\) (\w\w) (.*?)\s+#\s*(\d+),")
bad = []
study_uids, series_uids, sop_uids, refs = set(), set(), set(), set()
for f in sorted(glob.glob(sys.argv[1] + "/*.txt")):
    text = open(f).read()
    for s in secrets:
        if s in text: bad.append("%s: original value %r left" % (f, s))
    for line in text.splitlines():
        m = line_re.match(line)
        if not m: continue
        t = int(m.group(1) + m.group(2), 16)
        g = t >> 16
        if g == 2: continue
        vr, value, length = m.group(3), m.group(4), int(m.group(5))
        a = action(t)
        if g % 2 == 1: bad.append("%s: private tag %s" % (f, m.group(0)))
        if t in (0x00100010, 0x00100020, 0x00120062, 0x00120063): continue  # set by the anonymizer
        if a == "X": bad.append("%s: removed tag present: %s" % (f, line.strip()))
        if a in ("Z", "D") and length != 0 and vr != "SQ": bad.append("%s: tag not empty: %s" % (f, line.strip()))
        if a == "U" and not value.startswith("[2.25."): bad.append("%s: UID not remapped: %s" % (f, line.strip()))
        if t == 0x0020000D: study_uids.add(value)
        if t == 0x0020000E: series_uids.add(value)
        if t == 0x00080018 and not line.startswith(" "): sop_uids.add(value)
        if t == 0x00081155: refs.add(value)
    if "[YES]" not in text or "PS 3.15-2023b Table E.1-1 Basic Profile" not in text:
        bad.append("%s: PatientIdentityRemoved/DeidentificationMethod missing" % f)
    if "(0012,0063) LO [MiniPACS 0.1.0 - PS 3.15-2023b Table E.1-1 Basic Profile]" not in text:
        bad.append("%s: DeidentificationMethod text" % f)
    # D-coded tags are emptied, as Orthanc does (ClinicalTrialSponsorName is one)
    if not re.search(r"^\(0012,0010\) LO .*#\s*0,", text, re.M): bad.append("%s: D-coded tag not kept empty" % f)
if len(study_uids) != 1: bad.append("study UIDs: %r" % study_uids)
if len(series_uids) != 3: bad.append("series UIDs: %r" % series_uids)
if len(sop_uids) != 12: bad.append("SOP UIDs: %d" % len(sop_uids))
if len(refs) != 11 or not refs <= sop_uids: bad.append("references not remapped consistently: %r" % (refs - sop_uids))
for b in bad[:20]: print(b)
sys.exit(1 if bad else 0)
PY
pass "profile applied at every level (dcmdump), UIDs consistent, private tags removed"

# Series grouping and pixel data: each new series comes from one source series, same size;
# every new instance has its source's pixels.
http GET "/studies/$N/instances" > "$T/new.json"
http GET "/studies/$S/instances" > "$T/old.json"
$PY - "$T/new.json" "$T/old.json" "$T/db" "$URL" <<'PY' || fail "grouping/pixels"
import json, sys, urllib.request, pydicom, collections
new, old = json.load(open(sys.argv[1])), json.load(open(sys.argv[2]))
oldby = {i["ID"]: i for i in old}
def path(u): return "%s/%s/%s/%s" % (sys.argv[3], u[:2], u[2:4], u)
groups = collections.defaultdict(set)
bad = 0
for i in new:
    meta = json.load(urllib.request.urlopen("%s/instances/%s" % (sys.argv[4], i["ID"])))
    src = oldby[meta["AnonymizedFrom"]]
    groups[i["ParentSeries"]].add(src["ParentSeries"])
    a, b = pydicom.dcmread(path(i["FileUuid"])), pydicom.dcmread(path(src["FileUuid"]))
    if a.PixelData != b.PixelData: bad += 1; print("pixels differ", i["ID"])
if len(groups) != 3 or any(len(v) != 1 for v in groups.values()): bad += 1; print("grouping", groups)
sys.exit(1 if bad else 0)
PY
pass "series grouping and pixel data preserved"

after=$(for u in $(src_files "$S"); do md5sum < "$(path_of "$u")"; done)
[ "$before" = "$after" ] || fail "source files changed"
http GET "/studies/$S" | json 'j["MainDicomTags"]["StudyDescription"]' | grep -qx "Generated CT" || fail "source main tags"
pass "source study untouched"

# Anonymizing again gives another study (new key, new UIDs); KeepSource false deletes the source.
r=$(http POST "/studies/$S/anonymize" -d '{"KeepSource": false}')
[ "$(status)" = 200 ] || fail "KeepSource false: $r"
http GET "/studies/$S" >/dev/null; [ "$(status)" = 404 ] || fail "source kept with KeepSource false"
[ "$(http GET /studies | json 'len(j)')" = 2 ] || fail "expected two anonymized studies"
pass "KeepSource false removes the source after success"

# An instance: the answer is the DICOM file itself, not stored
I=$(http GET "/studies/$N/instances" | json 'j[0]["ID"]')
n_before=$(http GET /instances | json 'len(j)')
curl -sf -X POST "$URL/instances/$I/anonymize" -d '{}' -o "$T/one.dcm" || fail "instance anonymize"
# (dcmdump to a file first: with pipefail, grep -q closing the pipe early fails the pipeline)
dcmdump -q "$T/one.dcm" > "$T/one.txt" || fail "instance answer does not parse"
grep -q "PatientIdentityRemoved" "$T/one.txt" || fail "instance answer is not anonymized DICOM"
[ "$(http GET /instances | json 'len(j)')" = "$n_before" ] || fail "instance anonymize stored something"
pass "instance anonymize answers the file"
