#!/usr/bin/python3
"""webui.py -- the web interface's list page next to Orthanc Explorer (issue 16), same run.

The issue's figure: with 10,000 studies in the index, the first page of the studies list
renders in under 300 ms after navigation, measured in the browser with performance.now().
Each server gets STUDIES one-instance studies (tests/browser/bulk_studies.py, 8 keep-alive
connections), then bench/webui.mjs loads the list page in Debian's chromium (headless) once
cold (fresh browser context) and LOADS times warm (the same context: cached files
revalidated), and reads performance.now() when the page first holds its first page of rows
and at the next animation frame (painted).

Pages compared:
- minipacs /app/#/studies          first page of 25 studies (the default; the issue's figure)
- minipacs /app/#/studies?size=100 first page of 100 studies
- Orthanc Explorer (built into Debian's Orthanc 1.10.1) explorer.html#find-studies, "All
  studies": its first 100 studies (/studies?expand&since=0&limit=101&full), the closest
  page it has (its home page is a search form; Orthanc Explorer 2 is not packaged in Debian).
Also each server's CPU time (utime+stime from /proc) over all its loads, per load: a figure
that the machine's load does not inflate the way wall-clock times are.

Both servers' storage and index under --work (default /dev/shm), "StableAge" 3600 (no stable-study processing in the middle of the figures),
SyncStorageArea false, Orthanc with "Plugins": [] and TCP_NODELAY=1 (benchlib.Server), and
"OrthancExplorerEnabled": true for Orthanc (the page being measured).

usage: bench/webui.py [--studies 10000] [--loads 10] [--out bench/results/webui-DATE.txt]
Environment: MINIPACS_BIN (default build-release/minipacs)."""
import argparse
import json
import os
import statistics
import subprocess
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import benchlib as bl  # noqa: E402

BULK = os.path.join(bl.ROOT, "tests", "browser", "bulk_studies.py")
MJS = os.path.join(bl.ROOT, "bench", "webui.mjs")


def cpu_s(pid):
    with open("/proc/%d/stat" % pid) as f:
        fields = f.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def measure(server, path, selector, count, loads):
    url = "http://127.0.0.1:%d%s" % (server.http_port, path)
    c0 = cpu_s(server.proc.pid)
    out = subprocess.run(["node", MJS, url, selector, str(count), str(loads)], check=True,
                         stdout=subprocess.PIPE, text=True).stdout
    cpu = cpu_s(server.proc.pid) - c0
    r = json.loads(out.strip().splitlines()[-1])
    if r["rows"] < count:
        raise RuntimeError("%s: %d rows, not %d" % (url, r["rows"], count))
    r["cpu_ms_per_load"] = 1000.0 * cpu / (loads + 1)
    return r


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--studies", type=int, default=10000)
    ap.add_argument("--loads", type=int, default=10)
    ap.add_argument("--out", default="")
    ap.add_argument("--work", default="/dev/shm" if os.access("/dev/shm", os.W_OK) else "",
                    help="parent folder of both servers' storage (default /dev/shm: tmpfs, so that the "
                         "ingest of the studies is not bound by the disk's file creation)")
    a = ap.parse_args()
    if a.work:
        bl.WORK = a.work
    os.makedirs(os.path.dirname(bl._LAST_CLEANUP), exist_ok=True)  # benchlib's marker stays in bench/work
    extra = {"StableAge": 3600}
    pages = {
        "minipacs": [("minipacs, 25 rows (default page)", "/app/#/studies", "table.list tbody tr", 25),
                     ("minipacs, 100 rows", "/app/#/studies?size=100", "table.list tbody tr", 100)],
        "orthanc": [("Orthanc Explorer, All studies (100)", "/app/explorer.html#find-studies", "#all-studies li", 100)],
    }
    rows = []
    ingest = {}
    for kind in ("minipacs", "orthanc"):
        s = bl.Server(kind, extra=dict(extra, **({"OrthancExplorerEnabled": True} if kind == "orthanc" else {})))
        try:
            t0 = time.time()
            subprocess.run([bl.PY, BULK, "http://127.0.0.1:%d" % s.http_port, str(a.studies)], check=True)
            ingest[kind] = time.time() - t0
            n = s.get("/statistics")["CountStudies"]
            if n < a.studies:
                raise RuntimeError("%s holds %d studies, not %d" % (kind, n, a.studies))
            for label, path, sel, count in pages[kind]:
                r = measure(s, path, sel, count, a.loads)
                r["label"] = label
                rows.append(r)
        finally:
            s.stop()

    load = open("/proc/loadavg").read().split()[:3]
    lines = ["Web interface: the studies list's first page after navigation, %d studies in the index" % a.studies,
             "chromium %s headless, performance.now() in the page; 1 cold load (fresh context) + %d warm loads"
             % (subprocess.run(["/usr/bin/chromium", "--version"], stdout=subprocess.PIPE, text=True).stdout.split()[1], a.loads),
             "uptime at the end: %s" % subprocess.run(["uptime"], stdout=subprocess.PIPE, text=True).stdout.strip(),
             "(load average %s on %d cores: wall-clock figures are inflated by other work; ratios are same-run)"
             % (" ".join(load), os.cpu_count()),
             "ingest of the studies (bulk_studies.py, 8 connections, storage under %s): %s"
             % (bl.WORK, ", ".join("%s %.1f s" % kv for kv in ingest.items())),
             ""]
    table = []
    for r in rows:
        warm_dom = [w["dom"] for w in r["warm"]]
        warm_frame = [w["frame"] for w in r["warm"]]
        r["p50"] = statistics.median(warm_frame)
        table.append([r["label"], "%.0f" % r["cold"]["frame"], "%.0f" % r["p50"],
                      "%.0f" % statistics.median(warm_dom), "%.0f" % min(warm_frame), "%.0f" % max(warm_frame),
                      "%.1f" % r["cpu_ms_per_load"]])
    lines.append(bl.table(table, ["page", "cold ms", "warm p50 ms", "warm p50 DOM ms", "min", "max", "server CPU ms/load"]))
    lines.append("")
    orth = rows[-1]
    for r in rows[:-1]:
        lines.append("ratio Orthanc Explorer / %s: warm p50 %.2fx, cold %.2fx, server CPU per load %.2fx"
                     % (r["label"], orth["p50"] / r["p50"], orth["cold"]["frame"] / r["cold"]["frame"],
                        orth["cpu_ms_per_load"] / max(r["cpu_ms_per_load"], 1e-6)))
    goal = rows[0]
    lines.append("issue goal (first page < 300 ms after navigation): %s (warm p50 %.0f ms, cold %.0f ms)"
                 % ("met" if goal["p50"] < 300 else "NOT met on this run", goal["p50"], goal["cold"]["frame"]))
    text = "\n".join(lines) + "\n"
    print(text)
    if a.out:
        with open(a.out, "a") as f:
            f.write(text + "\n")


if __name__ == "__main__":
    main()
