#!/usr/bin/python3
"""STOW-RS benchmark (issue 15). Stores a generated 2,000-instance CT study (512x512 16-bit)
through POST /dicom-web/studies in batches of 50 instances (multipart/related;
type="application/dicom"), with 1 and 4 parallel keep-alive clients, into minipacs and into
Debian's Orthanc 1.10.1 + orthanc-dicomweb in the same run (same SyncStorageArea,
TCP_NODELAY=1); prints instances/s, the ratio, each server's CPU time per instance (utime +
stime over the run: steadier than wall time on a loaded machine) and peak RSS. The bodies are
built before the clock starts; every answer must list the batch's 50 instances as stored.

usage: bench/stow.py [--n 2000] [--batch 50] [--sync both|true|false] [--clients 1,4]
                     [--results FILE] [--no-build]
(default: both SyncStorageArea values, one after the other; the table is also appended to
bench/results/stow-run.txt, or FILE, with the machine's uptime before and after).
Environment: MINIPACS_BIN (default build-release/minipacs, built first unless --no-build)."""
import argparse
import json
import os
import subprocess
import sys
import threading
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import benchlib as B
import qr  # noqa: E402  (cpu_s)

BOUNDARY = b"minipacs-bench-boundary-7f3a"
CT = 'multipart/related; type="application/dicom"; boundary=%s' % BOUNDARY.decode()
DICOMWEB = {"Plugins": ["/usr/share/orthanc/plugins/libOrthancDicomWeb.so"],
            "DicomWeb": {"Enable": True, "Root": "/dicom-web/"}}


def bodies(files, batch):
    out = []
    for i in range(0, len(files), batch):
        parts = []
        for f in files[i:i + batch]:
            parts.append(b"--" + BOUNDARY + b"\r\nContent-Type: application/dicom\r\n\r\n")
            parts.append(open(f, "rb").read())
            parts.append(b"\r\n")
        parts.append(b"--" + BOUNDARY + b"--\r\n")
        out.append((len(files[i:i + batch]), b"".join(parts)))
    return out


def stow_all(server, batches, clients):
    idx = [0]
    lock = threading.Lock()
    errors = []

    def worker():
        c = server.conn()
        while True:
            with lock:
                i = idx[0]
                idx[0] += 1
            if i >= len(batches):
                break
            n, body = batches[i]
            c.request("POST", "/dicom-web/studies", body=body,
                      headers={"Content-Type": CT, "Accept": "application/dicom+json"})
            r = c.getresponse()
            data = r.read()
            if r.status != 200:
                errors.append((r.status, data[:300]))
                continue
            ok = json.loads(data).get("00081199", {}).get("Value", [])
            if len(ok) != n:
                errors.append(("stored %d of %d" % (len(ok), n), data[:300]))
        c.close()

    t0 = time.time()
    th = [threading.Thread(target=worker) for _ in range(clients)]
    for t in th:
        t.start()
    for t in th:
        t.join()
    dt = time.time() - t0
    if errors:
        raise RuntimeError("STOW errors: %r" % errors[:3])
    return sum(n for n, _ in batches) / dt


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--n", type=int, default=2000)
    ap.add_argument("--batch", type=int, default=50)
    ap.add_argument("--sync", default="both", choices=["both", "true", "false"])
    ap.add_argument("--clients", default="1,4")
    ap.add_argument("--results", default=os.path.join(B.RESULTS, "stow-run.txt"))
    ap.add_argument("--no-build", action="store_true")
    a = ap.parse_args()
    if not a.no_build:
        B.build_release()
    files = B.gen_study("ct%d" % a.n, a.n)
    batches = bodies(files, a.batch)
    out = ["# bench/stow.py %s, %s" % (" ".join(sys.argv[1:]), time.strftime("%Y-%m-%dT%H:%MZ", time.gmtime())),
           "# start: " + subprocess.run(["uptime"], capture_output=True, text=True).stdout.strip()]
    for sync in ([True, False] if a.sync == "both" else [a.sync == "true"]):
        rows = []
        for clients in [int(c) for c in a.clients.split(",")]:
            rates = {}
            for kind in ("minipacs", "orthanc"):
                s = B.Server(kind, sync=sync, extra=DICOMWEB if kind == "orthanc" else None)
                try:
                    c0 = qr.cpu_s(s.proc.pid)
                    rates[kind] = stow_all(s, batches, clients)
                    rates[kind + "_cpu"] = (qr.cpu_s(s.proc.pid) - c0) * 1000 / len(files)
                    st = s.get("/statistics")
                    assert st["CountInstances"] == len(files), st
                    rates[kind + "_rss"] = s.hwm_kb() // 1024
                finally:
                    s.stop()
            rows.append([clients, "%.0f" % rates["minipacs"], "%.0f" % rates["orthanc"],
                         "%.2fx" % (rates["minipacs"] / rates["orthanc"]),
                         "%.2f" % rates["minipacs_cpu"], "%.2f" % rates["orthanc_cpu"],
                         rates["minipacs_rss"], rates["orthanc_rss"]])
        out.append("STOW-RS of %d CT instances (512x512x16-bit) in batches of %d, SyncStorageArea=%s"
                   % (len(files), a.batch, sync))
        out.append(B.table(rows, ["clients", "minipacs inst/s", "orthanc inst/s", "ratio",
                                  "minipacs CPU ms/inst", "orthanc CPU ms/inst",
                                  "minipacs peak MB", "orthanc peak MB"]))
        print("\n".join(out[-2:]), flush=True)
    out.append("# end: " + subprocess.run(["uptime"], capture_output=True, text=True).stdout.strip())
    print(out[-1])
    os.makedirs(os.path.dirname(os.path.abspath(a.results)), exist_ok=True)
    with open(a.results, "a") as f:
        f.write("\n".join(out) + "\n\n")


if __name__ == "__main__":
    main()
