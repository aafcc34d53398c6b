#!/usr/bin/python3
"""dicomweb.py -- DICOMweb side by side with Debian's Orthanc 1.10.1 + orthanc-dicomweb (issue 15).

1. WADO-RS metadata of one SERIES-instance series (512x512 CT): wall time of
   GET /dicom-web/studies/{s}/series/{x}/metadata (first request after the upload, then the best
   of REPEAT) and the server's peak RSS growth (VmHWM after - VmRSS before).
2. QIDO-RS studies search over STUDIES one-instance studies: PatientName=PAT00<d>* (about a tenth
   of the studies each), REPEAT queries: latency p50/p95, server CPU per query.
3. WADO-RS frames of the series, 6 parallel clients, frame 1 of every instance with OHIF's
   Accept (multipart/related; type="application/octet-stream"; transfer-syntax=*): frames/s.

usage: bench/dicomweb.py [--series 2000] [--studies 10000] [--repeat 30] [--clients 6]
                         [--only metadata|qido] [--results FILE] [--no-build]
Environment: MINIPACS_BIN (default build-release/minipacs, built first unless --no-build or
MINIPACS_BIN is set). The tables are also appended to bench/results/dicomweb-run.txt (or FILE). Orthanc runs with the DICOMweb plugin
(its defaults: StudiesMetadata/SeriesMetadata "Full"), both with SyncStorageArea false and
TCP_NODELAY=1. Figures are same-run ratios; the machine load is printed (uptime)."""
import argparse
import http.client
import json
import os
import statistics
import subprocess
import sys
import threading
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import benchlib as bl  # noqa: E402
import qr  # noqa: E402  (gen_small_studies, cpu_s)

PLUGIN = "/usr/share/orthanc/plugins/libOrthancDicomWeb.so"
OHIF_FRAMES = 'multipart/related; type="application/octet-stream"; transfer-syntax=*'


def server(kind):
    extra = {"DicomWeb": {"Enable": True}}
    if kind == "orthanc":
        extra["Plugins"] = [PLUGIN]
    return bl.Server(kind, sync=False, extra=extra)


def uids(path):
    code = "import pydicom,sys; d=pydicom.dcmread(sys.argv[1], stop_before_pixels=True); " \
           "print(d.StudyInstanceUID, d.SeriesInstanceUID)"
    return subprocess.run([bl.PY, "-c", code, path], capture_output=True, text=True, check=True).stdout.split()


def get(srv, path, accept=None):
    c = srv.conn()
    c.request("GET", path, headers={"Accept": accept} if accept else {})
    r = c.getresponse()
    data = r.read()
    c.close()
    if r.status != 200:
        raise RuntimeError("GET %s -> %d %s" % (path, r.status, data[:200]))
    return data


def bench_metadata(kind, files, repeat):
    srv = server(kind)
    try:
        bl.upload_all(srv, files, 4)
        st, se = uids(files[0])
        path = "/dicom-web/studies/%s/series/%s/metadata" % (st, se)
        rss0 = srv.rss_kb()
        t0 = time.perf_counter()
        first = get(srv, path)
        t_first = time.perf_counter() - t0
        times = []
        for _ in range(repeat):
            t0 = time.perf_counter()
            get(srv, path)
            times.append(time.perf_counter() - t0)
        n = len(json.loads(first))
        if n != len(files):
            raise RuntimeError("%s: %d instances in the metadata, %d uploaded" % (kind, n, len(files)))
        grow = (srv.hwm_kb() - rss0) / 1024
        # the whole series as multipart/related, stored bytes: streamed, one file at a time
        rss1 = srv.rss_kb()
        t0 = time.perf_counter()
        c = srv.conn()
        c.request("GET", "/dicom-web/studies/%s/series/%s" % (st, se),
                  headers={"Accept": 'multipart/related; type="application/dicom"; transfer-syntax=*'})
        resp = c.getresponse()
        total = 0
        while True:
            chunk = resp.read(1 << 20)
            if not chunk:
                break
            total += len(chunk)
        c.close()
        t_retrieve = time.perf_counter() - t0
        retrieve_grow = (srv.hwm_kb() - rss1) / 1024
        # instance list for the frames benchmark
        inst = json.loads(get(srv, "/dicom-web/studies/%s/series/%s/instances" % (st, se)))
        sops = [i["00080018"]["Value"][0] for i in inst]
        r = {"retrieve_s": t_retrieve, "retrieve_mb": total / 2**20, "retrieve_rss_mb": retrieve_grow,
             "first_s": t_first, "best_s": min(times), "median_s": statistics.median(times), "rss_mb": grow,
             "bytes": len(first)}
        r["frames_per_s"] = bench_frames(srv, st, se, sops, ARGS.clients)
        return r
    finally:
        srv.stop()


def bench_frames(srv, st, se, sops, clients):
    idx = [0]
    lock = threading.Lock()
    errors = []

    def worker():
        c = srv.conn()
        while True:
            with lock:
                i = idx[0]
                idx[0] += 1
            if i >= len(sops):
                break
            c.request("GET", "/dicom-web/studies/%s/series/%s/instances/%s/frames/1" % (st, se, sops[i]),
                      headers={"Accept": OHIF_FRAMES})
            r = c.getresponse()
            body = r.read()
            if r.status != 200 or len(body) < 512 * 512 * 2:
                errors.append((r.status, len(body)))
        c.close()

    t0 = time.perf_counter()
    th = [threading.Thread(target=worker) for _ in range(clients)]
    for t in th:
        t.start()
    for t in th:
        t.join()
    dt = time.perf_counter() - t0
    if errors:
        raise RuntimeError("frames: %r" % errors[:3])
    return len(sops) / dt


def bench_qido(kind, files, repeat):
    srv = server(kind)
    try:
        bl.upload_all(srv, files, 4)
        lat = []
        c0 = qr.cpu_s(srv.proc.pid)
        count = 0
        for i in range(repeat):
            t0 = time.perf_counter()
            body = get(srv, "/dicom-web/studies?PatientName=PAT00%d*" % (i % 10))
            lat.append((time.perf_counter() - t0) * 1000)
            count += len(json.loads(body))
        cpu = (qr.cpu_s(srv.proc.pid) - c0) * 1000 / repeat
        lat.sort()
        return {"p50_ms": statistics.median(lat), "p95_ms": lat[max(0, int(len(lat) * 0.95) - 1)],
                "cpu_ms": cpu, "answers": count / repeat}
    finally:
        srv.stop()


def main():
    global ARGS
    ap = argparse.ArgumentParser()
    ap.add_argument("--series", type=int, default=2000)
    ap.add_argument("--studies", type=int, default=10000)
    ap.add_argument("--repeat", type=int, default=30)
    ap.add_argument("--clients", type=int, default=6)
    ap.add_argument("--only", choices=["metadata", "qido"], default=None)
    ap.add_argument("--results", default=None, help="append the tables here (default results/dicomweb-run.txt)")
    ap.add_argument("--no-build", action="store_true", help="use the existing build-release/minipacs")
    ARGS = ap.parse_args()
    if not ARGS.no_build and "MINIPACS_BIN" not in os.environ:
        bl.build_release()
    out = ["# bench/dicomweb.py %s" % " ".join(sys.argv[1:]),
           "# start: " + subprocess.run(["uptime"], capture_output=True, text=True).stdout.strip()]
    res = {}
    if ARGS.only in (None, "metadata"):
        files = bl.gen_study("dw-series-%d" % ARGS.series, ARGS.series, series=1)
        for kind in ("minipacs", "orthanc"):
            res[("meta", kind)] = bench_metadata(kind, files, ARGS.repeat)
            print(kind, res[("meta", kind)], flush=True)
        m, o = res[("meta", "minipacs")], res[("meta", "orthanc")]
        out.append("WADO-RS metadata of a %d-instance series (%d KB answer from minipacs):" % (ARGS.series, m["bytes"] // 1024))
        out.append(bl.table([
            ["first request (s)", "%.3f" % m["first_s"], "%.3f" % o["first_s"], "%.1fx" % (o["first_s"] / m["first_s"])],
            ["best of %d (s)" % ARGS.repeat, "%.3f" % m["best_s"], "%.3f" % o["best_s"], "%.1fx" % (o["best_s"] / m["best_s"])],
            ["median (s)", "%.3f" % m["median_s"], "%.3f" % o["median_s"], "%.1fx" % (o["median_s"] / m["median_s"])],
            ["peak RSS growth (MB)", "%.1f" % m["rss_mb"], "%.1f" % o["rss_mb"], ""],
        ], ["", "minipacs", "orthanc+dicomweb", "ratio"]))
        out.append("WADO-RS retrieve of the series (multipart/related, transfer-syntax=*, %.0f MB):" % m["retrieve_mb"])
        out.append(bl.table([
            ["time (s)", "%.2f" % m["retrieve_s"], "%.2f" % o["retrieve_s"], "%.1fx" % (o["retrieve_s"] / m["retrieve_s"])],
            ["peak RSS growth (MB)", "%.1f" % m["retrieve_rss_mb"], "%.1f" % o["retrieve_rss_mb"], ""],
        ], ["", "minipacs", "orthanc+dicomweb", "ratio"]))
        out.append("WADO-RS frames (frame 1 of each instance, %d clients, transfer-syntax=*):" % ARGS.clients)
        out.append(bl.table([["frames/s", "%.0f" % m["frames_per_s"], "%.0f" % o["frames_per_s"],
                              "%.1fx" % (m["frames_per_s"] / o["frames_per_s"])]],
                            ["", "minipacs", "orthanc+dicomweb", "ratio"]))
    if ARGS.only in (None, "qido"):
        files = qr.gen_small_studies(ARGS.studies)
        for kind in ("minipacs", "orthanc"):
            res[("qido", kind)] = bench_qido(kind, files, ARGS.repeat)
            print(kind, res[("qido", kind)], flush=True)
        m, o = res[("qido", "minipacs")], res[("qido", "orthanc")]
        out.append("QIDO-RS /dicom-web/studies?PatientName=PAT00<d>* over %d studies (%.0f answers each), %d queries:"
                   % (ARGS.studies, m["answers"], ARGS.repeat))
        out.append(bl.table([
            ["p50 (ms)", "%.1f" % m["p50_ms"], "%.1f" % o["p50_ms"], "%.1fx" % (o["p50_ms"] / m["p50_ms"])],
            ["p95 (ms)", "%.1f" % m["p95_ms"], "%.1f" % o["p95_ms"], "%.1fx" % (o["p95_ms"] / m["p95_ms"])],
            ["server CPU / query (ms)", "%.1f" % m["cpu_ms"], "%.1f" % o["cpu_ms"], "%.1fx" % (o["cpu_ms"] / max(m["cpu_ms"], 0.01))],
        ], ["", "minipacs", "orthanc+dicomweb", "ratio"]))
    out.append("# end: " + subprocess.run(["uptime"], capture_output=True, text=True).stdout.strip())
    text = "\n".join(out)
    print(text)
    res_file = ARGS.results or os.path.join(bl.RESULTS, "dicomweb-run.txt")
    os.makedirs(os.path.dirname(os.path.abspath(res_file)), exist_ok=True)
    with open(res_file, "a") as f:
        f.write(text + "\n\n")


if __name__ == "__main__":
    main()
