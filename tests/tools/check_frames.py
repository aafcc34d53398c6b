#!/usr/bin/python3
"""check_frames.py URL FILE... -- uploads each DICOM file (the server must run with
OverwriteInstances, several pydicom files share a SOPInstanceUID) and compares what the server
decodes with an independent decoder: pydicom + numpy (with GDCM and Pillow as pydicom's
handlers for compressed syntaxes). For every frame checked (the first, the last):
  /frames/k/numpy?rescale=0 equals the decoded array (colour: RGB after YBR conversion),
  /frames/k/image-uint16 (or image-uint8 for 8-bit data) is a PNG of the right size and mode
  whose values are the stored values clamped,
  /frames/k/preview is a PNG, /frames/k/preview with Accept: image/jpeg a JPEG, of the size.
Files pydicom cannot decode are checked against DCMTK's dcmdjpeg output when dcmdjpeg
decodes them, else only for a clean 415. Prints one line per file; exit 1 on a mismatch."""
import gzip, io, json, os, subprocess, sys, tempfile, urllib.request
import numpy as np
import pydicom
from pydicom.pixel_data_handlers.util import convert_color_space
from PIL import Image

URL = sys.argv[1]
# Files whose pixel data are deliberately broken: the server must answer a clean 400, whatever
# another decoder makes of them (Pillow returns noise for this one).
BROKEN = {'JPEG2000-embedded-sequence-delimiter.dcm':
          'its SIZ marker segment is overwritten by a sequence delimiter (Xsiz 0xdde00100)'}
LOSSY = {'1.2.840.10008.1.2.4.50', '1.2.840.10008.1.2.4.51', '1.2.840.10008.1.2.4.81',
         '1.2.840.10008.1.2.4.91'}

def get(path, accept=None):
    req = urllib.request.Request(URL + path, headers={'Accept': accept} if accept else {})
    try:
        with urllib.request.urlopen(req) as r:
            return r.status, r.headers.get('Content-Type'), r.read()
    except urllib.error.HTTPError as e:
        return e.code, e.headers.get('Content-Type'), e.read()

def post(path, data):
    req = urllib.request.Request(URL + path, data=data, method='POST')
    try:
        with urllib.request.urlopen(req) as r:
            return r.status, r.read()
    except urllib.error.HTTPError as e:
        return e.code, e.read()

def oracle(path, ds):
    """Decoded frames (n, rows, cols, spp) or None, and the decoder's name."""
    try:
        a = ds.pixel_array
        src = 'pydicom'
    except Exception:
        a = None
    if a is None:
        # DCMTK's command-line decoder, then pydicom on the uncompressed file
        with tempfile.TemporaryDirectory() as d:
            out = os.path.join(d, 'u.dcm')
            if subprocess.run(['dcmdjpeg', path, out], capture_output=True).returncode != 0:
                if subprocess.run(['dcmdrle', path, out], capture_output=True).returncode != 0:
                    return None, None
            ds2 = pydicom.dcmread(out)
            a = ds2.pixel_array
            ds.PhotometricInterpretation = ds2.PhotometricInterpretation
            src = 'dcmdjpeg'
    n = int(ds.get('NumberOfFrames', 1) or 1)
    spp = int(ds.SamplesPerPixel)
    a = a.reshape((n, int(ds.Rows), int(ds.Columns), spp))
    pi = str(ds.PhotometricInterpretation)
    if spp == 3 and pi.startswith('YBR_FULL'):
        # pydicom leaves YBR as stored; the server answers RGB
        a = np.stack([convert_color_space(f, 'YBR_FULL', 'RGB') for f in a])
    return a, src

def png(b):
    """(width, height), samples as an array (rows, cols[, channels]). Pillow has no 48-bit RGB
    mode, so PNG is read here: IHDR, IDAT joined, inflated, each row unfiltered."""
    import struct, zlib
    im = Image.open(io.BytesIO(b))
    if im.mode in ('L', 'I', 'I;16', 'RGB') and not (im.mode == 'RGB' and b[24] == 16):
        return im.size, np.array(im)
    assert b[:8] == b'\x89PNG\r\n\x1a\n', 'not a PNG'
    pos, idat = 8, b''
    while pos < len(b):
        n, t = struct.unpack('>I4s', b[pos:pos + 8])
        data = b[pos + 8:pos + 8 + n]
        if t == b'IHDR':
            w, h, depth, ctype = struct.unpack('>IIBB', data[:10])
        elif t == b'IDAT':
            idat += data
        pos += 12 + n
    ch = {0: 1, 2: 3}[ctype]
    bpp = ch * depth // 8
    stride = w * bpp
    raw = zlib.decompress(idat)
    out = bytearray()
    prev = bytearray(stride)
    for y in range(h):
        f = raw[y * (stride + 1)]
        line = bytearray(raw[y * (stride + 1) + 1:(y + 1) * (stride + 1)])
        for i in range(stride):
            a = line[i - bpp] if i >= bpp else 0
            c = prev[i - bpp] if i >= bpp else 0
            up = prev[i]
            if f == 1: line[i] = (line[i] + a) & 255
            elif f == 2: line[i] = (line[i] + up) & 255
            elif f == 3: line[i] = (line[i] + (a + up) // 2) & 255
            elif f == 4:
                p = a + up - c
                pa, pb, pc = abs(p - a), abs(p - up), abs(p - c)
                pr = a if pa <= pb and pa <= pc else (up if pb <= pc else c)
                line[i] = (line[i] + pr) & 255
        out += line
        prev = line
    arr = np.frombuffer(bytes(out), dtype='>u2' if depth == 16 else np.uint8)
    return (w, h), arr.reshape((h, w, ch) if ch > 1 else (h, w))

OCTET = 'application/octet-stream; transfer-syntax='
bad = 0
checked = 0
for path in sys.argv[2:]:
    name = os.path.basename(path)
    try:
        ds = pydicom.dcmread(path)
    except Exception:
        continue
    if 'PixelData' not in ds:
        continue
    code, body = post('/instances', open(path, 'rb').read())
    if code != 200:
        print(f'{name}: upload refused ({code}), skipped')
        continue
    iid = json.loads(body)['ID']
    if name in BROKEN:
        code2, _, body2 = get(f'/instances/{iid}/frames/0/preview')
        ok = code2 == 400 and json.loads(body2)['HttpStatus'] == 400
        print(f'{name}: broken on purpose ({BROKEN[name]}): preview -> {code2} {"ok" if ok else "UNEXPECTED"}')
        bad += not ok
        continue
    try:
        expected, src = oracle(path, ds)
    except Exception as e:
        expected, src = None, None
    code, _, body = get(f'/instances/{iid}/frames')
    if expected is None:
        # no independent decoder: a valid PNG, or a clean JSON error (415 for syntaxes we refuse)
        code2, ctype, body2 = get(f'/instances/{iid}/frames/0/preview')
        if code2 == 200:
            ok = ctype == 'image/png' and png(body2)[0] == (int(ds.Columns), int(ds.Rows))
        else:
            ok = code2 in (400, 415) and 'HttpStatus' in json.loads(body2)
        print(f'{name}: no independent decoder; preview -> {code2} {"ok" if ok else "UNEXPECTED"}')
        bad += not ok
        continue
    if code != 200:
        print(f'{name}: /frames -> {code} {body[:200]!r}')
        bad += 1
        continue
    frames = json.loads(body)
    if len(frames) != expected.shape[0]:
        print(f'{name}: {len(frames)} frames, expected {expected.shape[0]}')
        bad += 1
        continue
    ts = str(ds.file_meta.TransferSyntaxUID) if 'TransferSyntaxUID' in ds.get('file_meta', {}) else ''
    lossy = ts in LOSSY
    problems = []
    for k in sorted({0, len(frames) - 1}):
        exp = expected[k]
        code, _, b = get(f'/instances/{iid}/frames/{k}/numpy?rescale=0')
        if code != 200:
            problems.append(f'numpy {code} {b[:150]!r}')
            continue
        got = np.load(io.BytesIO(b))
        if got.shape != exp.shape:
            problems.append(f'shape {got.shape} != {exp.shape}')
            continue
        diff = np.abs(got.astype(np.int64) - exp.astype(np.int64))
        tol = 12 if lossy else (1 if exp.shape[2] == 3 and str(ds.PhotometricInterpretation).startswith('YBR') else 0)
        if diff.max() > tol or (lossy and diff.mean() > 1.0):
            problems.append(f'frame {k}: max diff {diff.max()} mean {diff.mean():.3f} (tolerance {tol})')
        # PNG of the stored values
        bits = int(ds.BitsAllocated)
        route = 'image-uint8' if bits <= 8 else 'image-uint16'
        code, ctype, b = get(f'/instances/{iid}/frames/{k}/{route}')
        if code != 200 or ctype != 'image/png':
            problems.append(f'{route} {code} {ctype}')
        else:
            size, arr = png(b)
            if size != (exp.shape[1], exp.shape[0]):
                problems.append(f'{route} size {size}')
            want = np.clip(got.astype(np.int64), 0, 255 if bits <= 8 else 65535)
            arr = arr.reshape(want.shape)
            if not np.array_equal(arr.astype(np.int64), want):
                problems.append(f'{route} values differ')
        # /raw: as stored whatever the Accept (as Orthanc 1.10.1), unless it names a
        # transfer-syntax: "*" or the stored one as stored, 1.2.840.10008.1.2.1 decoded (the
        # samples numpy got, for compressed and big endian files), any other one 406
        code, _, stored = get(f'/instances/{iid}/frames/{k}/raw', 'image/jpeg')
        code2, _, dec = get(f'/instances/{iid}/frames/{k}/raw', OCTET + '1.2.840.10008.1.2.1')
        native_le = ts in ('', '1.2.840.10008.1.2', '1.2.840.10008.1.2.1')
        if code != 200 or code2 != 200 or dec != (stored if native_le else got.tobytes()):
            problems.append(f'raw decoded {code} {code2} {len(dec)} bytes')
        code3, _, same = get(f'/instances/{iid}/frames/{k}/raw', OCTET + '*')
        if code3 != 200 or same != stored:
            problems.append(f'raw transfer-syntax=* {code3}')
        other = '1.2.840.10008.1.2.4.50' if ts != '1.2.840.10008.1.2.4.50' else '1.2.840.10008.1.2.5'
        code4, _, b4 = get(f'/instances/{iid}/frames/{k}/raw', OCTET + other)
        if code4 != 406 or json.loads(b4)['HttpStatus'] != 406 or other not in json.loads(b4)['Details']:
            problems.append(f'raw transfer-syntax={other}: {code4} {b4[:100]!r}')
        code5, ctype5, gz = get(f'/instances/{iid}/frames/{k}/raw.gz')
        if code5 != 200 or ctype5 != 'application/gzip' or gzip.decompress(gz) != stored:
            problems.append(f'raw.gz {code5} {ctype5}')
        for accept, fmt in ((None, 'PNG'), ('image/jpeg', 'JPEG')):
            code, ctype, b = get(f'/instances/{iid}/frames/{k}/preview', accept)
            if code != 200:
                problems.append(f'preview {fmt} {code}')
                continue
            im = Image.open(io.BytesIO(b))
            if im.format != fmt or im.size != (exp.shape[1], exp.shape[0]):
                problems.append(f'preview {fmt}: {im.format} {im.size}')
            im.load()
    checked += 1
    print(f'{name}: {len(frames)} frame(s) {ts} {ds.PhotometricInterpretation} vs {src}: ' + ('; '.join(problems) or 'ok'))
    bad += bool(problems)
print(f'{checked} files compared, {bad} with problems')
sys.exit(1 if bad or checked < 30 else 0)
