#!/usr/bin/env bash
# C-MOVE and C-GET SCP: movescu to a storescp started here receives every instance of a study,
# the dataset bytes identical to what was stored (sent from disk as stored); an unknown
# destination answers 0xA801; a modality with AllowMove false is refused; getscu receives
# every instance of a series; files in a syntax the destination refuses are decoded; a destination that stops answering mid C-MOVE fails the move
# within DicomScuTimeout and leaves no thread or file descriptor behind.
source "$(dirname "$0")/lib.sh"
RAW="$MP_SRC/tests/tools/dicom_raw.py"
DEST_PORT=$(free_port); STALL_PORT=$(free_port)
write_config "\"DicomModalities\": { \"dest\": [\"DEST\", \"127.0.0.1\", $DEST_PORT],
    \"stall\": [\"STALL\", \"127.0.0.1\", $STALL_PORT],
    \"mover\": [\"MOVESCU\", \"127.0.0.1\", 1], \"getter\": [\"GETSCU\", \"127.0.0.1\", 1],
    \"nomove\": {\"AET\": \"NOMOVE\", \"Host\": \"127.0.0.1\", \"Port\": 1, \"AllowMove\": false} },
  \"DicomScuTimeout\": 3"
mkdir -p "$T/recv" "$T/get"
storescp -B -aet DEST -od "$T/recv" "$DEST_PORT" >"$T/storescp.log" 2>&1 &
DEST_PID=$!
STALL_PID=""
trap 'rc=$?; set +e; kill $DEST_PID $STALL_PID 2>/dev/null; wait $DEST_PID $STALL_PID 2>/dev/null; (exit $rc); on_exit' EXIT
start_server

$PY "$MP_SRC/tests/tools/gen_study.py" "$T/study" 20 --series 2 --size 64 --seed 3 >/dev/null
storescu -aec ORTHANC +sd 127.0.0.1 "$DICOM_PORT" "$T/study" || fail "storescu"
STUDY=$($PY -c "import pydicom,glob; print(pydicom.dcmread(sorted(glob.glob('$T/study/*.dcm'))[0]).StudyInstanceUID)")
stored_bytes() { # the dataset part of every stored file, as the server keeps them
  for id in $(http GET /instances | json '" ".join(j)'); do
    curl -sf "$URL/instances/$id/file" -o "$T/one.dcm"; $PY "$RAW" dsbytes "$T/one.dcm"
  done | sort
}
stored_bytes > "$T/want"
[ "$(wc -l < "$T/want")" = 20 ] || fail "20 instances expected"

movescu -S -aet MOVESCU -aec ORTHANC -aem DEST -k QueryRetrieveLevel=STUDY -k "StudyInstanceUID=$STUDY" \
  127.0.0.1 "$DICOM_PORT" >"$T/move.log" 2>&1 || fail "movescu: $(tail -5 "$T/move.log")"
for f in "$T"/recv/*; do $PY "$RAW" dsbytes "$f"; done | sort > "$T/got"
[ "$(wc -l < "$T/got")" = 20 ] || fail "storescp received $(wc -l < "$T/got") instances, not 20"
cmp -s "$T/want" "$T/got" || fail "moved datasets differ from the stored ones"
grep -q "C-MOVE for MOVESCU@127.0.0.1: 20 instance(s), 20 sent, 0 warning, 0 failed" "$T/server.log" || fail "move not logged"
pass "C-MOVE of a study: 20 instances, byte-identical"

movescu -v -S -aet MOVESCU -aec ORTHANC -aem NOBODY -k QueryRetrieveLevel=STUDY -k "StudyInstanceUID=$STUDY" \
  127.0.0.1 "$DICOM_PORT" >"$T/move2.log" 2>&1 || true
grep -qi "MoveDestinationUnknown\|0xa801" "$T/move2.log" || fail "unknown destination: $(tail -3 "$T/move2.log")"
if movescu -S -aet NOMOVE -aec ORTHANC -aem DEST -k QueryRetrieveLevel=STUDY -k "StudyInstanceUID=$STUDY" \
     127.0.0.1 "$DICOM_PORT" >"$T/move3.log" 2>&1 && ! grep -qi "reject\|refused\|fail" "$T/move3.log"; then
  fail "AllowMove false could C-MOVE"
fi
grep -q 'C-MOVE .*refused: AET "NOMOVE"' "$T/server.log" || fail "AllowMove refusal not logged"
pass "C-MOVE: unknown destination 0xA801, AllowMove false refused"

SERIES=$($PY -c "import pydicom,glob; print(pydicom.dcmread(sorted(glob.glob('$T/study/*.dcm'))[0]).SeriesInstanceUID)")
(cd "$T/get" && getscu -S -aet GETSCU -aec ORTHANC -k QueryRetrieveLevel=SERIES -k "StudyInstanceUID=$STUDY" \
   -k "SeriesInstanceUID=$SERIES" 127.0.0.1 "$DICOM_PORT" >"$T/get.log" 2>&1) || fail "getscu: $(tail -5 "$T/get.log")"
[ "$(ls "$T/get" | wc -l)" = 10 ] || fail "getscu received $(ls "$T/get" | wc -l) files, not 10"
for f in "$T"/get/*; do $PY "$RAW" dsbytes "$f"; done | sort > "$T/gotget"
comm -23 "$T/gotget" "$T/want" | grep -q . && fail "C-GET datasets differ from the stored ones"
pass "C-GET of a series: 10 instances, byte-identical"

# A stored syntax the destination refuses (storescp takes uncompressed ones only): the file is
# decoded (RLE, MR_small_jpeg_ls_lossless: JPEG-LS) and arrives uncompressed, same pixels.
rm -f "$T"/recv/*
for f in SC_rgb_rle.dcm MR_small_jpeg_ls_lossless.dcm; do
  upload "$PYDICOM_FILES/$f" >/dev/null || fail "upload $f"
  uid=$($PY -c "import pydicom; print(pydicom.dcmread('$PYDICOM_FILES/$f').StudyInstanceUID)")
  movescu -S -aet MOVESCU -aec ORTHANC -aem DEST -k QueryRetrieveLevel=STUDY -k "StudyInstanceUID=$uid" \
    127.0.0.1 "$DICOM_PORT" >"$T/move5.log" 2>&1 || fail "movescu $f: $(tail -3 "$T/move5.log")"
  got=$(ls "$T"/recv/* | head -1)
  $PY - "$got" "$PYDICOM_FILES/$f" <<'PY' || fail "$f: decoded copy differs"
import sys, pydicom, numpy
a, b = pydicom.dcmread(sys.argv[1]), pydicom.dcmread(sys.argv[2])
assert a.file_meta.TransferSyntaxUID in ("1.2.840.10008.1.2", "1.2.840.10008.1.2.1"), a.file_meta.TransferSyntaxUID
assert a.SOPInstanceUID == b.SOPInstanceUID
assert numpy.array_equal(a.pixel_array, b.pixel_array)
PY
  rm -f "$T"/recv/*
done
pass "C-MOVE to a destination without the stored syntax: decoded (RLE, JPEG-LS), same pixels"

# A destination that accepts the association, then never answers a C-STORE.
$PY - "$STALL_PORT" >"$T/stall.log" 2>&1 <<'PY' &
import socket, struct, sys
s = socket.socket(); s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
s.bind(("127.0.0.1", int(sys.argv[1]))); s.listen(1)
c, _ = s.accept()
def rd(n):
    b = b""
    while len(b) < n:
        x = c.recv(n - len(b))
        if not x: raise SystemExit(0)
        b += x
    return b
t, _, n = struct.unpack(">BBI", rd(6)); body = rd(n)
i, items = 68, b""
while i < len(body):
    it, _, ln = struct.unpack(">BBH", body[i:i + 4]); v = body[i + 4:i + 4 + ln]
    if it == 0x20:
        pcid, j, ts = v[0], 4, None
        while j < len(v):
            st, _, sl = struct.unpack(">BBH", v[j:j + 4])
            if st == 0x40 and ts is None: ts = v[j + 4:j + 4 + sl]
            j += 4 + sl
        sub = struct.pack(">BBH", 0x40, 0, len(ts)) + ts
        items += struct.pack(">BBH", 0x21, 0, 4 + len(sub)) + bytes([pcid, 0, 0, 0]) + sub
    i += 4 + ln
app = b"1.2.840.10008.3.1.1.1"
ui = struct.pack(">BBH", 0x51, 0, 4) + struct.pack(">I", 16384)
ac = struct.pack(">HH", 1, 0) + body[4:68] + struct.pack(">BBH", 0x10, 0, len(app)) + app + items + struct.pack(">BBH", 0x50, 0, len(ui)) + ui
c.sendall(struct.pack(">BBI", 2, 0, len(ac)) + ac)
print("associated", flush=True)
while c.recv(65536): pass   # read everything, answer nothing
PY
STALL_PID=$!
sleep 0.5
pid=$SERVER_PID
threads0=$(ls /proc/$pid/task | wc -l); fds0=$(ls /proc/$pid/fd | wc -l)
t0=$(date +%s)
movescu -S -aet MOVESCU -aec ORTHANC -aem STALL -k QueryRetrieveLevel=STUDY -k "StudyInstanceUID=$STUDY" \
  127.0.0.1 "$DICOM_PORT" >"$T/move4.log" 2>&1 || true
t1=$(date +%s)
grep -q associated "$T/stall.log" || fail "the stalling peer was not reached"
grep -qi "OutOfResourcesSubOperations\|0xa702" "$T/move4.log" || fail "stalled move status: $(tail -4 "$T/move4.log")"
[ $((t1 - t0)) -le 30 ] || fail "stalled move took $((t1 - t0)) s"
grep -q "stopped on a network error" "$T/server.log" || fail "stalled move not logged"
for _ in $(seq 1 40); do
  [ "$(ls /proc/$pid/task | wc -l)" -le "$threads0" ] && [ "$(ls /proc/$pid/fd | wc -l)" -le "$fds0" ] && break
  sleep 0.25
done
[ "$(ls /proc/$pid/task | wc -l)" -le "$threads0" ] || fail "threads left: $(ls /proc/$pid/task | wc -l) > $threads0"
[ "$(ls /proc/$pid/fd | wc -l)" -le "$fds0" ] || fail "descriptors left: $(ls /proc/$pid/fd | wc -l) > $fds0"
echoscu -aec ORTHANC 127.0.0.1 "$DICOM_PORT" || fail "server unusable after the stalled move"
pass "a destination that stops answering: move fails in DicomScuTimeout, no thread or fd left"
