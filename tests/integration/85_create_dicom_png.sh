#!/usr/bin/env bash
# /tools/create-dicom with PNG content, decoded by libpng: real PNG files made here (zlib +
# struct) in every layout Orthanc 1.10.1 accepts, checked sample by sample with pydicom against
# what Orthanc 1.10.1 writes for the same files (gray8/gray16 -> MONOCHROME2 8/16 bits, RGB and
# RGBA -> RGB with the alpha dropped, not blended), plus layouts we accept beyond it (gray+alpha,
# palette, Adam7-interlaced, 16-bit RGB). Untrusted input: truncated, bad CRC, not a PNG,
# dimensions beyond DICOM's 16-bit Rows/Columns and a decompression bomb all get 400 JSON
# with a clear message, and the server lives on.
source "$(dirname "$0")/lib.sh"
start_server

$PY - "$T" <<'PY'
import struct, zlib, sys, os
out = sys.argv[1]
def chunk(t, d): return struct.pack(">I", len(d)) + t + d + struct.pack(">I", zlib.crc32(t + d) & 0xffffffff)
def samples(px, depth): return b"".join(struct.pack(">H", s) if depth == 16 else bytes([s]) for s in px)
def png(w, h, ct, depth, pix, interlace=False, plte=None, idat=None):
    if idat is None:
        raw = b""
        passes = [(0, 0, 8, 8), (4, 0, 8, 8), (0, 4, 4, 8), (2, 0, 4, 4), (0, 2, 2, 4), (1, 0, 2, 2), (0, 1, 1, 2)] \
            if interlace else [(0, 0, 1, 1)]
        for x0, y0, dx, dy in passes:
            xs, ys = range(x0, w, dx), range(y0, h, dy)
            if not xs or not ys: continue
            for y in ys:  # filter 1 (Sub) on odd rows to exercise unfiltering
                row = b"".join(samples(pix(x, y), depth) for x in xs)
                if y % 2:
                    bpp = len(samples(pix(0, 0), depth))
                    row = bytes((row[i] - (row[i - bpp] if i >= bpp else 0)) & 255 for i in range(len(row)))
                    raw += b"\x01" + row
                else:
                    raw += b"\x00" + row
        idat = zlib.compress(raw)
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", struct.pack(">IIBBBBB", w, h, depth, ct, 0, 0, 1 if interlace else 0)) + \
        (chunk(b"PLTE", plte) if plte else b"") + chunk(b"IDAT", idat) + chunk(b"IEND", b"")
W, H = 5, 3
def save(name, data): open(os.path.join(out, name + ".png"), "wb").write(data)
save("gray8", png(W, H, 0, 8, lambda x, y: (10 * x + 100 * y,)))
save("gray16", png(W, H, 0, 16, lambda x, y: (1000 * x + 30000 * y + 1,)))
save("rgb", png(W, H, 2, 8, lambda x, y: (x * 50, y * 60, 7)))
save("rgba", png(W, H, 6, 8, lambda x, y: (x * 50, y * 60, 7, 128 if x else 255)))
save("graya", png(W, H, 4, 8, lambda x, y: (10 * x + 100 * y, 3)))
save("rgb16", png(W, H, 2, 16, lambda x, y: (x * 5000, y * 6000, 7)))
save("palette", png(W, H, 3, 8, lambda x, y: ((x + y) % 3,), plte=bytes([255, 0, 0, 0, 255, 0, 0, 0, 255])))
save("interlaced", png(11, 9, 2, 8, lambda x, y: (x * 20, y * 25, 3), interlace=True))
good = png(W, H, 2, 8, lambda x, y: (x * 50, y * 60, 7))
save("truncated", good[:len(good) - 30])
bad = bytearray(good); bad[len(good) - 13] ^= 0xff; save("badcrc", bytes(bad))  # the IDAT CRC
save("notpng", b"GIF89a" + bytes(40))
save("toowide", png(70000, 1, 0, 8, None, idat=zlib.compress(b"\0" + bytes(70000))))
# 65535 x 65535 RGB 16-bit (25 GB decoded) from a few hundred bytes: refused before allocating
save("bomb", png(65535, 65535, 2, 16, None, idat=zlib.compress(bytes(1000))))
PY

# Expected values: Orthanc 1.10.1's output for the same PNGs (checked by hand against the
# Debian package; alpha dropped, 16-bit little endian in OW).
create() { # NAME -> instance ID (fails the test on a non-200 answer)
  local b r
  b=$(base64 -w0 "$T/$1.png")
  r=$(http POST /tools/create-dicom -d "{\"Tags\":{\"PatientID\":\"$1\"},\"Content\":\"data:image/png;base64,$b\"}")
  [ "$(status)" = 200 ] || fail "$1: $(status) $r"
  curl -sf "$URL/instances/$(echo "$r" | json 'j["ID"]')/file" -o "$T/$1.dcm"
}
for n in gray8 gray16 rgb rgba graya rgb16 palette interlaced; do create "$n"; done
$PY - "$T" <<'PY' || fail "decoded pixels differ"
import sys, struct, pydicom
t = sys.argv[1]
W, H = 5, 3
def check(name, ch, bits, photo, pix, w=W, h=H):
    d = pydicom.dcmread(f"{t}/{name}.dcm")
    got = (d.Rows, d.Columns, d.SamplesPerPixel, d.BitsAllocated, d.BitsStored, d.HighBit,
           d.PixelRepresentation, d.PhotometricInterpretation)
    assert got == (h, w, ch, bits, bits, bits - 1, 0, photo), (name, got)
    if ch == 3: assert d.PlanarConfiguration == 0, name
    want = b"".join(struct.pack("<H", s) if bits == 16 else bytes([s]) for y in range(h) for x in range(w) for s in pix(x, y))
    data = bytes(d.PixelData)[:len(want)]
    assert data == want and len(d.PixelData) - len(want) in (0, 1), (name, list(d.PixelData), list(want))
check("gray8", 1, 8, "MONOCHROME2", lambda x, y: (10 * x + 100 * y,))
check("gray16", 1, 16, "MONOCHROME2", lambda x, y: (1000 * x + 30000 * y + 1,))
check("rgb", 3, 8, "RGB", lambda x, y: (x * 50, y * 60, 7))
check("rgba", 3, 8, "RGB", lambda x, y: (x * 50, y * 60, 7))          # alpha dropped, not blended
check("graya", 1, 8, "MONOCHROME2", lambda x, y: (10 * x + 100 * y,))
check("rgb16", 3, 16, "RGB", lambda x, y: (x * 5000, y * 6000, 7))
pal = [(255, 0, 0), (0, 255, 0), (0, 0, 255)]
check("palette", 3, 8, "RGB", lambda x, y: pal[(x + y) % 3])
check("interlaced", 3, 8, "RGB", lambda x, y: (x * 20, y * 25, 3), w=11, h=9)
PY
pass "PNG gray8, gray16, RGB, RGBA (alpha dropped), gray+alpha, 16-bit RGB, palette, interlaced"

refused() { # NAME MESSAGE-PART
  local b r
  b=$(base64 -w0 "$T/$1.png")
  r=$(http POST /tools/create-dicom -d "{\"Tags\":{\"PatientID\":\"$1\"},\"Content\":\"data:image/png;base64,$b\"}")
  [ "$(status)" = 400 ] || fail "$1: $(status) $r"
  echo "$r" | json 'j["HttpStatus"]' | grep -qx 400 || fail "$1: not Orthanc's JSON error: $r"
  echo "$r" | json 'j["Details"]' | grep -qi "$2" || fail "$1: message lacks '$2': $r"
}
n0=$(http GET /statistics | json 'j["CountInstances"]')
refused truncated "truncated"
refused badcrc "CRC"
refused notpng "not a PNG"
refused toowide "width"
refused bomb "too large"
[ "$(http GET /statistics | json 'j["CountInstances"]')" = "$n0" ] || fail "a refused PNG stored something"
kill -0 "$SERVER_PID" || fail "server died"
pass "bad PNGs: 400 with a clear message, nothing stored"
