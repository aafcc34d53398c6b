#!/usr/bin/python3
"""REST ingest benchmark (issue: core store). Uploads a generated 2,000-instance CT study
(512x512 16-bit) with 1 and 4 parallel keep-alive clients to minipacs and to Debian's Orthanc
in the same run, and prints instances/s and the ratio.

usage: bench/upload.py [--n 2000] [--sync true|false]"""
import argparse
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import benchlib as B


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--n", type=int, default=2000)
    ap.add_argument("--sync", default="true")
    ap.add_argument("--no-build", action="store_true")
    a = ap.parse_args()
    sync = a.sync == "true"
    if not a.no_build:
        B.build_release()
    files = B.gen_study("ct%d" % a.n, a.n)
    rows = []
    for clients in (1, 4):
        rates = {}
        for kind in ("minipacs", "orthanc"):
            s = B.Server(kind, sync=sync)
            try:
                rates[kind] = B.upload_all(s, files, clients)
                st = s.get("/statistics")
                assert st["CountInstances"] == len(files), st
                rates[kind + "_rss"] = s.hwm_kb() // 1024
            finally:
                s.stop()
        rows.append([clients, "%.0f" % rates["minipacs"], "%.0f" % rates["orthanc"],
                     "%.2fx" % (rates["minipacs"] / rates["orthanc"]),
                     rates["minipacs_rss"], rates["orthanc_rss"]])
    print("REST upload of %d CT instances (512x512x16-bit), SyncStorageArea=%s" % (len(files), sync))
    print(B.table(rows, ["clients", "minipacs inst/s", "orthanc inst/s", "ratio",
                         "minipacs peak MB", "orthanc peak MB"]))


if __name__ == "__main__":
    main()
