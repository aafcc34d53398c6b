#!/usr/bin/env python3
"""dump_paths.py FILE...: one line per element, "path VR value", where path is gggg,eeee for a
top-level element and gggg,eeee[i].gggg,eeee inside sequences; a sequence prints
"path SQ n" (its item count); binary values print as hex, "-" when empty. One FILE: on
stdout; several: each into FILE with its extension replaced by .txt."""
import sys
import pydicom

def value(e):
    v = e.value
    if v is None or v == b"" or v == "":
        return "-"
    if isinstance(v, bytes):
        return v.hex()
    if e.VR == "AT":
        vals = v if isinstance(v, (list, pydicom.multival.MultiValue)) else [v]
        return "\\\\".join("%04x,%04x" % (int(t) >> 16, int(t) & 0xFFFF) for t in vals)
    return str(v)

def walk(ds, prefix):
    for e in ds:
        tag = "%04x,%04x" % (e.tag.group, e.tag.element)
        path = prefix + tag
        if e.VR == "SQ":
            print(path, "SQ", len(e.value))
            for i, item in enumerate(e.value):
                walk(item, "%s[%d]." % (path, i))
        elif e.tag != 0x7FE00010:
            print(path, getattr(e.VR, "value", e.VR), value(e))

if len(sys.argv) == 2:
    walk(pydicom.dcmread(sys.argv[1]), "")
else:
    for f in sys.argv[1:]:
        with open(f.rsplit(".", 1)[0] + ".txt", "w") as out:
            stdout, sys.stdout = sys.stdout, out
            try:
                walk(pydicom.dcmread(f), "")
            finally:
                sys.stdout = stdout
