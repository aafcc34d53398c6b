#!/usr/bin/python3
"""check_render.py URL DIR -- rendering rules on the synthetic images of make_images.py, with
values computed here from the known pixels: windowing (the file's and the request's),
rescale, MONOCHROME1 inversion, resize (box fit, smooth or not), preview stretch, clamping of
image-uint8/uint16/int16 (int16 as two's complement, as Orthanc), PALETTE COLOR, matlab and
numpy (rescaled float32, raw, .npz), multi-frame, ordered-slices, and clean errors for broken
pixel data. Exit 1 on the first failure."""
import io, json, sys, urllib.request, zipfile
import numpy as np
from PIL import Image

URL, DIR = sys.argv[1], sys.argv[2]

def get(path, accept=None):
    req = urllib.request.Request(URL + path, headers={'Accept': accept} if accept else {})
    try:
        with urllib.request.urlopen(req) as r:
            return r.status, r.headers.get('Content-Type'), r.read()
    except urllib.error.HTTPError as e:
        return e.code, e.headers.get('Content-Type'), e.read()

def upload(name):
    req = urllib.request.Request(URL + '/instances', data=open(f'{DIR}/{name}', 'rb').read(), method='POST')
    with urllib.request.urlopen(req) as r:
        return json.load(r)

def image(path, accept=None, fmt='PNG'):
    code, ctype, b = get(path, accept)
    check(code == 200, f'{path}: HTTP {code} {b[:200]!r}')
    im = Image.open(io.BytesIO(b))
    check(im.format == fmt, f'{path}: {im.format} instead of {fmt}')
    return np.array(im).astype(np.int64)

def check(cond, what):
    if not cond:
        print('FAIL:', what)
        sys.exit(1)

def error(path, status, words):
    code, ctype, b = get(path)
    check(code == status, f'{path}: HTTP {code}, expected {status}: {b[:200]!r}')
    j = json.loads(b)
    check(j['HttpStatus'] == status and words in j.get('Details', ''), f'{path}: error body {j}')
    return j

g = np.array([[-1000, 0, 100, 500], [1000, 1500, 2000, 300]])
gid = upload('gray16.dcm')['ID']
I = f'/instances/{gid}'

# preview: stored values min..max stretched (rounded)
want = np.floor((g - g.min()) / (g.max() - g.min()) * 255 + 0.5)
check(np.array_equal(image(f'{I}/preview'), want), 'preview stretch')
check(np.array_equal(image(f'{I}/frames/0/preview'), want), 'frame preview')
# rendered, the file's window (300/801) on rescaled values (2v - 100), PS3.3 C.11.2.1.2
def window(v, c, w):
    lo, hi = c - 0.5 - (w - 1) / 2, c - 0.5 + (w - 1) / 2
    return np.clip(np.floor((v - lo) / (hi - lo) * 255), 0, 255)
hu = 2 * g - 100
check(np.array_equal(image(f'{I}/rendered'), window(hu, 300, 801)), 'rendered with the file window')
check(np.array_equal(image(f'{I}/rendered?window-center=0&window-width=4000'), window(hu, 0, 4000)),
      'rendered with a requested window')
# resize: box fit keeping the aspect ratio; nearest neighbour without smoothing
r = image(f'{I}/rendered?width=8&smooth=0')
check(r.shape == (4, 8), f'resize to width 8: {r.shape}')
check(np.array_equal(r, np.kron(window(hu, 300, 801), np.ones((2, 2)))), 'nearest-neighbour upscale')
check(image(f'{I}/rendered?width=100&height=5').shape == (5, 10), 'box fit 100x5')
check(image(f'{I}/rendered?height=1&smooth=1').shape == (1, 2), 'height only')
# JPEG with quality
j = image(f'{I}/rendered?quality=95', 'image/jpeg', 'JPEG')
check(j.shape == (2, 4), 'jpeg size')
error(f'{I}/rendered?quality=0', 400, 'quality')
# clamping views
check(np.array_equal(image(f'{I}/image-uint8'), np.clip(g, 0, 255)), 'image-uint8 clamps')
check(np.array_equal(image(f'{I}/image-uint16'), np.clip(g, 0, 65535)), 'image-uint16 clamps')
check(np.array_equal(image(f'{I}/image-int16'), g & 0xffff), 'image-int16 two\'s complement')
code, _, _ = get(f'{I}/image-uint16', 'image/jpeg')
check(code == 406, f'16-bit as JPEG: {code}')
# matlab and numpy
code, ctype, b = get(f'{I}/frames/0/matlab')
check(b.decode() == 'double([ -1000 0 100 500 ; 1000 1500 2000 300 ])', f'matlab {b!r}')
code, _, b = get(f'{I}/frames/0/numpy')
a = np.load(io.BytesIO(b))
check(a.dtype == np.float32 and a.shape == (2, 4, 1) and np.array_equal(a[:, :, 0], hu), f'numpy rescaled {a.dtype} {a.shape}')
code, _, b = get(f'{I}/numpy?rescale=0')
a = np.load(io.BytesIO(b))
check(a.dtype == np.int16 and a.shape == (1, 2, 4, 1) and np.array_equal(a[0, :, :, 0], g), 'numpy raw instance')
code, _, b = get(f'{I}/numpy?compress=1')
z = np.load(io.BytesIO(b))
check(zipfile.is_zipfile(io.BytesIO(b)) and np.array_equal(z['arr_0'][0, :, :, 0], hu), 'numpy compress')

# MONOCHROME1: inverted
m = np.array([[0, 10, 128, 255], [1, 2, 3, 4]])
mid = upload('mono1.dcm')['ID']
check(np.array_equal(image(f'/instances/{mid}/preview'), 255 - m), 'MONOCHROME1 preview inverted')
check(np.array_equal(image(f'/instances/{mid}/rendered?window-center=128&window-width=256'),
                     255 - window(m, 128, 256)), 'MONOCHROME1 rendered inverted')
check(np.array_equal(image(f'/instances/{mid}/image-uint8'), m), 'MONOCHROME1 raw values not inverted')

# PALETTE COLOR: 16-bit LUT entries, high byte
pid = upload('palette.dcm')['ID']
p = image(f'/instances/{pid}/preview')
v = np.array([0, 1, 128, 255])
check(p.shape == (1, 4, 3) and np.array_equal(p[0], np.stack([v, 255 - v, np.full(4, 128)], 1)), f'palette {p}')

# multi-frame: one frame at a time, 404 past the end
mfid = upload('multi.dcm')['ID']
code, _, b = get(f'/instances/{mfid}/frames')
check(json.loads(b) == [0, 1, 2], f'frames {b!r}')
for k in range(3):
    check(np.all(image(f'/instances/{mfid}/frames/{k}/image-uint16') == 100 * (k + 1)), f'frame {k}')
code, _, b = get(f'/instances/{mfid}/frames/2/raw')
check(b == np.full(4, 300, '<u2').tobytes(), 'raw frame 2')
error(f'/instances/{mfid}/frames/3/preview', 404, 'does not exist')
code, _, _ = get(f'/instances/{mfid}/frames/x/preview')
check(code == 404, 'non-numeric frame')
code, _, b = get(f'/instances/{mfid}/numpy?rescale=0')
check(np.load(io.BytesIO(b)).shape == (3, 2, 2, 1), 'numpy of every frame')

# ordered-slices: positions along the normal
ids = [upload(f'slice_{i}.dcm') for i in range(3)]
code, _, b = get(f"/series/{ids[0]['ParentSeries']}/ordered-slices")
j = json.loads(b)
order = [ids[1]['ID'], ids[2]['ID'], ids[0]['ID']]  # z = 0, 10, 20
check(j['Type'] == 'Volume' and [s[0] for s in j['SlicesShort']] == order, f'ordered-slices {j}')
check(j['Slices'] == [f'/instances/{i}/frames/0' for i in order], 'Slices')

# broken pixel data: clean errors, the server stays up
error(f"/instances/{upload('bad_frames.dcm')['ID']}/preview", 400, '1000000 frame(s) need')
error(f"/instances/{upload('bad_length.dcm')['ID']}/preview", 400, 'PixelData holds')
error(f"/instances/{upload('bad_huge.dcm')['ID']}/preview", 415, 'above the limit')
error(f"/instances/{upload('bad_jpeg.dcm')['ID']}/preview", 400, 'cannot be decoded')
error(f"/instances/{upload('bad_tiles.dcm')['ID']}/preview", 400, '8192 tiles (at most 4096)')
# PixelData of VR OV with an undefined length: refused at the door (DCMTK could not read it back)
req = urllib.request.Request(URL + '/instances', data=open(f'{DIR}/bad_vr.dcm', 'rb').read(), method='POST')
try:
    urllib.request.urlopen(req)
    check(False, 'bad_vr.dcm stored')
except urllib.error.HTTPError as e:
    body = e.read()
    check(e.code == 400 and b'undefined length on a VR' in body, f'bad_vr.dcm: HTTP {e.code} {body[:300]!r}')
bm = upload('bad_mpeg.dcm')['ID']
error(f'/instances/{bm}/preview', 415, 'not supported')
code, ctype, b = get(f'/instances/{bm}/frames/0/raw')
check(code == 200 and len(b) == 64, 'raw frame of an undecodable syntax')
code, ctype, b = get(f'/instances/{bm}/frames/0/raw', 'application/octet-stream; transfer-syntax=1.2.840.10008.1.2.1')
check(code == 415 and json.loads(b)['HttpStatus'] == 415 and 'not supported' in json.loads(b)['Details'],
      f'raw frame of an undecodable syntax, decoded: {code} {b[:200]!r}')
error(f"/instances/{gid}/pdf", 400, 'not an encapsulated PDF')
code, _, _ = get('/system')
check(code == 200, 'server still up')
print('render checks: ok')
