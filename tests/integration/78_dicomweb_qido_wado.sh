#!/usr/bin/env bash
# QIDO-RS through the one query engine (tests/tools/check_qido.py: single value, wildcard, UID
# list, date range, PN case rules and fuzzymatching, includefield by name/tag/all, limit/offset,
# ModalitiesInStudy, NumberOfStudyRelated*, the six search routes, 400s) and WADO-RS with curl
# for the multipart cases: study/series/instance retrieval (stored bytes with transfer-syntax=*,
# Explicit VR Little Endian by default, conversion asked in Accept, 406), frames (stored or
# decoded), bulk data, rendered/thumbnail JPEG and PNG; authentication as the rest of the API.
source "$(dirname "$0")/lib.sh"
write_config '"OverwriteInstances": true'
start_server
for f in CT_small.dcm MR_small.dcm MR_small_RLE.dcm rtplan.dcm JPEG2000.dcm SC_rgb_rle_2frame.dcm \
         ../charset_files/chrH31.dcm ../charset_files/chrFren.dcm; do
  upload "$PYDICOM_FILES/$f" >/dev/null || fail "upload $f"
done
$PY "$MP_SRC/tests/tools/check_qido.py" "$URL" || fail "QIDO-RS"

# ---- WADO-RS retrieve (curl: multipart/related) ----
MST=1.3.6.1.4.1.5962.1.2.4.20040826185059.5457   # MR_small_RLE replaced MR_small (same UIDs)
multipart() { $PY "$MP_SRC/tests/tools/check_qido.py" --parts "$1" "$2"; }  # ctype-file body-file -> parts in dir
curl -s -D "$T/h" -o "$T/b" -H 'Accept: multipart/related; type="application/dicom"; transfer-syntax=*' \
  "$URL/dicom-web/studies/$MST"
grep -qi '^Content-Type: multipart/related; type="application/dicom"; boundary=' "$T/h" || fail "retrieve type: $(cat "$T/h")"
multipart "$T/h" "$T/b" > "$T/parts.txt" || fail "multipart parse"
[ "$(wc -l < "$T/parts.txt")" = 1 ] || fail "one instance in the study"
cmp -s "$(head -1 "$T/parts.txt")" "$PYDICOM_FILES/MR_small_RLE.dcm" || fail "transfer-syntax=*: not the stored bytes"
# default (no transfer-syntax): Explicit VR Little Endian, pixels decoded
curl -s -D "$T/h" -o "$T/b" "$URL/dicom-web/studies/$MST"
multipart "$T/h" "$T/b" > "$T/parts.txt"
ts_of() { $PY -c "import pydicom,sys; print(pydicom.dcmread(sys.argv[1]).file_meta.TransferSyntaxUID)" "$1"; }
[ "$(ts_of "$(head -1 "$T/parts.txt")")" = 1.2.840.10008.1.2.1 ] || fail "default syntax"
$PY - "$(head -1 "$T/parts.txt")" "$PYDICOM_FILES/MR_small.dcm" <<'EOF' || fail "decoded pixels differ"
import sys, pydicom, numpy
a = pydicom.dcmread(sys.argv[1]).pixel_array; b = pydicom.dcmread(sys.argv[2]).pixel_array
sys.exit(0 if numpy.array_equal(a, b) else 1)
EOF
# asked: JPEG-LS lossless; impossible: JPEG 2000 (406), application/json (406)
curl -s -D "$T/h" -o "$T/b" -H 'Accept: multipart/related; type="application/dicom"; transfer-syntax=1.2.840.10008.1.2.4.80' \
  "$URL/dicom-web/studies/$MST/series/1.3.6.1.4.1.5962.1.3.4.1.20040826185059.5457"
multipart "$T/h" "$T/b" > "$T/parts.txt"
[ "$(ts_of "$(head -1 "$T/parts.txt")")" = 1.2.840.10008.1.2.4.80 ] || fail "JPEG-LS asked"
code=$(curl -s -o /dev/null -w '%{http_code}' -H 'Accept: multipart/related; type="application/dicom"; transfer-syntax=1.2.840.10008.1.2.4.90' "$URL/dicom-web/studies/$MST")
[ "$code" = 406 ] || fail "J2K target: $code"
code=$(curl -s -o /dev/null -w '%{http_code}' -H 'Accept: application/json' "$URL/dicom-web/studies/$MST")
[ "$code" = 406 ] || fail "application/json retrieve: $code"
# a whole study of several series, instance level
CST=1.3.6.1.4.1.5962.1.2.1.20040119072730.12322
CSE=1.3.6.1.4.1.5962.1.3.1.1.20040119072730.12322
CSOP=1.3.6.1.4.1.5962.1.1.1.1.1.20040119072730.12322
curl -s -D "$T/h" -o "$T/b" -H 'Accept: multipart/related; type=application/dicom; transfer-syntax=*' \
  "$URL/dicom-web/studies/$CST/series/$CSE/instances/$CSOP"
multipart "$T/h" "$T/b" > "$T/parts.txt"
cmp -s "$(head -1 "$T/parts.txt")" "$PYDICOM_FILES/CT_small.dcm" || fail "instance retrieve"
pass "WADO-RS retrieve: stored, default, converted, 406"

# ---- frames ----
FR="$URL/dicom-web/studies/$CST/series/$CSE/instances/$CSOP/frames/1"
curl -s -D "$T/h" -o "$T/b" -H 'Accept: multipart/related; type="application/octet-stream"; transfer-syntax=*' "$FR"
multipart "$T/h" "$T/b" > "$T/parts.txt"
$PY - "$(head -1 "$T/parts.txt")" "$PYDICOM_FILES/CT_small.dcm" <<'EOF' || fail "native frame bytes"
import sys, pydicom
ds = pydicom.dcmread(sys.argv[2]); sys.exit(0 if open(sys.argv[1], 'rb').read() == ds.PixelData else 1)
EOF
code=$(curl -s -o /dev/null -w '%{http_code}' "$FR,2"); [ "$code" = 404 ] || fail "missing frame: $code"
code=$(curl -s -o /dev/null -w '%{http_code}' "$URL/dicom-web/studies/$CST/series/$CSE/instances/$CSOP/frames/0"); [ "$code" = 400 ] || fail "frame 0: $code"
# RLE, two frames: decoded (default) equal to pydicom's pixels; as stored with transfer-syntax=*
RST=$($PY -c "import pydicom;d=pydicom.dcmread('$PYDICOM_FILES/SC_rgb_rle_2frame.dcm');print(d.StudyInstanceUID,d.SeriesInstanceUID,d.SOPInstanceUID)")
set -- $RST
FR="$URL/dicom-web/studies/$1/series/$2/instances/$3/frames/1,2"
curl -s -D "$T/h" -o "$T/b" "$FR"
multipart "$T/h" "$T/b" > "$T/parts.txt"
[ "$(wc -l < "$T/parts.txt")" = 2 ] || fail "two frames"
$PY - "$T/parts.txt" "$PYDICOM_FILES/SC_rgb_rle_2frame.dcm" <<'EOF' || fail "decoded RLE frames"
import sys, pydicom, numpy
ds = pydicom.dcmread(sys.argv[2]); arr = ds.pixel_array
for i, p in enumerate(open(sys.argv[1]).read().split()):
    got = numpy.frombuffer(open(p, 'rb').read(), dtype=numpy.uint8).reshape(arr[i].shape)
    if not numpy.array_equal(got, arr[i]): sys.exit(1)
EOF
curl -s -D "$T/h" -o "$T/b" -H 'Accept: multipart/related; type="application/octet-stream"; transfer-syntax=*' "$FR"
grep -q 'transfer-syntax=1.2.840.10008.1.2.5' "$T/b" || fail "stored RLE frames not labelled"
pass "frames: native, decoded, stored"

# ---- bulk data, rendered, thumbnail ----
uri=$(http GET "/dicom-web/studies/$CST/series/$CSE/instances/$CSOP/metadata" | json 'j[0]["00431029"]["BulkDataURI"]')
curl -s -D "$T/h" -o "$T/b" "$uri"
multipart "$T/h" "$T/b" > "$T/parts.txt"
$PY - "$(head -1 "$T/parts.txt")" "$PYDICOM_FILES/CT_small.dcm" <<'EOF' || fail "bulk data bytes"
import sys, pydicom
ds = pydicom.dcmread(sys.argv[2]); sys.exit(0 if open(sys.argv[1], 'rb').read() == ds[0x00431029].value else 1)
EOF
for p in "studies/$CST" "studies/$CST/series/$CSE" "studies/$CST/series/$CSE/instances/$CSOP" \
         "studies/$CST/series/$CSE/instances/$CSOP/frames/1"; do
  curl -s -D "$T/h" -o "$T/img" "$URL/dicom-web/$p/rendered"
  grep -qi '^Content-Type: image/jpeg' "$T/h" || fail "$p/rendered type"
  [ "$(head -c 2 "$T/img" | od -An -tx1 | tr -d ' ')" = ffd8 ] || fail "$p/rendered not JPEG"
done
curl -s -H 'Accept: image/png' -o "$T/img" "$URL/dicom-web/studies/$CST/series/$CSE/thumbnail"
$PY -c "
import sys, zlib, struct
d = open('$T/img','rb').read(); assert d[:8] == b'\x89PNG\r\n\x1a\n'
w, h = struct.unpack('>II', d[16:24]); assert max(w, h) == 128, (w, h)" || fail "thumbnail PNG 128"
curl -s -o "$T/img" "$URL/dicom-web/studies/$CST/series/$CSE/instances/$CSOP/rendered?viewport=64,64&window=40,400"
$PY -c "
d = open('$T/img','rb').read(); assert d[:2] == b'\xff\xd8'" || fail "rendered viewport"
code=$(curl -s -o /dev/null -w '%{http_code}' -H 'Accept: application/pdf' "$URL/dicom-web/studies/$CST/rendered"); [ "$code" = 406 ] || fail "rendered pdf: $code"
pass "bulk data, rendered, thumbnail"

# ---- same authentication as the REST API ----
stop_server
write_config '"OverwriteInstances": true, "AuthenticationEnabled": true, "RegisteredUsers": {"alice": "s3cret"}'
"$MINIPACS_BIN" "$T/Orthanc.json" >>"$T/server.log" 2>&1 &
SERVER_PID=$!
for _ in $(seq 1 200); do
  [ "$(curl -s -o /dev/null -w '%{http_code}' "$URL/system" || true)" = 401 ] && break
  sleep 0.05
done
code=$(curl -s -o /dev/null -w '%{http_code}' "$URL/dicom-web/studies"); [ "$code" = 401 ] || fail "no credentials: $code"
code=$(curl -s -o /dev/null -w '%{http_code}' -u alice:s3cret "$URL/dicom-web/studies"); [ "$code" = 200 ] || fail "credentials: $code"
pass "authentication"
