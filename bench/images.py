#!/usr/bin/python3
"""Images and archives benchmark (issue 14), minipacs and Debian's Orthanc 1.10.1 in the same
run ("Plugins": [], same SyncStorageArea, TCP_NODELAY=1):
  1. GET /studies/{id}/archive of a generated N-instance CT study (512x512 16-bit, about
     0.5 MB each; N=2000 is about 1 GB), the same files on both servers: seconds until the
     last byte, the archive's size, and the server's peak RSS growth during the download (RSS
     sampled every 20 ms, minus the RSS just before). The images carry Gaussian noise
     (`--noise`, default 8 grey levels: they deflate to about 75 %) so that Orthanc, which
     deflates its entries, is not flattered by a pattern that deflates to 3 % and we, who
     store them, are not either;
  2. GET /instances/{id}/preview of those 512x512 16-bit frames with 4 clients (keep-alive
     connections), images/s over `--previews` requests;
  3. GET /instances/{id}/rendered of the same (no window in the files: both stretch or
     window by their rules), 4 clients;
  4. /preview of a JPEG-LS lossless series (dcmcjpls of `--jls` of those instances).
Results as ratios minipacs/Orthanc, with the machine's load (`uptime`), table printed and
appended to bench/results/images.txt (or `--out`).

usage: bench/images.py [--n 2000] [--previews 800] [--jls 200] [--noise 8] [--sync false]
                       [--out FILE] [--no-build]"""
import argparse
import os
import subprocess
import sys
import threading
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import benchlib as B


def peak_during(server, fn):
    """Runs fn() while sampling the server's RSS every 20 ms; returns (fn's result, seconds,
    peak growth in MB)."""
    base = B.read_status(server.proc.pid, "VmRSS")
    samples = []
    halt = threading.Event()

    def sample():
        while not halt.is_set():
            samples.append(B.read_status(server.proc.pid, "VmRSS"))
            halt.wait(0.02)

    t = threading.Thread(target=sample, daemon=True)
    t.start()
    t0 = time.time()
    r = fn()
    dt = time.time() - t0
    halt.set()
    t.join()
    return r, dt, (max(samples + [base]) - base) / 1024.0


def download(server, path):
    c = server.conn()
    c.request("GET", path)
    r = c.getresponse()
    n = 0
    while True:
        b = r.read(1 << 20)
        if not b:
            break
        n += len(b)
    c.close()
    if r.status != 200:
        raise RuntimeError("%s -> %d" % (path, r.status))
    return n


def previews(server, ids, total, clients=4, route="preview"):
    idx = [0]
    lock = threading.Lock()
    errors = []

    def worker():
        c = server.conn()
        while True:
            with lock:
                i = idx[0]
                idx[0] += 1
            if i >= total:
                break
            c.request("GET", "/instances/%s/%s" % (ids[i % len(ids)], route))
            r = c.getresponse()
            body = r.read()
            if r.status != 200 or body[:4] != b"\x89PNG":
                errors.append(r.status)
        c.close()

    t0 = time.time()
    th = [threading.Thread(target=worker) for _ in range(clients)]
    for t in th:
        t.start()
    for t in th:
        t.join()
    dt = time.time() - t0
    if errors:
        raise RuntimeError("preview errors: %r" % errors[:5])
    return total / dt


def jls_files(files, n):
    d = os.path.join(B.WORK, "jls-%d" % n)
    os.makedirs(d, exist_ok=True)
    out = []
    for f in files[:n]:
        o = os.path.join(d, os.path.basename(f))
        if not os.path.exists(o):
            subprocess.run(["dcmcjpls", "--encode-lossless", f, o], check=True)
        out.append(o)
    return out


def run(kind, files, jls, sync, npreviews):
    s = B.Server(kind, sync=sync)
    res = {}
    try:
        B.upload_all(s, files, 4)
        study = s.get("/studies")[0]
        time.sleep(1)
        size, dt, growth = peak_during(s, lambda: download(s, "/studies/%s/archive" % study))
        res["archive_s"], res["archive_mb"], res["archive_rss_mb"] = dt, size / 1048576.0, growth
        ids = s.get("/instances")
        for i in ids[:8]:  # warm the first requests' code paths
            s.get("/instances/%s/preview" % i)
        res["preview_ips"] = previews(s, ids, npreviews)
        res["rendered_ips"] = previews(s, ids, npreviews, route="rendered")
        jids = []
        for f in jls:
            jids.append(s.post("/instances", open(f, "rb").read())["ID"])
        res["jls_ips"] = previews(s, jids, max(len(jids), npreviews // 2))
    finally:
        s.stop()
    return res


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--n", type=int, default=2000)
    ap.add_argument("--previews", type=int, default=800)
    ap.add_argument("--jls", type=int, default=200)
    ap.add_argument("--sync", default="false")
    ap.add_argument("--noise", type=float, default=8.0)
    ap.add_argument("--out", default=None)
    ap.add_argument("--no-build", action="store_true")
    a = ap.parse_args()
    if not a.no_build:
        B.build_release()
    files = B.gen_study("ct-noise%g-%d" % (a.noise, a.n), a.n, extra=["--noise", str(a.noise)] if a.noise else [])
    jls = jls_files(files, a.jls)
    sync = a.sync == "true"
    m = run("minipacs", files, jls, sync, a.previews)
    o = run("orthanc", files, jls, sync, a.previews)
    rows = [
        ["archive of %d instances (s)" % a.n, "%.1f" % m["archive_s"], "%.1f" % o["archive_s"],
         "%.2fx faster" % (o["archive_s"] / m["archive_s"])],
        ["archive size (MB)", "%.0f" % m["archive_mb"], "%.0f" % o["archive_mb"],
         "%.2fx the size" % (m["archive_mb"] / o["archive_mb"])],
        ["archive peak RSS growth (MB)", "%.1f" % m["archive_rss_mb"], "%.1f" % o["archive_rss_mb"], ""],
        ["/preview 512x512 16-bit, 4 clients (img/s)", "%.0f" % m["preview_ips"], "%.0f" % o["preview_ips"],
         "%.2fx" % (m["preview_ips"] / o["preview_ips"])],
        ["/rendered 512x512 16-bit, 4 clients (img/s)", "%.0f" % m["rendered_ips"], "%.0f" % o["rendered_ips"],
         "%.2fx" % (m["rendered_ips"] / o["rendered_ips"])],
        ["/preview JPEG-LS, 4 clients (img/s)", "%.0f" % m["jls_ips"], "%.0f" % o["jls_ips"],
         "%.2fx" % (m["jls_ips"] / o["jls_ips"])],
    ]
    text = B.table(rows, ["", "minipacs", "Orthanc 1.10.1", "ratio"])
    stamp = time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime())
    up = subprocess.run(["uptime"], capture_output=True, text=True).stdout.strip()
    out = ("images benchmark %s (n=%d, noise %g, SyncStorageArea %s; Orthanc: \"Plugins\": [], TCP_NODELAY=1)\n"
           "uptime at the end: %s\n%s\n") % (stamp, a.n, a.noise, a.sync, up, text)
    print(out)
    os.makedirs(B.RESULTS, exist_ok=True)
    with open(a.out or os.path.join(B.RESULTS, "images.txt"), "a") as f:
        f.write(out + "\n")


if __name__ == "__main__":
    main()
