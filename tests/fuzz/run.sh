#!/usr/bin/env bash
# run.sh BIN SECONDS [CORPUS_ROOT] -- seeds the corpus of one fuzz target (first run only) and
# runs it for SECONDS under ASan+UBSan (leak detection on). Exit status: libFuzzer's (non-zero
# on a crash, a leak or a sanitizer report; the reproducer is left in CORPUS_ROOT/crashes).
# Seeds: small pydicom test files (ingest), option bodies (modify), paths with credentials and
# POST/PUT/DELETE bodies (router), answers of a remote SCP (scu), configuration texts (config),
# create-dicom bodies with PNG, JPEG and PDF content made by python3 (create_dicom), all made
# here; plus, on every run, the inputs that once failed (tests/fuzz/regress/<target>/,
# committed), so a regression fails at once whatever the fuzzer's luck.
set -euo pipefail
bin=$(readlink -f "$1"); secs=$2; root=$(readlink -m "${3:-$(dirname "$bin")/corpus}")
name=$(basename "$bin")
: "${PYDICOM_FILES:=/usr/lib/python3/dist-packages/pydicom/data/test_files}"
PY=/usr/bin/python3
export PYDICOM_FILES
corpus="$root/$name"; crashes="$root/crashes/$name"
mkdir -p "$corpus" "$crashes"
if [ -z "$(ls -A "$corpus")" ]; then
  case $name in
    fuzz_ingest|fuzz_ingest_fast)
      find "$PYDICOM_FILES" -maxdepth 1 -type f -name '*.dcm' -size -64k -exec cp {} "$corpus/" \; ;;
    fuzz_dimse)
      # mode byte, then: 0 an A-ASSOCIATE-RQ of our own; 1 P-DATA with a C-ECHO-RQ command and
      # an A-RELEASE-RQ; 2 PDV fragments ([ctx][flags][len16][bytes]): a C-ECHO command in two
      # fragments, a C-STORE command, dataset fragments without the last one
      "$PY" - "$corpus" <<'PY'
import os, struct, sys
d = sys.argv[1]
def item(t, b): return struct.pack(">BBH", t, 0, len(b)) + b
def elem(e, v):
    if isinstance(v, int): v = struct.pack("<H", v)
    else:
        v = v.encode(); v += b"\0" * (len(v) % 2)
    return struct.pack("<HHI", 0, e, len(v)) + v
def cmd(fields):
    b = b"".join(elem(e, v) for e, v in fields)
    return struct.pack("<HHI", 0, 0, 4) + struct.pack("<I", len(b)) + b
body = struct.pack(">HH", 1, 0) + b"FUZZ".ljust(16) + b"X".ljust(16) + b"\0" * 32 + item(0x10, b"1.2.840.10008.3.1.1.1")
body += item(0x20, bytes([1, 0, 0, 0]) + item(0x30, b"1.2.840.10008.1.1") + item(0x40, b"1.2.840.10008.1.2"))
body += item(0x50, item(0x51, struct.pack(">I", 16384)))
open(os.path.join(d, "rq"), "wb").write(b"\0" + struct.pack(">BBI", 1, 0, len(body)) + body)
echo = cmd([(0x0002, "1.2.840.10008.1.1"), (0x0100, 0x0030), (0x0110, 1), (0x0800, 0x0101)])
pdv = struct.pack(">IBB", len(echo) + 2, 1, 3) + echo
open(os.path.join(d, "echo"), "wb").write(b"\1" + struct.pack(">BBI", 4, 0, len(pdv)) + pdv + struct.pack(">BBI", 5, 0, 4) + b"\0" * 4)
frag = lambda ctx, fl, b: bytes([ctx, fl]) + struct.pack(">H", len(b)) + b
open(os.path.join(d, "echo2"), "wb").write(b"\2" + frag(1, 1, echo[:20]) + frag(1, 3, echo[20:]))
store = cmd([(0x0002, "1.2.840.10008.5.1.4.1.1.2"), (0x0100, 0x0001), (0x0110, 2), (0x0700, 0), (0x0800, 0), (0x1000, "1.2.3.4")])
open(os.path.join(d, "store"), "wb").write(b"\2" + frag(3, 3, store) + frag(3, 0, b"\x08\x00\x18\x00UI\x08\x001.2.3.4\0") + frag(3, 0, b"\0" * 64) + frag(3, 2, b""))
open(os.path.join(d, "endless"), "wb").write(b"\2" + frag(3, 3, store) + frag(3, 0, b"\0" * 2000) * 8)
PY
      ;;
    fuzz_scu)
      # byte 0: op | mode << 3 | level << 5 (see fuzz_scu.c); modes 1 and 2 then a negotiation
      # byte (0: accept the first proposed syntax). Answers a real SCP gives: C-ECHO-RSP,
      # C-FIND-RSP pending with an identifier then success, C-MOVE-RSP pending then final
      # counts, C-STORE-RSP (one file, two files), then A-RELEASE-RP; as raw PDUs (mode 1),
      # as PDV fragments (mode 2), and behind a whole A-ASSOCIATE-AC (mode 0); an -RJ; an
      # A-ABORT in the middle of a C-FIND.
      "$PY" - "$corpus" <<'PY'
import os, struct, sys
d = sys.argv[1]
def elem(e, v):
    if isinstance(v, int): v = struct.pack("<H", v)
    elif isinstance(v, tuple): v = struct.pack("<I", v[0])
    else:
        v = v.encode(); v += b"\0" * (len(v) % 2)
    return struct.pack("<HHI", 0, e, len(v)) + v
def cmd(fields):
    b = b"".join(elem(e, v) for e, v in sorted(fields))
    return struct.pack("<HHI", 0, 0, 4) + struct.pack("<I", len(b)) + b
def delem(g, e, vr, v):
    v = v.encode(); v += (b"\0" if vr == b"UI" else b" ") * (len(v) % 2)
    return struct.pack("<HH", g, e) + vr + struct.pack("<H", len(v)) + v
def pdv(ctx, flags, b): return struct.pack(">IBB", len(b) + 2, ctx, flags) + b
def pdata(*pdvs): b = b"".join(pdvs); return struct.pack(">BBI", 4, 0, len(b)) + b
def frag(ctx, fl, b): return bytes([ctx, fl]) + struct.pack(">H", len(b)) + b
RP = struct.pack(">BBI", 6, 0, 4) + b"\0" * 4
ABORT = struct.pack(">BBI", 7, 0, 4) + b"\0\0\2\0"
FIND_S, MOVE_S, CT = "1.2.840.10008.5.1.4.1.2.2.1", "1.2.840.10008.5.1.4.1.2.2.2", "1.2.840.10008.5.1.4.1.1.2"
SC = "1.2.840.10008.5.1.4.1.1.7"
def rsp(cls, field, msg, ds, status, extra=()):
    return cmd([(0x0002, cls), (0x0100, field), (0x0120, msg), (0x0800, 0x0000 if ds else 0x0101),
                (0x0900, status)] + list(extra))
echo = rsp("1.2.840.10008.1.1", 0x8030, 1, False, 0)
ident = delem(8, 0x52, b"CS", "STUDY") + delem(0x10, 0x10, b"PN", "Doe^Jane") + \
        delem(0x10, 0x20, b"LO", "P1") + delem(0x20, 0x0d, b"UI", "1.2.3.4.5")
find_p = rsp(FIND_S, 0x8020, 1, True, 0xFF00)
find_f = rsp(FIND_S, 0x8020, 1, False, 0)
counts = lambda r, c: [(0x1020, r), (0x1021, c), (0x1022, 0), (0x1023, 0)]
move_p = rsp(MOVE_S, 0x8021, 1, False, 0xFF00, counts(1, 1))
move_f = rsp(MOVE_S, 0x8021, 1, False, 0, counts(0, 2)[1:])
store = lambda msg, cls, inst: rsp(cls, 0x8001, msg, False, 0, [(0x1000, inst)])
st1 = store(1, CT, "1.2.826.0.1.3680043.2.1125.3")
st2 = store(2, SC, "1.2.826.0.1.3680043.2.1125.4")
def seed(name, op, mode, level, body):
    open(os.path.join(d, name), "wb").write(bytes([op | mode << 3 | level << 5]) + (b"\0" if mode else b"") + body)
seed("echo1", 0, 1, 0, pdata(pdv(1, 3, echo)) + RP)
seed("find1", 2, 1, 1, pdata(pdv(5, 3, find_p)) + pdata(pdv(5, 2, ident)) + pdata(pdv(5, 3, find_f)) + RP)
seed("findp1", 1, 1, 0, pdata(pdv(3, 3, find_p.replace(FIND_S.encode(), b"1.2.840.10008.5.1.4.1.2.1.1"))) + pdata(pdv(3, 2, ident)) + pdata(pdv(3, 3, find_f)) + RP)
seed("move1", 3, 1, 1, pdata(pdv(9, 3, move_p)) + pdata(pdv(9, 3, move_f)) + RP)
seed("store1", 5, 1, 0, pdata(pdv(11, 3, st1)) + RP)
seed("storetwo1", 6, 1, 0, pdata(pdv(11, 3, st1)) + pdata(pdv(13, 3, st2)) + RP)
seed("echofind1", 7, 1, 2, pdata(pdv(1, 3, echo)) + pdata(pdv(5, 3, rsp(FIND_S, 0x8020, 2, True, 0xFF00))) +
     pdata(pdv(5, 2, ident)) + pdata(pdv(5, 3, rsp(FIND_S, 0x8020, 2, False, 0))) + RP)
seed("echoecho1", 0x80, 1, 0, pdata(pdv(1, 3, echo)) + pdata(pdv(1, 3, rsp("1.2.840.10008.1.1", 0x8030, 2, False, 0))) + RP)
seed("echo2", 0, 2, 0, frag(1, 1, echo[:20]) + frag(1, 3, echo[20:]))
seed("find2", 2, 2, 3, frag(5, 3, find_p) + frag(5, 0, ident[:16]) + frag(5, 2, ident[16:]) + frag(5, 3, find_f))
# the identifier in 2-byte fragments: one flipped "last" bit is an answer cut short
seed("findfrag2", 2, 2, 1, frag(5, 3, find_p) + b"".join(frag(5, 0, ident[i:i + 2]) for i in range(0, len(ident) - 2, 2)) +
     frag(5, 2, ident[-2:]) + frag(5, 3, find_f))
seed("findcut2", 2, 2, 1, frag(5, 3, find_p) + frag(5, 2, ident[:-6]) + frag(5, 3, find_f))
seed("move2", 4, 2, 0, frag(7, 3, move_p.replace(MOVE_S.encode(), b"1.2.840.10008.5.1.4.1.2.1.2")) + frag(7, 3, move_f))
seed("storetwo2", 6, 2, 0, frag(11, 3, st1) + frag(13, 3, st2))
seed("abort1", 2, 1, 1, pdata(pdv(5, 3, find_p)) + pdata(pdv(5, 0, ident[:10])) + ABORT)
# mode 0: a whole A-ASSOCIATE-AC of our own (Verification on context 1), or an -RJ
def item(t, b): return struct.pack(">BBH", t, 0, len(b)) + b
ac = struct.pack(">HH", 1, 0) + b"FUZZSCP".ljust(16) + b"FUZZSCU".ljust(16) + b"\0" * 32 + item(0x10, b"1.2.840.10008.3.1.1.1")
ac += item(0x21, bytes([1, 0, 0, 0]) + item(0x40, b"1.2.840.10008.1.2"))
ac += item(0x50, item(0x51, struct.pack(">I", 16384)) + item(0x52, b"1.2.3.4"))
seed("echo0", 0, 0, 0, struct.pack(">BBI", 2, 0, len(ac)) + ac + pdata(pdv(1, 3, echo)) + RP)
seed("reject0", 0, 0, 0, struct.pack(">BBI", 3, 0, 4) + b"\0\1\1\3")
PY
      ;;
    fuzz_preview)
      # small images of every syntax the decoders take (native, RLE, JPEG, JPEG-LS, J2K)
      for f in MR_small_RLE MR_small_jpeg_ls_lossless MR_small_jp2klossless JPEG2000 SC_rgb_rle \
               SC_rgb_small_odd_jpeg SC_rgb_jpeg_dcmtk SC_ybr_full_422_uncompressed JPGExtended \
               SC_rgb_rle_16bit_2frame MR_small_bigendian liver_1frame rtdose_1frame; do
        [ -f "$PYDICOM_FILES/$f.dcm" ] && cp "$PYDICOM_FILES/$f.dcm" "$corpus/"
      done ;;
    fuzz_modify_options)
      i=0
      for j in '{}' '{"Replace":{"PatientName":"X","PatientID":"Y"},"Force":true}' \
               '{"Keep":["StudyDate","SeriesDescription"],"KeepPrivateTags":true}' \
               '{"Remove":["PatientBirthDate","0010,1010"],"RemovePrivateTags":true}' \
               '{"Replace":{"ReferencedImageSequence[*].ReferencedSOPInstanceUID":"1.2"},"Force":true}' \
               '{"DicomVersion":"2023b","Asynchronous":true,"Priority":5,"KeepSource":false}' \
               '{"Replace":{"0009,1001":"x"},"PrivateCreator":"Mine","Permissive":true}' \
               '{"Synchronous":false,"Keep":["PatientName"],"Replace":{"StudyInstanceUID":"1.2.3"}}'; do
        printf '%s' "$j" > "$corpus/seed$i.json"; i=$((i + 1))
      done ;;
    fuzz_router)
      i=0
      for p in '/system' '/statistics' '/patients?expand' '/instances?since=0&limit=10' \
               '/instances/x/tags?simplify' '/studies/x/series' '/changes?since=0&limit=5' \
               '/instances/../../etc/passwd' '/patients/x/protected' '/tools/metrics-prometheus' \
               '/instances/x/content/0010-0010' '/series/x/shared-tags' '/jobs?expand' \
               '/instances/@I/tags?simplify' '/instances/@I/content/0008-1140/0/0008-1150' \
               '/patients/@P/protected' '/studies/@S/instances' '/series/@E/shared-tags' \
               '/instances/@I/metadata?expand' '/instances/@I/attachments/dicom/info' \
               '/studies/@S/module-patient' '/instances/@I/file' '/patients/@P/statistics'; do
        printf 'alice:s3cret\n%s' "$p" > "$corpus/seed$i"; i=$((i + 1))
      done ;;
    fuzz_multipart)
      # [chunk byte][Content-Type]\n[body]: well-formed bodies, hostile ones (nested, endless,
      # no boundary, many parts, long headers), a DICOM file as a part
      "$PY" - "$corpus" "$PYDICOM_FILES/CT_small.dcm" <<'PY'
import sys
d, dcm = sys.argv[1], open(sys.argv[2], "rb").read()[:3000]
ct = b'multipart/related; type="application/dicom"; boundary=XyZ'
def part(data, h=b"Content-Type: application/dicom\r\n"): return b"--XyZ\r\n" + h + b"\r\n" + data + b"\r\n"
end = b"--XyZ--\r\n"
seeds = [part(b"abc") + end, b"preamble\r\n" + part(dcm) + part(b"", b"") + end + b"epilogue",
         part(b"x") + b"--XyZ\r\n\r\nendless", part(b"--in\r\n\r\ny\r\n--in--", b"Content-Type: multipart/related; boundary=in\r\n") + end,
         b"no boundary", b"".join(part(b"p") for _ in range(60)) + end, part(b"x", b"A: " + b"b" * 600 + b"\r\n") + end,
         b"--XyZ \t\r\nContent-Disposition: form-data;\r\n name=\"f\"; filename=\"a.dcm\"\r\n\r\n\r\n--XyZ\r\n--XyZ--"]
for i, s in enumerate(seeds):
    open("%s/seed%d" % (d, i), "wb").write(bytes([i * 7 % 65]) + ct + b"\n" + s)
open("%s/seedform" % d, "wb").write(b"\x05multipart/form-data; boundary=\"q q\"\n--q q\r\n\r\nz\r\n--q q--")
PY
      ;;
    fuzz_config)
      i=0
      for j in '{}' '{ "Name": "x", "HttpPort": 8042, "DicomPort": 4242 }' \
               '// comment\n{ /* block */ "StorageDirectory": "/tmp/x", "SyncStorageArea": false }' \
               '{"RegisteredUsers": {"alice": "s3cret", "bob": "pa:ss"}, "AuthenticationEnabled": true}' \
               '{"DicomModalities": {"m": ["AET", "127.0.0.1", 104], "n": {"AET": "N", "Host": "h", "Port": 1}}}' \
               '{"Dictionary": {"0009,1001": ["LO", "Mine", 1, 1, "Creator"]}, "UserMetadata": {"Sample": 1024}}' \
               '{"MaximumStorageSize": 10, "MaximumPatientCount": 2, "StorageCompression": false, "LogLevel": "info"}' \
               '{"DefaultEncoding": "Latin1", "DicomAet": "ORTHANC", "RemoteAccessAllowed": true, "Plugins": []}' \
               '{"ConcurrentJobs": 2, "HttpThreadsCount": 4, "DicomThreadsCount": 4, "OverwriteInstances": true}'; do
        printf "$j" > "$corpus/seed$i.json"; i=$((i + 1))
      done
      [ -f "$(dirname "$0")/../../Orthanc.json.example" ] && cp "$(dirname "$0")/../../Orthanc.json.example" "$corpus/example.json" ;;
    fuzz_create_dicom)
      # bodies with PNG (gray8, gray16, RGB, RGBA, palette), JPEG, PDF content, sequences, Parent
      /usr/bin/python3 - "$corpus" "$PYDICOM_FILES" <<'PY'
import base64, hashlib, json, os, struct, sys, zlib
out, files = sys.argv[1], sys.argv[2]
def chunk(t, d): return struct.pack(">I", len(d)) + t + d + struct.pack(">I", zlib.crc32(t + d) & 0xffffffff)
def png(w, h, ct, depth, px, plte=None):
    raw = b"".join(b"\0" + b"".join(struct.pack(">H", s) if depth == 16 else bytes([s]) for x in range(w) for s in px(x, y)) for y in range(h))
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", struct.pack(">IIBBBBB", w, h, depth, ct, 0, 0, 0)) + \
        (chunk(b"PLTE", plte) if plte else b"") + chunk(b"IDAT", zlib.compress(raw)) + chunk(b"IEND", b"")
def uri(mime, b): return "data:%s;base64,%s" % (mime, base64.b64encode(b).decode())
bodies = [
    {"Tags": {"PatientName": "Fuzz^Me", "PatientID": "F1", "StudyDescription": "x"}},
    {"Tags": {"0010,0010": "A", "ReferencedStudySequence": [{"ReferencedSOPInstanceUID": "1.2.3"}]}},
    {"Tags": {"PatientID": "P"}, "Content": uri("image/png", png(3, 2, 0, 8, lambda x, y: (x * 9,)))},
    {"Tags": {"PatientID": "P"}, "Content": uri("image/png", png(3, 2, 0, 16, lambda x, y: (x * 900,)))},
    {"Tags": {"PatientID": "P"}, "Content": uri("image/png", png(2, 2, 2, 8, lambda x, y: (x, y, 7)))},
    {"Tags": {"PatientID": "P"}, "Content": uri("image/png", png(2, 2, 6, 8, lambda x, y: (x, y, 7, 128)))},
    {"Content": uri("image/png", png(2, 2, 3, 8, lambda x, y: (x,), plte=bytes(6)))},
    {"Tags": {"PatientID": "D"}, "Content": uri("application/pdf", b"%PDF-1.4\n%fuzz\n")},
]
try:
    import pydicom
    from pydicom.encaps import generate_pixel_data_frame
    d = pydicom.dcmread(os.path.join(files, "SC_rgb_jpeg_dcmtk.dcm"))
    bodies.append({"Tags": {"PatientID": "J"}, "Content": uri("image/jpeg", next(generate_pixel_data_frame(d.PixelData)))})
    ct = pydicom.dcmread(os.path.join(files, "CT_small.dcm"))
    key = "%s|%s" % (str(ct.PatientID).strip(), str(ct.StudyInstanceUID).strip())
    h = hashlib.sha1(key.encode()).hexdigest()
    bodies.append({"Parent": "-".join(h[i:i + 8] for i in range(0, 40, 8)), "Tags": {"SeriesDescription": "child"}})
except Exception as e:
    print("fuzz: fewer create-dicom seeds:", e, file=sys.stderr)
for i, b in enumerate(bodies):
    open(os.path.join(out, "seed%d.json" % i), "w").write(json.dumps(b))
PY
      ;;
  esac
  if [ "$name" = fuzz_router ]; then # bodies for POST, PUT and DELETE
    i=100
    for s in 'POST /tools/find\n{"Level":"Study","Query":{"PatientID":"*"},"Expand":true}' \
             'POST /tools/create-dicom\n{"Tags":{"PatientName":"R"}}' \
             'POST /studies/@S/anonymize\n{"Keep":["StudyDescription"]}' \
             'POST /instances/@I/modify\n{"Replace":{"PatientName":"M"},"Force":true}' \
             'PUT /patients/@P/protected\n1' 'PUT /instances/@I/metadata/1024\nvalue' \
             'DELETE /instances/@I/metadata/1024\n' 'DELETE /series/@E\n' \
             'POST /instances/@I/attachments/dicom/verify-md5\n' 'POST /tools/lookup\n1.2.3' \
             'DELETE /changes\n' 'POST /instances\nnot dicom'; do
      printf "alice:s3cret\n$s" > "$corpus/seed$i"; i=$((i + 1))
    done
  fi
fi
regress="$(dirname "$0")/regress/$name"
[ -d "$regress" ] && cp "$regress"/* "$corpus/"
cd "$crashes"
echo "fuzz: $name for ${secs}s, corpus $(ls "$corpus" | wc -l) inputs"
# -malloc_limit_mb: DCMTK allocates an element's declared length (up to 4 GB) before it
# finds the buffer too short, then fails cleanly (dcm_parse -> 400); libFuzzer would stop at
# the first such input. Single allocations up to 4 GB pass, RSS stays capped at 2 GB.
"$bin" -max_total_time="$secs" -rss_limit_mb=2048 -malloc_limit_mb=4200 -timeout=20 -print_final_stats=1 \
  -artifact_prefix="$crashes/" "$corpus" 2>"$root/$name.log" || { rc=$?; tail -60 "$root/$name.log"; exit $rc; }
grep -E '^#[0-9]+.*DONE|stat::number_of_executed_units|stat::average_exec_per_sec|stat::peak_rss_mb' "$root/$name.log" | tr '\n' ' '
echo
