#!/usr/bin/python3
"""Peak resident memory and time of large uploads (REST POST /instances and C-STORE with
storescu), and the rate of small (0.5 MB) uploads, for minipacs and Debian's Orthanc in the same
run (same SyncStorageArea, "Plugins": [], TCP_NODELAY=1 in its environment).

Goal (issue #18): peak RSS growth at most 64 MB whatever the file size (1.5 GB file), and small
uploads at least as fast as before the spool; pass --baseline BIN (a minipacs built from the
commit before) to run that binary side by side too.

The large file is made by tests/tools/large_dicom.py (pseudo-random 16-bit frames), streamed
from disk by the client (the client holds no copy either), checked back by MD5 (REST) or by the
dataset part (C-STORE: the server writes its own meta header), and deleted at the end.

usage: bench/upload_memory.py [--mb 1536] [--small 300] [--baseline BIN] [--no-build] [--out FILE]"""
import argparse
import hashlib
import http.client
import os
import shutil
import subprocess
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import benchlib as B



def md5_file(path, skip=0):
    h = hashlib.md5()
    with open(path, "rb") as f:
        f.seek(skip)
        for b in iter(lambda: f.read(1 << 20), b""):
            h.update(b)
    return h.hexdigest()


def dataset_offset(path):
    with open(path, "rb") as f:
        head = f.read(144)
    if head[128:132] != b"DICM":
        return 0
    return 144 + int.from_bytes(head[140:144], "little")


def rest_upload(s, path):
    size = os.path.getsize(path)
    c = http.client.HTTPConnection("127.0.0.1", s.http_port, timeout=1800)
    with open(path, "rb") as f:
        t0 = time.time()
        c.request("POST", "/instances", body=f,
                  headers={"Content-Type": "application/dicom", "Content-Length": str(size)})
        r = c.getresponse()
        body = r.read()
        dt = time.time() - t0
    c.close()
    if r.status != 200:
        raise RuntimeError("upload -> %d %s" % (r.status, body[:200]))
    import json
    return json.loads(body)["ID"], dt


def fetch_md5(s, instance, skip_meta):
    """MD5 of the stored file (from its dataset when skip_meta), streamed to a temp file."""
    c = http.client.HTTPConnection("127.0.0.1", s.http_port, timeout=1800)
    c.request("GET", "/instances/%s/file" % instance)
    r = c.getresponse()
    tmp = os.path.join(s.dir, "back.dcm")
    with open(tmp, "wb") as f:
        for b in iter(lambda: r.read(1 << 20), b""):
            f.write(b)
    c.close()
    h = md5_file(tmp, dataset_offset(tmp) if skip_meta else 0)
    os.unlink(tmp)
    return h


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--mb", type=float, default=1536)
    ap.add_argument("--small", type=int, default=300, help="0.5 MB uploads per server")
    ap.add_argument("--baseline", help="minipacs binary from before the spool, run too")
    ap.add_argument("--no-build", action="store_true")
    ap.add_argument("--out", help="also write the report here")
    a = ap.parse_args()
    if not a.no_build:
        B.build_release()
    os.makedirs(B.WORK, exist_ok=True)
    free = shutil.disk_usage(B.WORK).free
    need = a.mb * 2**20 * 3.2  # the file, one stored copy, one downloaded copy
    if free < need:
        sys.exit("not enough free disk: %.1f GB free, %.1f GB needed" % (free / 2**30, need / 2**30))
    big = os.path.join(B.WORK, "large-%d.dcm" % a.mb)
    kinds = [("minipacs", None)]
    if a.baseline:
        kinds.append(("minipacs-before", a.baseline))
    kinds.append(("orthanc", None))
    small = B.gen_study("small", a.small, series=1)
    rows_big, rows_small = [], []
    try:
        subprocess.run([B.PY, os.path.join(B.ROOT, "tests", "tools", "large_dicom.py"), big,
                        str(a.mb), "3"], check=True, stdout=subprocess.DEVNULL)
        size = os.path.getsize(big)
        want_file = md5_file(big)
        want_ds = md5_file(big, dataset_offset(big))
        for kind, exe in kinds:
            # REST
            s = B.Server("orthanc" if kind == "orthanc" else "minipacs", sync=False, exe=exe)
            try:
                before = s.hwm_kb()
                iid, dt = rest_upload(s, big)
                peak = s.hwm_kb()
                ok = fetch_md5(s, iid, False) == want_file
                rows_big.append([kind, "REST", "%.0f" % (size / 2**20), before // 1024, peak // 1024,
                                 (peak - before) // 1024, "%.1f" % dt, "%.0f" % (size / 2**20 / dt),
                                 "yes" if ok else "NO"])
            finally:
                s.stop()
            # C-STORE
            s = B.Server("orthanc" if kind == "orthanc" else "minipacs", sync=False, exe=exe)
            try:
                before = s.hwm_kb()
                t0 = time.time()
                subprocess.run(["storescu", "-aec", "ORTHANC", "-xs", "127.0.0.1",
                                str(s.dicom_port), big], check=True,
                               env=dict(os.environ, TCP_NODELAY="1"))
                dt = time.time() - t0
                peak = s.hwm_kb()
                iid = s.get("/instances")[0]
                ok = fetch_md5(s, iid, True) == want_ds
                rows_big.append([kind, "C-STORE", "%.0f" % (size / 2**20), before // 1024,
                                 peak // 1024, (peak - before) // 1024, "%.1f" % dt,
                                 "%.0f" % (size / 2**20 / dt), "yes" if ok else "NO"])
            finally:
                s.stop()
        os.unlink(big)
        # small files: 0.5 MB each, one client, then four
        for kind, exe in kinds:
            for clients in (1, 4):
                s = B.Server("orthanc" if kind == "orthanc" else "minipacs", sync=False, exe=exe)
                try:
                    rate = B.upload_all(s, small, clients)
                    rows_small.append([kind, clients, len(small), "%.0f" % rate])
                finally:
                    s.stop()
    finally:
        if os.path.exists(big):
            os.unlink(big)
    up = subprocess.run(["uptime"], capture_output=True, text=True).stdout.strip()
    out = ["Large upload: one %.0f MB multi-frame instance, SyncStorageArea false" % (size / 2**20),
           B.table(rows_big, ["server", "way", "file MB", "RSS before MB", "peak RSS MB",
                              "peak growth MB", "seconds", "MB/s", "stored intact"]),
           "", "Small uploads: %d files of 0.5 MB over REST (instances/s)" % len(small),
           B.table(rows_small, ["server", "clients", "files", "instances/s"])]
    ref = {(r[0], r[1]): float(r[3]) for r in rows_small}
    ratios = []
    for (kind, clients), v in sorted(ref.items()):
        if kind != "minipacs":
            ratios.append("minipacs / %s, %d client(s): %.2f" % (kind, clients, ref[("minipacs", clients)] / v))
    out += ["", "Ratios (same run):"] + ratios + ["", "machine: " + up]
    text = "\n".join(out)
    print(text)
    if a.out:
        with open(a.out, "w") as f:
            f.write(text + "\n")


if __name__ == "__main__":
    main()
