#!/usr/bin/env bash
# Orthanc compatibility: /tools/find (wildcards, alternatives, DA ranges, PN case folding,
# parent-level tags, tags read from the files, ModalitiesInStudy, Expand, Limit, Since), /tools/lookup, /tools/create-dicom (tags, sequence,
# PNG / JPEG / PDF content, Parent), /tools/now, /tools/generate-uid. Files checked with
# dcmdump and pydicom.
source "$(dirname "$0")/lib.sh"
start_server
$PY - "$T" <<'PY'
import sys
from pydicom.dataset import Dataset, FileMetaDataset
from pydicom.uid import ExplicitVRLittleEndian, generate_uid
rows = [("P1", "Doe^John", "20200115", "CT"), ("P2", "DOE^JANE", "20201231", "MR"), ("P3", "Smith^Ann", "20210301", "CT")]
for k, (pid, name, date, mod) in enumerate(rows):
    ds = Dataset(); ds.file_meta = FileMetaDataset(); ds.file_meta.TransferSyntaxUID = ExplicitVRLittleEndian
    ds.PatientID = pid; ds.PatientName = name; ds.StudyDate = date; ds.Modality = mod
    ds.StudyInstanceUID = generate_uid(); ds.SeriesInstanceUID = generate_uid(); ds.SOPInstanceUID = generate_uid()
    ds.SOPClassUID = "1.2.840.10008.5.1.4.1.1.7"; ds.StudyDescription = f"Study [{k}]"
    ds.is_little_endian = True; ds.is_implicit_VR = False
    ds.save_as(f"{sys.argv[1]}/f{k}.dcm", write_like_original=False)
PY
for k in 0 1 2; do upload "$T/f$k.dcm" >/dev/null; done
find_() { http POST /tools/find -d "$1"; }
count() { find_ "$1" | json 'len(j)'; }
[ "$(count '{"Level":"Patient","Query":{"PatientName":"doe*"}}')" = 2 ] || fail "PN case-insensitive wildcard"
[ "$(count '{"Level":"Patient","Query":{"PatientName":"doe*"},"CaseSensitive":true}')" = 0 ] || fail "CaseSensitive"
# as Orthanc 1.10.1: without CaseSensitive every tag is compared with case folding
[ "$(count '{"Level":"Patient","Query":{"PatientID":"p1"}}')" = 1 ] || fail "case folding for LO too"
[ "$(count '{"Level":"Patient","Query":{"PatientID":"p1"},"CaseSensitive":true}')" = 0 ] || fail "CaseSensitive for LO"
[ "$(count '{"Level":"Patient","Query":{"PatientID":"P?"}}')" = 3 ] || fail "? wildcard"
[ "$(count '{"Level":"Patient","Query":{"PatientID":"P1\\P3"}}')" = 2 ] || fail "alternatives"
[ "$(count '{"Level":"Study","Query":{"StudyDate":"20200101-20201231"}}')" = 2 ] || fail "DA range"
[ "$(count '{"Level":"Study","Query":{"StudyDate":"20201231-"}}')" = 2 ] || fail "open range"
[ "$(count '{"Level":"Study","Query":{"StudyDate":"-20200115"}}')" = 1 ] || fail "range up to"
[ "$(count '{"Level":"Study","Query":{"StudyDescription":"Study [1]"}}')" = 1 ] || fail "brackets are literal"
[ "$(count '{"Level":"Series","Query":{"Modality":"CT","PatientName":"*Ann"}}')" = 1 ] || fail "parent-level tag"
[ "$(count '{"Level":"Instance","Query":{"0008,0060":"CT"}}')" = 2 ] || fail "tag as gggg,eeee"
[ "$(count '{"Level":"Study","Query":{"PatientID":"*"}}')" = 3 ] || fail "* matches all"
[ "$(count '{"Level":"Study","Query":{},"Limit":2}')" = 2 ] || fail Limit
all=$(find_ '{"Level":"Study","Query":{}}'); second=$(echo "$all" | json 'j[1]')
[ "$(find_ '{"Level":"Study","Query":{},"Since":1,"Limit":1}' | json 'j[0]')" = "$second" ] || fail Since
find_ '{"Level":"Study","Query":{"PatientID":"P2"},"Expand":true}' | json 'j[0]["Type"] == "Study" and j[0]["PatientMainDicomTags"]["PatientName"] == "DOE^JANE"' | grep -qx True || fail Expand
[ "$(count '{"Level":"Instance","Query":{"SOPClassUID":"1.2.840.10008.5.1.4.1.1.7"}}')" = 3 ] || fail "non-main tag read from the files"
[ "$(count '{"Level":"Study","Query":{"SOPClassUID":"1.2.3*"}}')" = 0 ] || fail "non-main tag, no match"
[ "$(count '{"Level":"Study","Query":{"ModalitiesInStudy":"MR"}}')" = 1 ] || fail "ModalitiesInStudy"
find_ '{"Level":"Nope","Query":{}}' >/dev/null; [ "$(status)" = 400 ] || fail "bad level -> $(status)"
pass "/tools/find"

uid=$($PY -c "import pydicom; print(pydicom.dcmread('$T/f1.dcm').StudyInstanceUID)")
http POST /tools/lookup -d "$uid" | json 'len(j) == 1 and j[0]["Type"] == "Study" and j[0]["Path"] == "/studies/" + j[0]["ID"]' | grep -qx True || fail "lookup study UID: $(cat "$T/body")"
http POST /tools/lookup -d "P3" | json 'j[0]["Type"]' | grep -qx Patient || fail "lookup PatientID"
[ "$(http POST /tools/lookup -d nothing | json 'len(j)')" = 0 ] || fail "lookup nothing"
pass "/tools/lookup"

# create-dicom: tags, a sequence, UTF-8
r=$(http POST /tools/create-dicom -d '{"Tags":{"PatientName":"Jodogne^Sébastien","PatientID":"CD1","StudyDescription":"created","ReferencedStudySequence":[{"ReferencedSOPInstanceUID":"1.2.3"}]}}')
C=$(echo "$r" | json 'j["ID"]')
[ "$(echo "$r" | json 'j["Path"]')" = "/instances/$C" ] || fail "create-dicom answer: $r"
curl -sf "$URL/instances/$C/file" -o "$T/c.dcm"
dcmdump -q "$T/c.dcm" > "$T/c.txt"; grep -q '\[created\].*StudyDescription' "$T/c.txt" || fail "dcmdump of created file"
$PY -c "
import pydicom
d = pydicom.dcmread('$T/c.dcm')
assert str(d.PatientName) == 'Jodogne^Sébastien', d.PatientName
assert d.ReferencedStudySequence[0].ReferencedSOPInstanceUID == '1.2.3'
assert d.SOPClassUID == '1.2.840.10008.5.1.4.1.1.7' and d.StudyInstanceUID and d.SeriesInstanceUID and d.SOPInstanceUID
assert d.file_meta.MediaStorageSOPInstanceUID == d.SOPInstanceUID
" || fail "created file content"
http POST /tools/create-dicom -d '{"Tags":{"NoSuchTag":"x"}}' >/dev/null; [ "$(status)" = 400 ] || fail "unknown tag -> $(status)"
# Parent: the new instance joins the study
S=$(http GET /instances/$C/study | json 'j["ID"]')
r=$(http POST /tools/create-dicom -d "{\"Parent\":\"$S\",\"Tags\":{\"SeriesDescription\":\"second\"}}")
[ "$(http GET /instances/$(echo "$r" | json 'j["ID"]')/study | json 'j["ID"]')" = "$S" ] || fail "Parent study"
pass "/tools/create-dicom tags"

# PNG (RGB) content: pixels decoded, checked with pydicom
png=$($PY - <<'PY'
import zlib, struct, base64
def chunk(t, d): return struct.pack('>I', len(d)) + t + d + struct.pack('>I', zlib.crc32(t + d))
w, h = 4, 3
rows = []
for y in range(h):
    row = bytes(v for x in range(w) for v in (x * 60, y * 100, 200))
    prev = rows[-1][1] if rows else bytes(len(row))
    sub = bytes((row[i] - (row[i - 3] if i >= 3 else 0)) & 255 for i in range(len(row)))
    rows.append((b'\x01' + sub if y == 1 else b'\x00' + row, row))
png = b'\x89PNG\r\n\x1a\n' + chunk(b'IHDR', struct.pack('>IIBBBBB', w, h, 8, 2, 0, 0, 0)) + \
      chunk(b'IDAT', zlib.compress(b''.join(r[0] for r in rows))) + chunk(b'IEND', b'')
print('data:image/png;base64,' + base64.b64encode(png).decode())
PY
)
r=$(http POST /tools/create-dicom -d "{\"Tags\":{\"PatientID\":\"PNG\"},\"Content\":\"$png\"}")
curl -sf "$URL/instances/$(echo "$r" | json 'j["ID"]')/file" -o "$T/png.dcm"
$PY -c "
import pydicom
d = pydicom.dcmread('$T/png.dcm')
assert (d.Rows, d.Columns, d.SamplesPerPixel, d.PhotometricInterpretation) == (3, 4, 3, 'RGB')
want = bytes(v for y in range(3) for x in range(4) for v in (x * 60, y * 100, 200))
assert d.PixelData == want, d.PixelData
" || fail "PNG content"
# JPEG content: kept encapsulated, one fragment equal to the input
jpg=$($PY -c "
import pydicom, base64
from pydicom.encaps import generate_pixel_data_frame
d = pydicom.dcmread('$PYDICOM_FILES/SC_rgb_jpeg_dcmtk.dcm')
f = next(generate_pixel_data_frame(d.PixelData))
open('$T/in.jpg', 'wb').write(f)
print('data:image/jpeg;base64,' + base64.b64encode(f).decode())")
r=$(http POST /tools/create-dicom -d "{\"Tags\":{\"PatientID\":\"JPG\"},\"Content\":\"$jpg\"}")
J=$(echo "$r" | json 'j["ID"]')
[ "$(http GET /instances/$J/metadata/TransferSyntax)" = 1.2.840.10008.1.2.4.50 ] || fail "JPEG transfer syntax"
curl -sf "$URL/instances/$J/content/7fe0-0010/1" -o "$T/out.jpg"
cmp <(head -c "$(stat -c %s "$T/in.jpg")" "$T/out.jpg") "$T/in.jpg" || fail "JPEG fragment"
# PDF content
pdf=$($PY -c "import base64; print('data:application/pdf;base64,' + base64.b64encode(b'%PDF-1.4\n%minimal\n').decode())")
r=$(http POST /tools/create-dicom -d "{\"Tags\":{\"PatientID\":\"PDF\"},\"Content\":\"$pdf\"}")
D=$(echo "$r" | json 'j["ID"]')
[ "$(http GET /instances/$D/metadata/SopClassUid)" = 1.2.840.10008.5.1.4.1.1.104.1 ] || fail "PDF SOP class"
http GET /instances/$D/content/0042-0011 > "$T/pdf"; [ "$(head -c 8 "$T/pdf")" = '%PDF-1.4' ] || fail "EncapsulatedDocument"
http POST /tools/create-dicom -d '{"Content":"data:text/plain;base64,aGVsbG8="}' >/dev/null; [ "$(status)" = 400 ] || fail "unsupported content -> $(status)"
pass "/tools/create-dicom content (PNG, JPEG, PDF)"

now=$(http GET /tools/now); [[ "$now" =~ ^[0-9]{8}T[0-9]{6}$ ]] || fail "/tools/now: $now"
[ "$now" \< "$(date -u -d '+5 sec' +%Y%m%dT%H%M%S)" ] || fail "/tools/now is UTC"
[[ "$(http GET /tools/now-local)" =~ ^[0-9]{8}T[0-9]{6}$ ]] || fail "/tools/now-local"
u1=$(http GET "/tools/generate-uid?level=series"); u2=$(http GET "/tools/generate-uid?level=instance")
[[ "$u1" =~ ^2\.25\.[1-9][0-9]*$ ]] && [ ${#u1} -le 64 ] && [ "$u1" != "$u2" ] || fail "generate-uid: $u1"
http GET "/tools/generate-uid?level=nope" >/dev/null; [ "$(status)" = 400 ] || fail "generate-uid level"
pass "/tools/now, /tools/generate-uid"
