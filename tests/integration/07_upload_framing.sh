#!/usr/bin/env bash
# Our own framing walk runs before DCMTK reads an upload: small files whose elements declare
# 3.6 GB values (top level, inside sequences and items of defined or undefined length, in
# explicit and implicit VR, without a meta header, in a deflated dataset, as an encapsulated
# fragment) are refused with 400 and Orthanc's JSON error, and the server never reserves the
# declared size: its VmPeak (peak virtual memory, which counts even an untouched malloc) grows
# by less than 512 MB over all of them. Before the walk, DCMTK allocated the 3.6 GB first.
# Well-formed files with nested sequences of every kind still upload (02 covers pydicom's set).
source "$(dirname "$0")/lib.sh"
start_server

$PY - "$T" <<'PY'
import struct, sys, zlib, os
out = sys.argv[1]
HUGE = 0xD6000000  # 3.6 GB
LONG = (b"OB", b"OW", b"UN", b"UT", b"SQ", b"OF", b"UC", b"UR", b"OD", b"OL")
def ex(g, e, vr, val, length=None):
    L = len(val) if length is None else length
    if vr in LONG:
        return struct.pack("<HH2sHI", g, e, vr, 0, L) + val
    return struct.pack("<HH2sH", g, e, vr, L) + val
def im(g, e, val, length=None):
    return struct.pack("<HHI", g, e, len(val) if length is None else length) + val
def item(body, undefined=False):
    if undefined:
        return struct.pack("<HHI", 0xFFFE, 0xE000, 0xFFFFFFFF) + body + struct.pack("<HHI", 0xFFFE, 0xE00D, 0)
    return struct.pack("<HHI", 0xFFFE, 0xE000, len(body)) + body
SEQ_END = struct.pack("<HHI", 0xFFFE, 0xE0DD, 0)
def meta(ts):
    body = ex(2, 1, b"OB", b"\0\1") + ex(2, 2, b"UI", b"1.2.840.10008.5.1.4.1.1.7\0") + \
        ex(2, 3, b"UI", b"1.2.3.4\0") + ex(2, 0x10, b"UI", ts + (b"\0" if len(ts) % 2 else b""))
    return b"\0" * 128 + b"DICM" + ex(2, 0, b"UL", struct.pack("<I", len(body))) + body
EXPL, IMPL, DEFL = b"1.2.840.10008.1.2.1", b"1.2.840.10008.1.2", b"1.2.840.10008.1.2.1.99"
def ids_ex(n):
    return ex(8, 0x16, b"UI", b"1.2.840.10008.5.1.4.1.1.7\0") + ex(8, 0x18, b"UI", b"1.2.3.4.%d" % n) + \
        ex(0x10, 0x20, b"LO", b"FRAMING ") + ex(0x20, 0x0d, b"UI", b"1.2.3\0") + ex(0x20, 0x0e, b"UI", b"1.2.3.5\0")
def ids_im(n):
    return im(8, 0x16, b"1.2.840.10008.5.1.4.1.1.7\0") + im(8, 0x18, b"1.2.3.4.%d" % n) + \
        im(0x10, 0x20, b"FRAMING ") + im(0x20, 0x0d, b"1.2.3\0") + im(0x20, 0x0e, b"1.2.3.5\0")
bomb_ex = struct.pack("<HH2sHI", 0x0019, 0x1010, b"OB", 0, HUGE) + b"x" * 64
bomb_im = struct.pack("<HHI", 0x0010, 0x4000, HUGE) + b"x" * 64   # PatientComments (LT)
files = {
  # top level, explicit VR, with a meta header
  "top_explicit": meta(EXPL) + ids_ex(1) + bomb_ex,
  # top level, implicit VR, neither preamble nor meta header (DCMTK guesses the encoding)
  "top_implicit_nometa": ids_im(2) + bomb_im,
  # inside an undefined-length item of an undefined-length sequence
  "seq_undefined": meta(EXPL) + ids_ex(3) + struct.pack("<HH2sHI", 0x0008, 0x1140, b"SQ", 0, 0xFFFFFFFF) +
      item(ex(8, 0x1150, b"UI", b"1.2\0") + bomb_ex, undefined=True) + SEQ_END,
  # inside a defined-length item of a defined-length sequence: both lengths fit in the file
  "seq_defined": meta(EXPL) + ids_ex(4) + ex(8, 0x1140, b"SQ", item(ex(8, 0x1150, b"UI", b"1.2\0") + bomb_ex)),
  # implicit VR: ReferencedImageSequence is a sequence only by the data dictionary
  "seq_defined_implicit": meta(IMPL) + ids_im(5) + im(8, 0x1140, item(im(8, 0x1150, b"1.2\0") + bomb_im)),
  # an encapsulated PixelData fragment
  "fragment": meta(b"1.2.840.10008.1.2.4.50") + ids_ex(6) +
      struct.pack("<HH2sHI", 0x7FE0, 0x0010, b"OB", 0, 0xFFFFFFFF) + item(b"") +
      struct.pack("<HHI", 0xFFFE, 0xE000, HUGE) + b"\xff\xd8" + b"x" * 62,
}
c = zlib.compressobj(9, zlib.DEFLATED, -15)
files["deflated"] = meta(DEFL) + c.compress(ids_ex(7) + bomb_ex) + c.flush()
for k, v in files.items():
    assert len(v) < 1024, (k, len(v))
    open(os.path.join(out, k + ".dcm"), "wb").write(v)
# the same shapes without the bomb: they upload
c = zlib.compressobj(9, zlib.DEFLATED, -15)
good = {
  "good_seq_defined": meta(EXPL) + ids_ex(11) + ex(8, 0x1140, b"SQ", item(ex(8, 0x1150, b"UI", b"1.2\0")) +
      item(ex(8, 0x1150, b"UI", b"1.3\0"), undefined=True)),
  "good_seq_defined_implicit": meta(IMPL) + ids_im(12) + im(8, 0x1140, item(im(8, 0x1150, b"1.2\0"))),
  "good_nometa": ids_im(13) + im(0x10, 0x10, b"Good^Name "),
  "good_deflated": meta(DEFL) + c.compress(ids_ex(14)) + c.flush(),
}
for k, v in good.items():
    open(os.path.join(out, k + ".dcm"), "wb").write(v)
PY

vmpeak() { awk '/^VmPeak:/ {print $2}' "/proc/$SERVER_PID/status"; }
before=$(vmpeak)
for f in top_explicit top_implicit_nometa seq_undefined seq_defined seq_defined_implicit fragment deflated; do
  r=$(http POST /instances --data-binary @"$T/$f.dcm")
  [ "$(status)" = 400 ] || fail "$f: $(status) $r"
  echo "$r" | json 'j["HttpStatus"] == 400 and j["OrthancError"] == "Bad file format"' | grep -qx True || fail "$f: $r"
  echo "$r" | json 'j["Details"]' | grep -q "cut" || fail "$f: the framing walk did not refuse it: $r"
done
after=$(vmpeak)
[ $((after - before)) -lt 524288 ] || fail "VmPeak grew from $before to $after kB: something reserved a declared length"
kill -0 "$SERVER_PID" || fail "server died"
[ "$(http GET /statistics | json 'j["CountInstances"]')" = 0 ] || fail "a refused file was stored"
pass "3.6 GB declared lengths in ~400-byte uploads: 400 before DCMTK allocates (VmPeak $before -> $after kB)"

for f in good_seq_defined good_seq_defined_implicit good_nometa good_deflated; do
  r=$(http POST /instances --data-binary @"$T/$f.dcm")
  [ "$(status)" = 200 ] || fail "$f: $(status) $r"
done
[ "$(http GET /statistics | json 'j["CountInstances"]')" = 4 ] || fail "well-formed files not all stored"
pass "well-formed sequences (defined/undefined, explicit/implicit), no meta header, deflated: stored"
