#!/usr/bin/env bash
# Archives (issue 14): a 2,000-instance study uploaded as one ZIP, a create-archive job of it,
# streamed archives of each level, media with a DICOMDIR, two resources in one archive,
# transcoding (?transcode=, archive Transcode, a JPEG 2000 source), ZIP bombs refused
# (tests/tools/check_archive.py). Then IngestTranscoding after a restart.
source "$(dirname "$0")/lib.sh"
write_config '"MaximumUploadSize": 8'
start_server
$PY "$MP_SRC/tests/tools/gen_study.py" "$T/study" 2000 --series 2 --size 16 --seed 3 >/dev/null
$PY "$MP_SRC/tests/tools/check_archive.py" "$URL" "$T/study" || fail "archives"
pass "archives, media, ZIP upload, transcoding"
# a stream whose client goes away: the writer stops, the server stays healthy
st=$(http GET /studies | json 'j[0]')
curl -s --max-time 5 "$URL/studies/$st/archive" | head -c 1000 > /dev/null || true
http GET /system > /dev/null; [ "$(status)" = 200 ] || fail "server after an aborted archive"
stop_server
write_config '"IngestTranscoding": "1.2.840.10008.1.2.1"'
start_server
id=$(upload "$PYDICOM_FILES/MR_small_jpeg_ls_lossless.dcm" | json 'j["ID"]')
curl -sf "$URL/instances/$id/file" -o "$T/ingested.dcm"
$PY - "$T/ingested.dcm" "$PYDICOM_FILES/MR_small_jpeg_ls_lossless.dcm" <<'PY' || fail "IngestTranscoding"
import sys, numpy as np, pydicom
a, b = pydicom.dcmread(sys.argv[1]), pydicom.dcmread(sys.argv[2])
assert a.file_meta.TransferSyntaxUID == '1.2.840.10008.1.2.1', a.file_meta.TransferSyntaxUID
assert np.array_equal(a.pixel_array, b.pixel_array)
PY
pass "IngestTranscoding"
