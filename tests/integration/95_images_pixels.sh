#!/usr/bin/env bash
# Pixels (issue 14): every pydicom test file with pixel data, frame by frame, against an
# independent decoder (pydicom + numpy, GDCM/Pillow as its handlers, dcmdjpeg otherwise):
# /frames/k/numpy?rescale=0 equals the decoded values, image-uint8/uint16 are PNGs of the
# clamped values, previews are PNG/JPEG of the right size (tests/tools/check_frames.py).
# Then the rendering rules on synthetic images with known values (windowing, rescale,
# MONOCHROME1, resize, palette, multi-frame, ordered-slices) and clean errors for broken pixel
# data (tests/tools/check_render.py).
source "$(dirname "$0")/lib.sh"
write_config '"OverwriteInstances": true'
start_server
$PY "$MP_SRC/tests/tools/check_frames.py" "$URL" "$PYDICOM_FILES"/*.dcm > "$T/frames.txt" 2>"$T/frames.err" \
  || { cat "$T/frames.txt"; fail "frames differ from the independent decoder"; }
tail -1 "$T/frames.txt"
pass "pydicom files: $(tail -1 "$T/frames.txt")"
$PY "$MP_SRC/tests/tools/make_images.py" "$T/synth"
$PY "$MP_SRC/tests/tools/check_render.py" "$URL" "$T/synth" || fail "rendering rules"
pass "rendering rules, broken pixel data"
# Encapsulated PDF made by /tools/create-dicom comes back byte for byte
printf '%%PDF-1.4\n1 0 obj <<>> endobj\ntrailer <<>>\n%%%%EOF\n' > "$T/doc.pdf"
b64=$(base64 -w0 "$T/doc.pdf")
id=$(http POST /tools/create-dicom -d "{\"Tags\":{\"PatientName\":\"PDF\"},\"Content\":\"data:application/pdf;base64,$b64\"}" | json 'j["ID"]')
curl -sf "$URL/instances/$id/pdf" -o "$T/back.pdf"
cmp "$T/doc.pdf" "$T/back.pdf" || fail "pdf differs"
pass "encapsulated PDF"
# /header: the stored file's meta information (group 0002) as Orthanc's, in its three formats,
# checked against pydicom's reading of /file; binary values (FileMetaInformationVersion) left out
id=$(upload "$PYDICOM_FILES/SC_rgb_jpeg_gdcm.dcm" | json 'j["ID"]')
curl -sf "$URL/instances/$id/file" -o "$T/meta.dcm"
for q in "" "?simplify" "?short"; do curl -sf "$URL/instances/$id/header$q" -o "$T/header$q.json"; done
$PY - "$T" <<'PY' || fail "/header"
import json, sys, pydicom
t = sys.argv[1]
m = pydicom.dcmread(f'{t}/meta.dcm').file_meta
want = {f'{e.tag.group:04x},{e.tag.element:04x}': (e.keyword, str(e.value)) for e in m if e.VR not in ('OB', 'OW', 'UN')}
full, simple, short = (json.load(open(f'{t}/header{q}.json')) for q in ('', '?simplify', '?short'))
assert len(want) >= 5 and '0002,0010' in want, want
assert full == {k: {'Name': n, 'Type': 'String', 'Value': v} for k, (n, v) in want.items()}, full
assert simple == {n: v for n, v in want.values()}, simple
assert short == {k: v for k, (n, v) in want.items()}, short
PY
pass "/header"
http GET "/instances/0000/header" > /dev/null; [ "$(status)" = 404 ] || fail "/header of an unknown instance"
