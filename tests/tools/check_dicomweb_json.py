#!/usr/bin/python3
"""WADO-RS /metadata of every pydicom test file the server stores, compared element by element
with pydicom's Dataset.to_json_dict() (PS3.18 F.2 as pydicom writes it).

usage: check_dicomweb_json.py URL FILE...   (each file is uploaded first; OverwriteInstances on)

Differences allowed (docs/compatibility.md, DICOMweb):
- a binary value longer than the bulk threshold (and PixelData always) is a BulkDataURI where
  pydicom writes InlineBinary: the URI is fetched and its bytes must equal pydicom's value
  (OW of a big-endian file: we send little endian, so the bytes are compared swapped);
  encapsulated PixelData is checked to be present by reference only;
- elements after PixelData (trailing padding) are not listed (ingest parses up to PixelData);
- PN: pydicom lists empty Ideographic/Phonetic groups it saw; we do too, so no difference;
- numbers are compared as numbers (DS "1." and 1.0 are the same value);
- a sequence stored with VR UN (rtdose_rle.dcm) stays UN bytes: pydicom re-parses it as SQ;
- each value of a multi-valued string is stripped of its padding (pydicom keeps "DERIVED ").
Prints one line per file and exits 1 on the first real difference.
"""
import base64
import email
import json
import sys
import urllib.request

import pydicom

URL = sys.argv[1]


def get(url, accept=None):
    req = urllib.request.Request(url)
    if accept:
        req.add_header("Accept", accept)
    with urllib.request.urlopen(req) as r:
        return r.headers.get("Content-Type", ""), r.read()


def post(url, body):
    req = urllib.request.Request(url, data=body, method="POST")
    with urllib.request.urlopen(req) as r:
        return json.loads(r.read())


def multipart_parts(ctype, body):
    msg = email.message_from_bytes(b"Content-Type: " + ctype.encode() + b"\r\n\r\n" + body)
    return [p.get_payload(decode=True) for p in msg.get_payload()]


def same_number(a, b):
    if a is None or b is None:
        return a is None and b is None
    return float(a) == float(b)


def compare_values(path, vr, ours, theirs):
    if len(ours) != len(theirs):
        return f"{path}: {len(ours)} values, pydicom {len(theirs)}: {ours!r} / {theirs!r}"
    for x, y in zip(ours, theirs):
        if vr in ("DS", "IS", "FL", "FD", "US", "SS", "UL", "SL", "UV", "SV"):
            if isinstance(y, str):  # pydicom keeps unparsable numbers as text
                continue
            if not same_number(x, y):
                return f"{path}: {x!r} != pydicom {y!r}"
        elif vr == "PN":
            y = {k: v for k, v in y.items()}
            if x != y:
                return f"{path}: {x!r} != pydicom {y!r}"
        elif vr == "SQ":
            err = compare(path, x, y, None)
            if err:
                return err
        elif isinstance(x, str) and isinstance(y, str):
            # pydicom keeps the padding of each value of a multi-valued string ('DERIVED ')
            if x.strip(" \0") != y.strip(" \0"):
                return f"{path}: {x!r} != pydicom {y!r}"
        elif x != y:
            return f"{path}: {x!r} != pydicom {y!r}"
    return None


def compare(path, ours, theirs, ctx):
    """ours/theirs: DICOM JSON objects (one dataset or item)."""
    ctx = ctx or {}
    theirs = json.loads(json.dumps(theirs))  # pydicom's VR enums as the text json writes
    for key, t in theirs.items():
        p = f"{path}/{key}"
        tag = int(key, 16)
        if tag > 0x7FE00010 and path == "" and ctx.get("pixel"):
            continue  # after PixelData: not parsed at ingest (documented)
        if key not in ours:
            return f"{p} missing (pydicom: {str(t)[:80]})"
        o = ours[key]
        vr = t.get("vr")
        if vr == "SQ" and o.get("vr") == "UN" and ("InlineBinary" in o or "BulkDataURI" in o):
            continue  # a sequence stored as UN stays UN bytes here (documented)
        if o.get("vr") != vr and not (vr in ("OB", "OW", "UN") and o.get("vr") in ("OB", "OW", "UN")):
            return f"{p}: vr {o.get('vr')} != pydicom {vr}"
        if "InlineBinary" in t:
            want = base64.b64decode(t["InlineBinary"])
            if "InlineBinary" in o:
                got = base64.b64decode(o["InlineBinary"])
            elif "BulkDataURI" in o:
                if ctx.get("encapsulated") and tag == 0x7FE00010:
                    continue
                ctype, body = get(o["BulkDataURI"])
                parts = multipart_parts(ctype, body)
                if len(parts) != 1:
                    return f"{p}: bulk data in {len(parts)} parts"
                got = parts[0]
            else:
                return f"{p}: no value (pydicom has {len(want)} bytes)"
            if got != want:
                swapped = None
                if len(want) % 2 == 0:
                    swapped = bytes(b for i in range(0, len(want), 2) for b in (want[i + 1], want[i]))
                if not (ctx.get("big") and got == swapped):
                    return f"{p}: {len(got)} bytes differ from pydicom's {len(want)}"
            continue
        if "Value" in t:
            if "Value" not in o:
                return f"{p}: no Value, pydicom {str(t['Value'])[:80]}"
            err = compare_values(p, vr, o["Value"], t["Value"])
            if err:
                return err
        elif "Value" in o and vr != "SQ":
            return f"{p}: Value {str(o['Value'])[:80]} where pydicom has none"
    for key in ours:
        if key not in theirs:
            return f"{path}/{key}: extra element {str(ours[key])[:80]}"
    return None


def main():
    checked = 0
    for f in sys.argv[2:]:
        name = f.rsplit("/", 1)[-1]
        try:
            ds = pydicom.dcmread(f)
            body = open(f, "rb").read()
        except Exception:
            continue
        try:
            r = post(URL + "/instances", body)
        except urllib.error.HTTPError:
            continue  # refused (02_pydicom_files checks which)
        st, se, sop = (str(ds.get(k, "")).strip() for k in ("StudyInstanceUID", "SeriesInstanceUID", "SOPInstanceUID"))
        ctype, data = get(f"{URL}/dicom-web/studies/{st}/series/{se}/instances/{sop}/metadata")
        assert ctype.startswith("application/dicom+json"), ctype
        ours = json.loads(data)
        assert len(ours) == 1, f"{name}: {len(ours)} datasets"
        try:
            theirs = ds.to_json_dict(bulk_data_threshold=1 << 40, bulk_data_element_handler=None)
        except Exception as e:  # pydicom cannot write some values (e.g. invalid IS)
            print(f"skip {name}: pydicom to_json_dict: {e}")
            continue
        ctx = {
            "pixel": "7FE00010" in theirs,
            "encapsulated": ds.file_meta.get("TransferSyntaxUID") is not None and ds.file_meta.TransferSyntaxUID.is_compressed,
            "big": not ds.is_little_endian,
        }
        err = compare("", ours[0], theirs, ctx)
        if err:
            print(f"FAIL {name}: {err}")
            sys.exit(1)
        checked += 1
        print(f"ok {name} ({len(theirs)} elements)")
    print(f"{checked} files equal to pydicom's to_json_dict")
    if checked < 40:
        print("too few files compared")
        sys.exit(1)


if __name__ == "__main__":
    main()
