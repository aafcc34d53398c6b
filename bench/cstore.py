#!/usr/bin/python3
"""C-STORE ingest benchmark (issue: DICOM network). Sends a generated 2,000-instance CT study
(512x512 16-bit) with DCMTK's storescu over 1 and 4 parallel associations to minipacs and to
Debian's Orthanc in the same run, and prints instances/s and the ratio.

storescu and both servers run with TCP_NODELAY=1 in their environment (DCMTK leaves Nagle's
algorithm on otherwise, and Orthanc then stalls ~40-50 ms per instance); minipacs also sets it
itself (DicomTcpNoDelay, default true).

Two rates per run: "wall" is instances / (storescu start -> last storescu exit), which includes
storescu's own start-up (it reads every file before associating); "steady" is measured between
the first and the last stored instance, by polling /statistics every 20 ms.

usage: bench/cstore.py [--n 2000] [--sync true|false] [--no-build]"""
import argparse
import os
import subprocess
import sys
import threading
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import benchlib as B


def storescu_env():
    e = dict(os.environ)
    e["TCP_NODELAY"] = "1"
    return e


def cstore_all(server, files, assocs):
    """Sends files over `assocs` parallel storescu associations; returns (wall, steady) inst/s."""
    chunks = [files[i::assocs] for i in range(assocs)]
    n = len(files)
    marks = {}
    done = threading.Event()

    def poll():
        while not done.is_set():
            try:
                c = server.get("/statistics")["CountInstances"]
            except Exception:
                c = 0
            now = time.time()
            if c > 0 and "first" not in marks:
                marks["first"] = (now, c)
            if c >= n:
                marks["last"] = (now, c)
                return
            time.sleep(0.02)

    th = threading.Thread(target=poll, daemon=True)
    th.start()
    t0 = time.time()
    procs = [subprocess.Popen(["storescu", "-aec", "ORTHANC", "127.0.0.1", str(server.dicom_port)] + c,
                              stdout=subprocess.PIPE, stderr=subprocess.STDOUT, env=storescu_env())
             for c in chunks]
    outs = [p.communicate()[0] for p in procs]
    wall = time.time() - t0
    th.join(30)
    done.set()
    for p, o in zip(procs, outs):
        if p.returncode != 0:
            raise RuntimeError("storescu failed: %s" % o[-500:])
    st = server.get("/statistics")
    if st["CountInstances"] != n:
        raise RuntimeError("%s stored %d of %d" % (server.kind, st["CountInstances"], n))
    steady = None
    if "first" in marks and "last" in marks and marks["last"][0] > marks["first"][0]:
        steady = (marks["last"][1] - marks["first"][1]) / (marks["last"][0] - marks["first"][0])
    return n / wall, steady


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
    for assocs in (1, 4):
        r = {}
        for kind in ("minipacs", "orthanc"):
            s = B.Server(kind, sync=sync)
            try:
                r[kind] = cstore_all(s, files, assocs)
                r[kind + "_rss"] = s.hwm_kb() // 1024
            finally:
                s.stop()
        fmt = lambda x: "%.0f" % x if x else "-"
        rows.append([assocs, fmt(r["minipacs"][0]), fmt(r["orthanc"][0]),
                     "%.2fx" % (r["minipacs"][0] / r["orthanc"][0]),
                     fmt(r["minipacs"][1]), fmt(r["orthanc"][1]),
                     "%.2fx" % (r["minipacs"][1] / r["orthanc"][1]) if r["minipacs"][1] and r["orthanc"][1] else "-",
                     r["minipacs_rss"], r["orthanc_rss"]])
    print("C-STORE of %d CT instances (512x512x16-bit) with storescu, SyncStorageArea=%s, TCP_NODELAY=1"
          % (len(files), sync))
    print(B.table(rows, ["assocs", "minipacs wall/s", "orthanc wall/s", "ratio",
                         "minipacs steady/s", "orthanc steady/s", "ratio",
                         "minipacs peak MB", "orthanc peak MB"]))


if __name__ == "__main__":
    main()
