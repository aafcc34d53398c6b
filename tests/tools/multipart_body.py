#!/usr/bin/python3
"""multipart_body.py OUT KIND [FILES...] -- writes a multipart/related body for STOW-RS tests.

Boundary "mpTEST42". KIND:
  ok         one application/dicom part per FILE ("-" = a part of non-DICOM bytes)
  endless    the parts of FILES, then a part that never ends (no closing boundary)
  nested     the parts of FILES, then a part that is itself multipart/related
  many       FILES' parts, then 10,000 tiny parts
  bigheader  the parts of FILES, then a part with 64 KB of headers
  noboundary FILES' bytes with no boundary at all
  wrongtype  FILES as parts, then a part of type application/json
"""
import sys

B = b"mpTEST42"


def part(data, ctype=b"application/dicom", extra=b""):
    return b"--" + B + b"\r\nContent-Type: " + ctype + b"\r\n" + extra + b"\r\n" + data + b"\r\n"


def main():
    out, kind, files = sys.argv[1], sys.argv[2], sys.argv[3:]
    datas = [b"this is not a DICOM file" if f == "-" else open(f, "rb").read() for f in files]
    body = b"".join(part(d) for d in datas)
    end = b"--" + B + b"--\r\n"
    if kind == "ok":
        body += end
    elif kind == "endless":
        body += b"--" + B + b"\r\nContent-Type: application/dicom\r\n\r\n" + b"\x00" * 100000
    elif kind == "nested":
        inner = b"--inner\r\nContent-Type: application/dicom\r\n\r\n" + (datas[0] if datas else b"x") + b"\r\n--inner--\r\n"
        body += part(inner, b'multipart/related; type="application/dicom"; boundary=inner') + end
    elif kind == "many":
        body += b"".join(part(b"x") for _ in range(10000)) + end
    elif kind == "bigheader":
        body += part(b"x", extra=b"X-Padding: " + b"a" * 65536 + b"\r\n") + end
    elif kind == "noboundary":
        body = b"".join(datas)
    elif kind == "wrongtype":
        body += part(b'{"a": 1}', b"application/json") + end
    else:
        sys.exit("unknown kind " + kind)
    open(out, "wb").write(body)


main()
