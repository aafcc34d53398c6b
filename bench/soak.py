#!/usr/bin/python3
"""soak.py [SECONDS=600] -- bounded soak: the mixed load of mixedload.py (8 REST uploaders,
8 storescu, deletes, anonymization jobs) for SECONDS against one server, sampling its RSS and
open file descriptors every 10 s. Pass: no unexpected error, and no growth trend (the mean of
the last third within 20% + 8 MB of the middle third for RSS, within 16 fds for fds).
Prints the samples and writes bench/results/soak.csv. MINIPACS_BIN picks the binary."""
import json
import os
import subprocess
import sys
import tempfile
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import mixedload as ml  # noqa: E402
from benchlib import free_port  # noqa: E402

secs = int(sys.argv[1]) if len(sys.argv) > 1 else 600
binary = os.environ.get("MINIPACS_BIN", os.path.join(ml.ROOT, "build", "minipacs"))
work = tempfile.mkdtemp(prefix="mp-soak.")
files = ml.gen_pool(os.path.join(work, "pool"))
hp, dp = free_port(), free_port()
cfg = os.path.join(work, "Orthanc.json")
json.dump({"StorageDirectory": work + "/db", "IndexDirectory": work + "/db", "HttpPort": hp,
           "DicomPort": dp, "SyncStorageArea": False, "LogLevel": "warning", "StableAge": 5}, open(cfg, "w"))
log = open(os.path.join(work, "server.log"), "w")
srv = subprocess.Popen([binary, cfg], stdout=log, stderr=log)
url = "http://127.0.0.1:%d" % hp
for _ in range(200):
    try:
        if ml.req(url + "/system")[0] == 200:
            break
    except Exception:
        time.sleep(0.05)


def sample():
    rss = 0
    for line in open("/proc/%d/status" % srv.pid):
        if line.startswith("VmRSS:"):
            rss = int(line.split()[1]) // 1024
    fds = len(os.listdir("/proc/%d/fd" % srv.pid))
    st = json.loads(ml.req(url + "/statistics")[1])
    return rss, fds, st["CountInstances"]


load = ml.Load(url, dp, files)
load.start()
t0 = time.time()
rows = []
print("  t(s)  RSS(MB)  fds  instances")
while time.time() - t0 < secs:
    time.sleep(10)
    r = sample()
    rows.append((int(time.time() - t0),) + r)
    print("%6d %8d %4d %10d" % rows[-1], flush=True)
load.finish()
alive = srv.poll() is None
srv.terminate()
srv.wait(30)
os.makedirs(os.path.join(ml.ROOT, "bench", "results"), exist_ok=True)
with open(os.path.join(ml.ROOT, "bench", "results", "soak.csv"), "w") as f:
    f.write("t_s,rss_mb,fds,instances\n")
    for r in rows:
        f.write("%d,%d,%d,%d\n" % r)
n = len(rows)
mid = rows[n // 3: 2 * n // 3] or rows
last = rows[2 * n // 3:] or rows
mean = lambda xs: sum(xs) / len(xs)  # noqa: E731
rss_mid, rss_last = mean([r[1] for r in mid]), mean([r[1] for r in last])
fd_mid, fd_last = mean([r[2] for r in mid]), mean([r[2] for r in last])
print("counts:", json.dumps(load.counts, sort_keys=True))
print("RSS mean middle third %.1f MB, last third %.1f MB; fds %.1f -> %.1f; max RSS %d MB, max fds %d"
      % (rss_mid, rss_last, fd_mid, fd_last, max(r[1] for r in rows), max(r[2] for r in rows)))
ok = alive and not load.errors and rss_last <= rss_mid * 1.2 + 8 and fd_last <= fd_mid + 16
if load.errors:
    print("errors:", *load.errors[:10], sep="\n  ")
print("PASS" if ok else "FAIL", "(server log: %s/server.log)" % work)
sys.exit(0 if ok else 1)
