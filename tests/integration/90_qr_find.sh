#!/usr/bin/env bash
# C-FIND SCP with DCMTK's findscu (Patient Root -P and Study Root -S) at every level, against
# studies generated here and two pydicom charset files: single value, wildcards (* ?), PN case
# folding, UID lists, date ranges, universal matching, computed keys (NumberOf*Related*,
# ModalitiesInStudy), a key outside the main tags (read from the file), answers compared with
# the index through REST; Latin-1 and Japanese names come back right; C-CANCEL; DicomAlwaysAllowFind
# false refuses unknown AETs and AllowFind false modalities.
source "$(dirname "$0")/lib.sh"
write_config '"DicomModalities": { "fu": ["FINDSCU", "127.0.0.1", 1], "raw": ["RAWSCU", "127.0.0.1", 1],
    "nofind": {"AET": "NOFIND", "Host": "127.0.0.1", "Port": 1, "AllowFind": false} },
  "DicomAlwaysAllowFind": false'
start_server

mkdir -p "$T/gen"
$PY - "$T/gen" <<'PY'
import sys, os
from pydicom.dataset import Dataset, FileMetaDataset
from pydicom.uid import ExplicitVRLittleEndian, generate_uid
out = sys.argv[1]
n = 0
def inst(pid, name, study, date, series, modality, sop, thick):
    global n
    ds = Dataset()
    ds.SpecificCharacterSet = "ISO_IR 100"
    ds.SOPClassUID = "1.2.840.10008.5.1.4.1.1.2"
    ds.SOPInstanceUID = sop
    ds.PatientID = pid; ds.PatientName = name; ds.PatientBirthDate = "19700101"; ds.PatientSex = "O"
    ds.StudyInstanceUID = study; ds.StudyDate = date; ds.StudyTime = "101500"; ds.AccessionNumber = "A" + date
    ds.StudyDescription = "desc " + date; ds.StudyID = "1"
    ds.SeriesInstanceUID = series; ds.Modality = modality; ds.SeriesNumber = 1
    ds.InstanceNumber = n; ds.SliceThickness = thick
    ds.file_meta = FileMetaDataset()
    ds.file_meta.MediaStorageSOPClassUID = ds.SOPClassUID
    ds.file_meta.MediaStorageSOPInstanceUID = sop
    ds.file_meta.TransferSyntaxUID = ExplicitVRLittleEndian
    ds.is_little_endian = True; ds.is_implicit_VR = False
    ds.save_as(os.path.join(out, "i%03d.dcm" % n), write_like_original=False)
    n += 1
for pid, name, studies in (("P1", "Smith^John", (("1.9.1", "20200115", ("CT", "MR")), ("1.9.2", "20210310", ("CT",)))),
                           ("P2", "smithers^anna", (("1.9.3", "20190101", ("US",)),)),
                           ("Q3", "Other^Bob", (("1.9.4", "20200620", ("MR",)),))):
    for study, date, mods in studies:
        for k, mod in enumerate(mods):
            series = "%s.%d" % (study, k + 1)
            for i in range(2):
                inst(pid, name, study, date, series, mod, "%s.%d" % (series, i + 1), "%.1f" % (1 + i))
PY
storescu -aec ORTHANC +sd 127.0.0.1 "$DICOM_PORT" "$T/gen" || fail "storescu"
CS=/usr/lib/python3/dist-packages/pydicom/data/charset_files
upload "$CS/chrFren.dcm" >/dev/null && upload "$CS/chrH31.dcm" >/dev/null || fail "charset uploads"
[ "$(http GET /statistics | json 'j["CountInstances"]')" = 12 ] || fail "12 instances expected"

# find MODEL AET key... -> one line per answer: the answer as JSON (pydicom decodes the charset)
find() {
  local model=$1 aet=$2; shift 2
  rm -rf "$T/rsp"; mkdir -p "$T/rsp"
  local args=()
  for k in "$@"; do args+=(-k "$k"); done
  findscu "$model" -X -od "$T/rsp" -aet "$aet" -aec ORTHANC "${args[@]}" 127.0.0.1 "$DICOM_PORT" >"$T/find.log" 2>&1 || return 1
  $PY - "$T/rsp" <<'PY'
import sys, os, json, pydicom
for f in sorted(os.listdir(sys.argv[1])):
    ds = pydicom.dcmread(os.path.join(sys.argv[1], f), force=True)
    print(json.dumps({e.keyword or str(e.tag): (str(e.value) if e.value is not None else "") for e in ds if e.tag.group != 2}, ensure_ascii=False))
PY
}
count() { grep -c . || true; }
field() { $PY -c "import json,sys; print('\n'.join(sorted(json.loads(l).get(sys.argv[1],'(absent)') for l in sys.stdin if l.strip())))" "$1"; }

# PATIENT level, Patient Root: PN wildcard folds case; computed counts
r=$(find -P FINDSCU QueryRetrieveLevel=PATIENT "PatientName=SMITH*" PatientID NumberOfPatientRelatedStudies NumberOfPatientRelatedInstances)
[ "$(echo "$r" | field PatientID | tr '\n' ' ')" = "P1 P2 " ] || fail "patient wildcard: $r"
echo "$r" | grep -q '"PatientID": "P1".*"NumberOfPatientRelatedStudies": "2".*"NumberOfPatientRelatedInstances": "6"\|"NumberOfPatientRelatedInstances": "6".*"PatientID": "P1"' \
  || { echo "$r" | grep '"P1"' | grep -q '"NumberOfPatientRelatedStudies": "2"' && echo "$r" | grep '"P1"' | grep -q '"NumberOfPatientRelatedInstances": "6"'; } || fail "patient counts: $r"
r=$(find -P FINDSCU QueryRetrieveLevel=PATIENT "PatientID=?3" PatientName)
[ "$(echo "$r" | field PatientName)" = "Other^Bob" ] || fail "'?' wildcard: $r"
pass "PATIENT level: wildcards, PN case folding, patient counts"

# STUDY level, Study Root: date range, computed keys; Patient Root STUDY under a patient
r=$(find -S FINDSCU QueryRetrieveLevel=STUDY StudyDate=20200101-20201231 StudyInstanceUID ModalitiesInStudy NumberOfStudyRelatedSeries NumberOfStudyRelatedInstances PatientName)
[ "$(echo "$r" | field StudyInstanceUID | tr '\n' ' ')" = "1.9.1 1.9.4 " ] || fail "date range: $r"
echo "$r" | grep '"1.9.1"' | grep -q '"ModalitiesInStudy": "\[.CT., .MR.\]"\|"ModalitiesInStudy": "CT\\\\MR"' || \
  echo "$r" | grep '"1.9.1"' | grep -q 'CT.*MR' || fail "ModalitiesInStudy: $r"
echo "$r" | grep '"1.9.1"' | grep -q '"NumberOfStudyRelatedSeries": "2"' || fail "NumberOfStudyRelatedSeries: $r"
echo "$r" | grep '"1.9.1"' | grep -q '"NumberOfStudyRelatedInstances": "4"' || fail "NumberOfStudyRelatedInstances: $r"
r=$(find -S FINDSCU QueryRetrieveLevel=STUDY 'StudyInstanceUID=1.9.2\1.9.3\9.9.9' StudyDate)
[ "$(echo "$r" | field StudyDate | tr '\n' ' ')" = "20190101 20210310 " ] || fail "UID list: $r"
r=$(find -S FINDSCU QueryRetrieveLevel=STUDY StudyDate=-20200115 StudyInstanceUID)
[ "$(echo "$r" | field StudyInstanceUID | tr '\n' ' ')" = "1.9.1 1.9.3 " ] || fail "open date range: $r"
r=$(find -S FINDSCU QueryRetrieveLevel=STUDY ModalitiesInStudy=MR StudyInstanceUID)
[ "$(echo "$r" | field StudyInstanceUID | tr '\n' ' ')" = "1.9.1 1.9.4 " ] || fail "ModalitiesInStudy matching: $r"
r=$(find -P FINDSCU QueryRetrieveLevel=STUDY PatientID=P1 StudyInstanceUID)
[ "$(echo "$r" | count)" = 2 ] || fail "Patient Root STUDY under P1: $r"
# universal matching: every study of the index, compared with REST
r=$(find -S FINDSCU QueryRetrieveLevel=STUDY StudyInstanceUID)
want=$(http GET '/studies?expand' | $PY -c "import json,sys; print('\n'.join(sorted(s['MainDicomTags']['StudyInstanceUID'] for s in json.load(sys.stdin))))")
[ "$(echo "$r" | field StudyInstanceUID)" = "$want" ] || fail "universal STUDY differs from the index: $r / $want"
pass "STUDY level: ranges, UID lists, ModalitiesInStudy, counts, universal = index"

# SERIES and IMAGE levels
r=$(find -S FINDSCU QueryRetrieveLevel=SERIES StudyInstanceUID=1.9.1 Modality=MR SeriesInstanceUID NumberOfSeriesRelatedInstances)
[ "$(echo "$r" | field SeriesInstanceUID)" = "1.9.1.2" ] || fail "series: $r"
echo "$r" | grep -q '"NumberOfSeriesRelatedInstances": "2"' || fail "NumberOfSeriesRelatedInstances: $r"
r=$(find -S FINDSCU QueryRetrieveLevel=IMAGE StudyInstanceUID=1.9.1 SeriesInstanceUID=1.9.1.1 SOPInstanceUID InstanceNumber)
[ "$(echo "$r" | field SOPInstanceUID | tr '\n' ' ')" = "1.9.1.1.1 1.9.1.1.2 " ] || fail "image level: $r"
# a key outside the main tags: matched and answered from the stored files
r=$(find -S FINDSCU QueryRetrieveLevel=IMAGE SliceThickness=2.0 SOPInstanceUID)
[ "$(echo "$r" | count)" = 5 ] || fail "SliceThickness (file key): $r"
echo "$r" | grep -q '"SliceThickness": "2.0"' || fail "SliceThickness value: $r"
want=$(http GET '/series?expand' | $PY -c "import json,sys; print('\n'.join(sorted(s['MainDicomTags']['SeriesInstanceUID'] for s in json.load(sys.stdin))))")
r=$(find -P FINDSCU QueryRetrieveLevel=SERIES SeriesInstanceUID)
[ "$(echo "$r" | field SeriesInstanceUID)" = "$want" ] || fail "universal SERIES (Patient Root) differs from the index"
pass "SERIES and IMAGE levels, file keys, universal = index"

# charsets: the answers decode to the names pydicom reads from the originals
r=$(find -S FINDSCU QueryRetrieveLevel=STUDY "PatientName=Buc*")
[ "$(echo "$r" | field PatientName)" = "Buc^Jérôme" ] || fail "Latin-1 name: $r"
jid=$($PY -c "import pydicom; print(pydicom.dcmread('$CS/chrH31.dcm').PatientID)")
r=$(find -P FINDSCU QueryRetrieveLevel=PATIENT "PatientID=$jid" PatientName)
[ "$(echo "$r" | field PatientName)" = "Yamada^Tarou=山田^太郎=やまだ^たろう" ] || fail "Japanese name: $r"
pass "charsets: Latin-1 and Japanese names"


# A peer with Nagle's algorithm on (no TCP_NODELAY, as Python's sockets) sends the C-FIND-RQ's
# command and identifier in two writes: the identifier leaves only once the command is ACKed.
# The SCP acknowledges each request's command at once (TCP_QUICKACK); without it Linux delays
# that ACK by 40 ms on a reused association and every query took 40 ms more (median >= 40).
r=$($PY - "$DICOM_PORT" "$MP_SRC/tests/tools" <<'PY'
import socket, statistics, sys, time
sys.path.insert(0, sys.argv[2])
import dicom_raw as d
a = d.Assoc(int(sys.argv[1]), calling="RAWSCU", contexts=[(1, d.FIND_STUDY_ROOT, [d.IMPLICIT_LE])])
assert a.result == 2, a.result
a.s.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 0)
ident = d.identifier([(0x00080052, "STUDY"), (0x00100010, "NOBODY*"), (0x0020000D, "")])
lat = []
for i in range(15):
    t0 = time.perf_counter()
    st, n = a.find(ident)
    lat.append((time.perf_counter() - t0) * 1000)
    assert st == 0 and n == 0, (st, n)
a.release()
print("%.1f" % statistics.median(lat))
PY
) || fail "C-FIND from a Nagle client failed"
$PY -c "import sys; sys.exit(0 if float('$r') < 25 else 1)" ||
  fail "C-FIND from a client without TCP_NODELAY: median $r ms per query (delayed ACK of the command?)"
pass "C-FIND from a client without TCP_NODELAY: median $r ms per query (no 40 ms delayed ACK)"

# C-CANCEL sent right behind the C-FIND-RQ: the SCP sees it before its first answer and ends
# with Cancel (0xFE00) instead of sending the 12 answers
r=$($PY - "$DICOM_PORT" "$MP_SRC/tests/tools" <<'PY'
import struct, sys
sys.path.insert(0, sys.argv[2])
import dicom_raw as d
FIND = "1.2.840.10008.5.1.4.1.2.2.1"
a = d.Assoc(int(sys.argv[1]), calling="RAWSCU", contexts=[(1, FIND, [d.IMPLICIT_LE])])
assert a.result == 2, a.result
def el(g, e, v):
    v = v.encode()
    v += b" " if len(v) % 2 else b""
    return struct.pack("<HHI", g, e, len(v)) + v
ident = el(0x0008, 0x0018, "") + el(0x0008, 0x0052, "IMAGE")
# the three PDUs in one write: the C-CANCEL is in the SCP's hands with the identifier (sent
# one by one, they raced the answers: only a delayed ACK used to hold the last two together)
def pdu(payload, is_command):
    pdv = struct.pack(">IBB", len(payload) + 2, 1, (1 if is_command else 0) | 2) + payload
    return struct.pack(">BBI", 4, 0, len(pdv)) + pdv
a.s.sendall(pdu(d.command([(0x0002, FIND), (0x0100, 0x0020), (0x0110, 7), (0x0700, 0), (0x0800, 0x0000)]), True)
            + pdu(ident, False) + pdu(d.command([(0x0100, 0x0FFF), (0x0120, 7), (0x0800, 0x0101)]), True))
pending = 0
while True:
    rsp = a._response()
    st = struct.unpack("<H", rsp[(0, 0x0900)])[0]
    if st in (0xFF00, 0xFF01):
        pending += 1
        a._response() if struct.unpack("<H", rsp[(0, 0x0800)])[0] != 0x0101 else None
        continue
    break
a.release()
print("%04x %d" % (st, pending))
PY
)
[ "${r%% *}" = fe00 ] || fail "C-CANCEL: final status/answers $r"
[ "${r##* }" -lt 12 ] || fail "C-CANCEL did not stop the answers: $r"
pass "C-CANCEL stops the answers (status Cancel, $r)"

# access control: unknown AET and a modality with AllowFind false are refused, logged
if findscu -S -aet STRANGER -aec ORTHANC -k QueryRetrieveLevel=STUDY 127.0.0.1 "$DICOM_PORT" >"$T/x.log" 2>&1 && ! grep -qi "reject\|refused\|fail" "$T/x.log"; then
  fail "unknown AET could C-FIND"
fi
if findscu -S -aet NOFIND -aec ORTHANC -k QueryRetrieveLevel=STUDY 127.0.0.1 "$DICOM_PORT" >"$T/x.log" 2>&1 && ! grep -qi "reject\|refused\|fail" "$T/x.log"; then
  fail "AllowFind false could C-FIND"
fi
grep -q 'C-FIND.*refused: AET "STRANGER"' "$T/server.log" || fail "refusal of STRANGER not logged"
grep -q 'AET "NOFIND" at 127.0.0.1 is a modality without that Allow flag' "$T/server.log" || fail "refusal of NOFIND not logged"
echoscu -aet STRANGER -aec ORTHANC 127.0.0.1 "$DICOM_PORT" || fail "C-ECHO must stay allowed"
pass "DicomAlwaysAllowFind false: unknown AET and AllowFind false refused"
