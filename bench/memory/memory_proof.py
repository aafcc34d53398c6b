#!/usr/bin/python3
"""The memory proof (issue "Housekeeper and metrics"): minipacs with trimming (interval 30),
minipacs without (0) and Debian's Orthanc 1.10.1 (no trimming), in one run, one after the other
on the same inputs so that they do not compete for the CPUs.

burst: for each server, upload 5 generated studies (5 x 400 instances of 512x512 16-bit CT,
       about 1 GB), then anonymize them all at once (5 asynchronous jobs: POST
       /studies/{id}/anonymize {"Asynchronous": true}, then poll /jobs/{id}), sampling the RSS
       every second (bench/results/memory_<run>.csv) from the first upload until 2 minutes
       after the last job ends. Prints the table (RSS after the burst, 2 minutes later, peak,
       anonymization time) and draws the three curves (bench/results/memory.png, gnuplot).
idle:  starts minipacs (trimming 30) and Orthanc side by side, empty, lets them settle, then
       for 60 s sums voluntary_ctxt_switches over every /proc/<pid>/task/* and reports them per
       thread name (comm), with the idle RSS.

usage: bench/memory/memory_proof.py [all|idle|burst] [--after 120] [--idle 60] [--studies 5]
       [--per-study 400] [--only minipacs-trim,minipacs-notrim,orthanc]
MINIPACS_BIN selects the binary (default build-release/minipacs, built if missing)."""
import argparse
import json
import os
import subprocess
import sys
import threading
import time

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
import benchlib as B

RUNS = {
    "minipacs-trim": ("minipacs", {"MemoryTrimmingInterval": 30}),
    "minipacs-notrim": ("minipacs", {"MemoryTrimmingInterval": 0}),
    "orthanc": ("orthanc", {}),
}


def threads_switches(pid):
    """{tid: (comm, voluntary, involuntary)} of every thread of pid."""
    out = {}
    try:
        tids = os.listdir("/proc/%d/task" % pid)
    except OSError:
        return out
    for tid in tids:
        try:
            with open("/proc/%d/task/%s/comm" % (pid, tid)) as f:
                comm = f.read().strip()
            vol = invol = 0
            with open("/proc/%d/task/%s/status" % (pid, tid)) as f:
                for line in f:
                    if line.startswith("voluntary_ctxt_switches:"):
                        vol = int(line.split()[1])
                    elif line.startswith("nonvoluntary_ctxt_switches:"):
                        invol = int(line.split()[1])
            out[tid] = (comm, vol, invol)
        except OSError:
            pass
    return out


def wakeups(before, after):
    """Per comm: (threads, voluntary switches between the two readings)."""
    per = {}
    for tid, (comm, vol, _) in after.items():
        v0 = before.get(tid, (comm, 0, 0))[1]
        n, s = per.get(comm, (0, 0))
        per[comm] = (n + 1, s + vol - v0)
    return per


def idle(seconds):
    servers = [B.Server("minipacs", extra={"MemoryTrimmingInterval": 30}), B.Server("orthanc")]
    try:
        time.sleep(5)  # settle: start-up work done, first requests answered
        before = [threads_switches(s.proc.pid) for s in servers]
        t0 = time.time()
        time.sleep(seconds)
        dt = time.time() - t0
        after = [threads_switches(s.proc.pid) for s in servers]
        res = {}
        for s, b, a in zip(servers, before, after):
            per = wakeups(b, a)
            total = sum(v for _, v in per.values())
            res[s.kind] = {"seconds": round(dt, 1), "wakeups": total, "per_s": round(total / dt, 2),
                           "rss_mb": round(s.rss_kb() / 1024, 1), "threads": len(a),
                           "per_thread": {c: {"threads": n, "wakeups": v} for c, (n, v) in sorted(per.items())}}
            print("%-9s idle %.0f s: %d wake-ups (%.2f/s), %d threads, RSS %.1f MB" %
                  (s.kind, dt, total, total / dt, len(a), s.rss_kb() / 1024))
            for c, (n, v) in sorted(per.items(), key=lambda x: -x[1][1]):
                print("    %-18s x%-3d %6d" % (c, n, v))
        return res
    finally:
        for s in servers:
            s.stop()


def gen_inputs(nstudies, per_study):
    studies = []
    for k in range(nstudies):
        studies.append(B.gen_study("mem%d_%d" % (k, per_study), per_study, series=4,
                                   extra=("--seed", str(100 + k), "--patient", "MEMPAT%d" % k)))
    return studies


def burst(name, studies, after_s):
    kind, extra = RUNS[name]
    s = B.Server(kind, extra=extra)
    smp = B.RssSampler(s.proc.pid, 1.0)
    smp.start()
    try:
        t_up = time.time()
        for files in studies:
            B.upload_all(s, files, 4)
        upload_s = time.time() - t_up
        ids = s.get("/studies")
        assert len(ids) == len(studies), ids
        rss_uploaded = s.rss_kb()
        t0 = time.time()
        jobs = [s.post("/studies/%s/anonymize" % i, {"Asynchronous": True})["ID"] for i in ids]
        pending = set(jobs)
        states = {}
        while pending:
            time.sleep(0.5)
            for j in list(pending):
                st = s.get("/jobs/%s" % j)
                if st["State"] in ("Success", "Failure"):
                    states[j] = st["State"]
                    pending.discard(j)
        t1 = time.time()
        anon_s = t1 - t0
        rss_burst = s.rss_kb()
        failed = [j for j, v in states.items() if v != "Success"]
        time.sleep(after_s)
        rss_after = s.rss_kb()
        hwm = s.hwm_kb()
        smp.stop()
        n_after = s.get("/statistics")["CountInstances"]
        peak = max(kb for _, kb in smp.samples)
        csv = os.path.join(B.RESULTS, "memory_%s.csv" % name)
        with open(csv, "w") as f:
            f.write("t_s,t_from_anon_s,rss_kb\n")
            for t, kb in smp.samples:
                f.write("%.1f,%.1f,%d\n" % (t, t - (t0 - smp.t0), kb))
        r = {"run": name, "upload_s": round(upload_s, 1), "anon_s": round(anon_s, 1),
             "jobs_failed": len(failed), "instances_after": n_after,
             "rss_uploaded_mb": round(rss_uploaded / 1024, 1),
             "rss_burst_mb": round(rss_burst / 1024, 1), "rss_after_mb": round(rss_after / 1024, 1),
             "peak_mb": round(peak / 1024, 1), "hwm_mb": round(hwm / 1024, 1), "csv": csv}
        if kind == "minipacs":
            text = s.request("GET", "/tools/metrics-prometheus").decode()
            r["metrics"] = {l.split()[0]: float(l.split()[1]) for l in text.splitlines()
                            if l and not l.startswith("#") and ("trim" in l or "resident" in l)}
        print(json.dumps(r))
        return r
    finally:
        if smp.is_alive():
            smp.stop()
        s.stop()


def plot(results, path):
    plots = []
    for r in results:
        plots.append("'%s' using 2:($3/1024) with lines lw 2 title '%s'" % (r["csv"], r["run"]))
    script = "\n".join([
        "set terminal pngcairo size 1000,560" if has_cairo() else "set terminal png size 1000,560",
        "set output '%s'" % path,
        "set datafile separator ','",
        "set key autotitle columnhead top right",
        "set xlabel 'seconds from the start of the anonymization burst'",
        "set ylabel 'RSS (MB)'",
        "set title 'RSS during upload, 5 parallel anonymizations, then 2 minutes idle'",
        "set grid",
        "set arrow from graph 0, first 150 to graph 1, first 150 nohead dt 2 lc rgb 'gray'",
        "plot " + ", ".join(plots),
    ])
    subprocess.run(["gnuplot"], input=script.encode(), check=True)


def has_cairo():
    p = subprocess.run(["gnuplot", "-e", "set terminal"], capture_output=True, text=True)
    return "pngcairo" in p.stdout + p.stderr


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("what", nargs="?", default="all", choices=["all", "idle", "burst"])
    ap.add_argument("--after", type=float, default=120)
    ap.add_argument("--idle", type=float, default=60)
    ap.add_argument("--studies", type=int, default=5)
    ap.add_argument("--per-study", type=int, default=400)
    ap.add_argument("--only", default=",".join(RUNS))
    a = ap.parse_args()
    if not os.path.exists(B.MINIPACS):
        B.build_release()
    os.makedirs(B.RESULTS, exist_ok=True)
    out = {"minipacs": B.MINIPACS}
    if a.what in ("all", "idle"):
        out["idle"] = idle(a.idle)
    if a.what in ("all", "burst"):
        studies = gen_inputs(a.studies, a.per_study)
        res = [burst(n, studies, a.after) for n in a.only.split(",")]
        out["burst"] = res
        rows = [[r["run"], r["upload_s"], r["anon_s"], r["jobs_failed"], r["rss_uploaded_mb"],
                 r["rss_burst_mb"], r["rss_after_mb"], r["peak_mb"]] for r in res]
        print(B.table(rows, ["run", "upload s", "anonymize s", "failed", "RSS uploaded MB",
                             "RSS after burst MB", "RSS +%ds MB" % a.after, "peak MB"]))
        png = os.path.join(B.RESULTS, "memory.png")
        plot(res, png)
        print("plot:", png)
    with open(os.path.join(B.RESULTS, "memory_%s.json" % a.what), "w") as f:
        json.dump(out, f, indent=1)


if __name__ == "__main__":
    main()
