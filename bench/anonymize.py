#!/usr/bin/python3
"""Anonymization benchmark (issue: anonymization jobs). Uploads a generated 2,000-instance CT
study (512x512, 16-bit, about 1 GB) to minipacs and to Debian's Orthanc in the same run, then
times POST /studies/{id}/anonymize (synchronous, the default) on each, sampling the RSS of both
every 20 ms during the anonymization (peak = largest sample; VmHWM would include the upload).
For minipacs it also samples the DICOM cache figures (orthanc_dicom_cache_size_mb from
/tools/metrics-prometheus when the metrics page exposes them) and checks the bound.
Both servers run with the same SyncStorageArea (default false: --sync true to fsync every file).

usage: bench/anonymize.py [--n 2000] [--sync true|false] [--cache-mb 128] [--no-build]"""
import argparse
import os
import re
import sys
import threading
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import benchlib as B


class Sampler(threading.Thread):
    """Samples RSS (kB) and, for minipacs, the cache size, every `period` s."""

    def __init__(self, server, period=0.02, cache=False):
        super().__init__(daemon=True)
        self.server, self.period, self.cache = server, period, cache
        self.rss, self.cache_mb = [], []
        self._halt = threading.Event()

    def run(self):
        while not self._halt.is_set():
            self.rss.append(B.read_status(self.server.proc.pid, "VmRSS"))
            if self.cache:
                try:
                    text = self.server.request("GET", "/tools/metrics-prometheus").decode()
                    m = re.search(r"^orthanc_dicom_cache_size_mb (\S+)", text, re.M)
                    if m:
                        self.cache_mb.append(float(m.group(1)))
                except Exception:
                    pass
            self._halt.wait(self.period)

    def stop(self):
        self._halt.set()
        self.join()


def run(kind, files, sync, cache_mb):
    extra = {"DicomCacheSize": cache_mb} if kind == "minipacs" else {}
    s = B.Server(kind, sync=sync, extra=extra)
    try:
        B.upload_all(s, files, 4)
        st = s.get("/statistics")
        assert st["CountInstances"] == len(files), st
        study = s.get("/studies")[0]
        time.sleep(0.5)
        base = B.read_status(s.proc.pid, "VmRSS")
        smp = Sampler(s, cache=(kind == "minipacs"))
        smp.start()
        t0 = time.time()
        r = s.post("/studies/%s/anonymize" % study, {})
        dt = time.time() - t0
        smp.stop()
        new = s.get("/studies/%s" % r["ID"])
        n = sum(len(s.get("/series/%s" % se)["Instances"]) for se in new["Series"])
        assert n == len(files), (n, len(files))
        return {"time": dt, "peak": max(smp.rss) // 1024, "base": base // 1024,
                "cache_max": max(smp.cache_mb) if smp.cache_mb else None,
                "cache_samples": len(smp.cache_mb)}
    finally:
        s.stop()


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--n", type=int, default=2000)
    ap.add_argument("--sync", default="false")
    ap.add_argument("--cache-mb", type=int, default=128)
    ap.add_argument("--no-build", action="store_true")
    ap.add_argument("--only", default="")
    a = ap.parse_args()
    sync = a.sync == "true"
    if not a.no_build:
        B.build_release()
    files = B.gen_study("ct%d" % a.n, a.n)[:a.n]
    res = {}
    for kind in ("minipacs", "orthanc"):
        if a.only and kind != a.only:
            continue
        res[kind] = run(kind, files, sync, a.cache_mb)
        print("%s: %.2f s, peak RSS %d MB (before: %d MB)%s" % (
            kind, res[kind]["time"], res[kind]["peak"], res[kind]["base"],
            "" if res[kind]["cache_max"] is None else
            ", DICOM cache max %.1f MB (bound %d MB, %d samples)" % (
                res[kind]["cache_max"], a.cache_mb, res[kind]["cache_samples"])), flush=True)
        if res[kind]["cache_max"] is not None and res[kind]["cache_max"] > a.cache_mb:
            print("FAIL: the DICOM cache exceeded its bound")
            sys.exit(1)
    if len(res) == 2:
        m, o = res["minipacs"], res["orthanc"]
        print("Anonymize a %d-instance CT study (512x512x16-bit), SyncStorageArea=%s" % (len(files), sync))
        print(B.table([["minipacs", "%.2f" % m["time"], m["peak"]],
                       ["orthanc", "%.2f" % o["time"], o["peak"]]],
                      ["server", "wall s", "peak RSS MB"]))
        print("ratio (orthanc / minipacs): %.1fx" % (o["time"] / m["time"]))


if __name__ == "__main__":
    main()
