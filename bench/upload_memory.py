#!/usr/bin/python3
"""Peak resident memory of uploading one 200 MB multi-frame instance over REST, for minipacs
and Debian's Orthanc: the upload should be held once in memory (no copy per layer).

usage: bench/upload_memory.py [--frames 400] [--no-build]"""
import argparse
import os
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import benchlib as B


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--frames", type=int, default=400)
    ap.add_argument("--no-build", action="store_true")
    a = ap.parse_args()
    if not a.no_build:
        B.build_release()
    f = B.gen_study("mf%d" % a.frames, 1, series=1, extra=["--frames", str(a.frames)])[0]
    size = os.path.getsize(f)
    rows = []
    for kind in ("minipacs", "orthanc"):
        s = B.Server(kind, sync=False)
        try:
            before = s.hwm_kb()
            data = open(f, "rb").read()
            t0 = time.time()
            r = s.post("/instances", data)
            dt = time.time() - t0
            del data
            peak = s.hwm_kb()
            back = s.request("GET", "/instances/%s/file" % r["ID"])
            assert len(back) == size
            rows.append([kind, "%.0f" % (size / 2**20), before // 1024, peak // 1024,
                         "%.2f" % ((peak - before) / 1024 / (size / 2**20)), "%.2f" % dt])
        finally:
            s.stop()
    print("REST upload of one multi-frame instance (%d frames, %.0f MB)" % (a.frames, size / 2**20))
    print(B.table(rows, ["server", "file MB", "RSS before MB", "peak RSS MB", "peak growth / file size", "seconds"]))


if __name__ == "__main__":
    main()
