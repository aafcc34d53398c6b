#!/usr/bin/python3
"""Load-insensitive ingest figures: the server's own CPU time (utime+stime of every thread,
from /proc/PID/stat) per stored instance and its peak RSS (VmHWM), for the same fixed set of
files sent over REST (1 keep-alive client) and C-STORE (1 storescu association).

Several binaries (old and new builds) run interleaved in the same run, round after round, so
that a shared machine's load lands on each of them alike; CPU time per instance moves little
with the load (wall-clock does), which makes it the measure to bisect a regression with.

usage: bench/ingest_cpu.py [--n 1000] [--rounds 2] [--sync false] [--modes rest,cstore]
                           LABEL=PATH[,JSON] [LABEL=PATH[,JSON] ...]
(JSON: extra configuration options for that run, e.g. head=build-release/minipacs,{"DicomWeb":{"Enable":false}})"""
import argparse
import json
import os
import subprocess
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import benchlib as B

TICK = os.sysconf("SC_CLK_TCK")


def cpu_s(pid):
    with open("/proc/%d/stat" % pid) as f:
        fields = f.read().rsplit(")", 1)[1].split()
    # fields[0] is state (field 3); utime and stime are fields 14 and 15
    return (int(fields[11]) + int(fields[12])) / TICK


def send(server, files, mode):
    if mode == "rest":
        B.upload_all(server, files, 1)
    else:
        e = dict(os.environ)
        e["TCP_NODELAY"] = "1"
        p = subprocess.run(["storescu", "-aec", "ORTHANC", "127.0.0.1", str(server.dicom_port)] + files,
                           stdout=subprocess.PIPE, stderr=subprocess.STDOUT, env=e)
        if p.returncode != 0:
            raise RuntimeError("storescu failed: %s" % p.stdout[-500:])


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--n", type=int, default=1000)
    ap.add_argument("--rounds", type=int, default=2)
    ap.add_argument("--sync", default="false")
    ap.add_argument("--modes", default="rest,cstore")
    ap.add_argument("bins", nargs="+")
    a = ap.parse_args()
    bins = []
    for b in a.bins:  # LABEL=PATH or LABEL=PATH,{"Option": value} (extra configuration)
        label, rest = b.split("=", 1)
        path, _, extra = rest.partition(",")
        bins.append((label, path, json.loads(extra) if extra else None))
    files = B.gen_study("ct2000", 2000)[:a.n]
    modes = a.modes.split(",")
    res = {}  # (label, mode) -> list of (cpu ms/inst, hwm MB, idle MB)
    for rnd in range(a.rounds):
        for mode in modes:
            order = bins if rnd % 2 == 0 else list(reversed(bins))
            for label, path, extra in order:
                s = B.Server("minipacs", sync=a.sync == "true", exe=path, extra=extra)
                try:
                    idle = s.rss_kb() / 1024
                    c0 = cpu_s(s.proc.pid)
                    send(s, files, mode)
                    st = s.get("/statistics")
                    if st["CountInstances"] != len(files):
                        raise RuntimeError("%s stored %d of %d" % (label, st["CountInstances"], len(files)))
                    c1 = cpu_s(s.proc.pid)
                    hwm = s.hwm_kb() / 1024
                finally:
                    s.stop()
                r = ((c1 - c0) * 1000 / len(files), hwm, idle)
                res.setdefault((label, mode), []).append(r)
                print("round %d %-6s %-12s cpu %.3f ms/inst  VmHWM %.1f MB  idle RSS %.1f MB"
                      % (rnd + 1, mode, label, r[0], r[1], r[2]), flush=True)
    rows = []
    for mode in modes:
        for label, _, _ in bins:
            v = res[(label, mode)]
            rows.append([mode, label, " ".join("%.3f" % x[0] for x in v),
                         "%.3f" % (sum(x[0] for x in v) / len(v)),
                         "%.1f" % max(x[1] for x in v), "%.1f" % min(x[2] for x in v)])
    print("Server CPU per instance (utime+stime), %d CT instances 512x512x16-bit, SyncStorageArea=%s"
          % (len(files), a.sync))
    print(B.table(rows, ["mode", "binary", "cpu ms/inst per round", "mean", "VmHWM MB", "idle RSS MB"]))


if __name__ == "__main__":
    main()
