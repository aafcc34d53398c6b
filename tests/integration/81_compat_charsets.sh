#!/usr/bin/env bash
# Orthanc compatibility: every text value is UTF-8, converted from the file's
# SpecificCharacterSet (pydicom's charset_files: ISO-8859 parts, UTF-8, GB18030, ISO 2022
# Japanese and Korean), in /tags, /simplified-tags, MainDicomTags and /content; files without
# one use DefaultEncoding; private tags declared in "Dictionary" get their names.
source "$(dirname "$0")/lib.sh"
CS="$(dirname "$PYDICOM_FILES")/charset_files"
write_config '"Dictionary": { "0009,1001": ["LO", "MiniPacsPrivateName", 1, 1, "MINIPACS TEST"] }'
start_server

for f in "$CS"/chr*.dcm; do
  b=$(basename "$f")
  want=$($PY -c "
import pydicom, sys
d = pydicom.dcmread('$f')
pn = d.get('PatientName')
print(str(pn).rstrip('=') if pn is not None else '')")
  [ -n "$want" ] || continue  # chrSQEncoding*: no PatientName nor UIDs (checked below)
  r=$(upload "$f")
  I=$(echo "$r" | json 'j["ID"]'); P=$(echo "$r" | json 'j["ParentPatient"]')
  got=$(http GET /instances/$I/simplified-tags | json 'j["PatientName"].rstrip("=")')
  [ "$got" = "$want" ] || fail "$b /simplified-tags: '$got' vs '$want'"
  got=$(http GET /instances/$I/tags | json 'j["0010,0010"]["Value"].rstrip("=")')
  [ "$got" = "$want" ] || fail "$b /tags: '$got'"
  got=$(http GET /patients/$P | json 'j["MainDicomTags"]["PatientName"].rstrip("=")')
  [ "$got" = "$want" ] || fail "$b MainDicomTags: '$got'"
  got=$(http GET /instances/$I/content/0010-0010 | sed 's/[ =]*$//')
  [ "$got" = "$want" ] || fail "$b /content: '$got'"
done
pass "PatientName of every chr*.dcm as pydicom decodes it (tags, simplified, main tags, content)"

# a sequence item with its own SpecificCharacterSet (chrSQEncoding: ISO 2022 Japanese inside
# ISO_IR 192), given the UIDs it lacks
want=$($PY - "$CS/chrSQEncoding.dcm" "$T/sq.dcm" <<'PY'
import sys, pydicom
from pydicom.uid import generate_uid
d = pydicom.dcmread(sys.argv[1])
d.PatientID = "SQ"; d.StudyInstanceUID = generate_uid(); d.SeriesInstanceUID = generate_uid()
d.SOPInstanceUID = generate_uid(); d.SOPClassUID = "1.2.840.10008.5.1.4.1.1.4"
d.save_as(sys.argv[2])
print(str(pydicom.dcmread(sys.argv[2]).RequestedProcedureCodeSequence[0].PatientName).rstrip("="))
PY
)
I=$(upload "$T/sq.dcm" | json 'j["ID"]')
http GET /instances/$I/simplified-tags | json 'j["RequestedProcedureCodeSequence"][0]["PatientName"].rstrip("=")' | grep -qxF "$want" || fail "sequence item charset: $(cat "$T/body")"
[ "$(http GET /instances/$I/content/0032-1064/0/0010-0010 | sed 's/[ =]*$//')" = "$want" ] || fail "sequence item charset in /content"
pass "sequence item charset"

# private tag named by the Dictionary option
$PY - "$T/priv.dcm" <<'PY'
import sys
from pydicom.dataset import Dataset, FileMetaDataset
from pydicom.uid import ExplicitVRLittleEndian, generate_uid
ds = Dataset(); ds.file_meta = FileMetaDataset(); ds.file_meta.TransferSyntaxUID = ExplicitVRLittleEndian
ds.PatientID = "PRIV"; ds.StudyInstanceUID = generate_uid(); ds.SeriesInstanceUID = generate_uid()
ds.SOPInstanceUID = generate_uid(); ds.SOPClassUID = "1.2.840.10008.5.1.4.1.1.7"
ds.add_new(0x00090010, "LO", "MINIPACS TEST"); ds.add_new(0x00091001, "LO", "secret value")
ds.is_little_endian = True; ds.is_implicit_VR = False
ds.save_as(sys.argv[1], write_like_original=False)
PY
I=$(upload "$T/priv.dcm" | json 'j["ID"]')
http GET /instances/$I/tags | json 'j["0009,1001"]["Name"] == "MiniPacsPrivateName" and j["0009,1001"]["PrivateCreator"] == "MINIPACS TEST" and j["0009,1001"]["Value"] == "secret value"' | grep -qx True || fail "Dictionary: $(cat "$T/body")"
http GET /instances/$I/simplified-tags | json 'j["MiniPacsPrivateName"]' | grep -qx "secret value" || fail "Dictionary name in simplified-tags"
pass "Dictionary private tag"

# DefaultEncoding: a file without SpecificCharacterSet, its name in ISO-8859-2 bytes
$PY - "$T/latin2.dcm" <<'PY'
import sys
from pydicom.dataset import Dataset, FileMetaDataset
from pydicom.uid import ExplicitVRLittleEndian, generate_uid
ds = Dataset(); ds.file_meta = FileMetaDataset(); ds.file_meta.TransferSyntaxUID = ExplicitVRLittleEndian
ds.PatientID = "L2"; ds.StudyInstanceUID = generate_uid(); ds.SeriesInstanceUID = generate_uid()
ds.SOPInstanceUID = generate_uid(); ds.SOPClassUID = "1.2.840.10008.5.1.4.1.1.7"
ds.add_new(0x00100010, "PN", "Łódź^Żółć".encode("iso-8859-2"))
ds.is_little_endian = True; ds.is_implicit_VR = False
ds.save_as(sys.argv[1], write_like_original=False)
PY
I=$(upload "$T/latin2.dcm" | json 'j["ID"]')
latin1=$($PY -c "print('Łódź^Żółć'.encode('iso-8859-2').decode('latin-1'))")
[ "$(http GET /instances/$I/simplified-tags | json 'j["PatientName"]')" = "$latin1" ] || fail "default Latin1"
stop_server
write_config '"DefaultEncoding": "Latin2"'
start_server
[ "$(http GET /instances/$I/simplified-tags | json 'j["PatientName"]')" = "Łódź^Żółć" ] || fail "DefaultEncoding Latin2: $(cat "$T/body")"
[ "$(http GET /instances/$I/content/PatientName | sed 's/ *$//')" = "Łódź^Żółć" ] || fail "DefaultEncoding in /content"
stop_server
write_config '"DefaultEncoding": "Utf8"'
start_server
$PY - "$T/utf8.dcm" <<'PY'
import sys
from pydicom.dataset import Dataset, FileMetaDataset
from pydicom.uid import ExplicitVRLittleEndian, generate_uid
ds = Dataset(); ds.file_meta = FileMetaDataset(); ds.file_meta.TransferSyntaxUID = ExplicitVRLittleEndian
ds.PatientID = "U8"; ds.StudyInstanceUID = generate_uid(); ds.SeriesInstanceUID = generate_uid()
ds.SOPInstanceUID = generate_uid(); ds.SOPClassUID = "1.2.840.10008.5.1.4.1.1.7"
ds.add_new(0x00100010, "PN", "Jérôme^東京".encode("utf-8"))
ds.is_little_endian = True; ds.is_implicit_VR = False
ds.save_as(sys.argv[1], write_like_original=False)
PY
r=$(upload "$T/utf8.dcm")
[ "$(http GET /patients/$(echo "$r" | json 'j["ParentPatient"]') | json 'j["MainDicomTags"]["PatientName"]')" = "Jérôme^東京" ] || fail "DefaultEncoding Utf8 main tags"
pass "DefaultEncoding (Latin1 default, Latin2, Utf8)"
