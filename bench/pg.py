#!/usr/bin/python3
"""pg.py -- the PostgreSQL index (issue 17), in one run, on one throw-away PostgreSQL cluster
(tests/tools/pg.sh: Debian's PostgreSQL 15, its own folder and port, fsync off: every server
below gets the same cluster, so the ratios compare the servers, not the disk).

1. REST ingest of N instances (default 2,000 CT 512x512 16-bit, ~0.5 MB) with 8 keep-alive
   clients, SyncStorageArea false everywhere:
   - minipacs, 1 process, SQLite;
   - minipacs, 1 process, PostgreSQL;
   - minipacs, 2 processes on one database and one storage folder ("Lock": false), 4 clients
     on each;
   - Debian's Orthanc 1.10.1 with orthanc-postgresql 4.0's index plugin (files on disk as
     ours: "EnableStorage": false), "Lock": false.
   Instances/s and the ratio to Orthanc+PostgreSQL; and where the time goes: CPU seconds per
   1,000 instances of the server process(es), of PostgreSQL (every backend of the cluster)
   and of the benchmark's own client, against the wall time x 2 cores.
2. /tools/find and C-FIND (findscu) over FIND_N instances (default 100,000: FIND_N/10 studies
   of 10 tiny instances, distinct patients) on minipacs with PostgreSQL vs with SQLite:
   p50 of REPEAT runs of each query.

usage: bench/pg.py [--n 2000] [--find-n 100000] [--repeat 20] [--only ingest|find]
Environment: MINIPACS_BIN (default build-release/minipacs; --no-build skips the build)."""
import argparse
import json
import os
import shutil
import statistics
import struct
import subprocess
import sys
import threading
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import benchlib as B  # noqa: E402

RETRIES = [0]  # 503 "should be retried" answers retried by upload_split
PGSH = os.path.join(B.ROOT, "tests", "tools", "pg.sh")
PG_INDEX_PLUGIN = "/usr/share/orthanc/plugins/libOrthancPostgreSQLIndex.so"
TICK = os.sysconf("SC_CLK_TCK")


class Cluster:
    def __init__(self):
        os.makedirs(B.WORK, exist_ok=True)
        self.dir = os.path.join(B.WORK, "pgcluster")
        subprocess.run([PGSH, "stop", self.dir], check=False)
        self.port = int(subprocess.run([PGSH, "start", self.dir], check=True,
                                       capture_output=True, text=True).stdout.strip())
        self.n = 0

    def createdb(self):
        self.n += 1
        name = "bench%d" % self.n
        subprocess.run([PGSH, "createdb", self.dir, name], check=True)
        return name

    def section(self, db, lock=False):
        return {"EnableIndex": True, "Host": "127.0.0.1", "Port": self.port, "Database": db,
                "Username": "postgres", "Password": "", "Lock": lock,
                "IndexConnectionsCount": 8}

    def cpu_s(self):
        """CPU seconds of the cluster so far: postmaster (with its reaped backends) and the
        backends alive now."""
        with open(os.path.join(self.dir, "data", "postmaster.pid")) as f:
            pm = int(f.readline())
        total = proc_cpu(pm, children=True)
        for p in os.listdir("/proc"):
            if p.isdigit() and ppid(int(p)) == pm:
                total += proc_cpu(int(p))
        return total

    def stop(self):
        subprocess.run([PGSH, "stop", self.dir], check=False)


def stat_fields(pid):
    try:
        with open("/proc/%d/stat" % pid) as f:
            s = f.read()
    except OSError:
        return None
    return s[s.rindex(")") + 2:].split()


def ppid(pid):
    f = stat_fields(pid)
    return int(f[1]) if f else -1


def proc_cpu(pid, children=False):
    f = stat_fields(pid)
    if not f:
        return 0.0
    t = int(f[11]) + int(f[12])  # utime stime
    if children:
        t += int(f[13]) + int(f[14])  # cutime cstime
    return t / TICK


def self_cpu():
    t = os.times()
    return t.user + t.system


def upload_split(servers, files, clients):
    """files (paths or bytes) over REST with `clients` keep-alive connections, client i on
    servers[i % n]."""
    blobs = [f if isinstance(f, bytes) else open(f, "rb").read() for f in files]
    idx = [0]
    lock = threading.Lock()
    errors = []

    def worker(k):
        c = servers[k % len(servers)].conn()
        while True:
            with lock:
                i = idx[0]
                idx[0] += 1
            if i >= len(blobs):
                break
            for _ in range(50):
                c.request("POST", "/instances", body=blobs[i],
                          headers={"Content-Type": "application/dicom"})
                r = c.getresponse()
                body = r.read()
                # Orthanc + orthanc-postgresql 4.0 answers 503 "could not serialize access
                # ... should be retried" under concurrent stores: a client retries it
                if r.status == 503 and b"retried" in body:
                    with lock:
                        RETRIES[0] += 1
                    continue
                break
            if r.status != 200:
                errors.append((r.status, body[:200]))
        c.close()

    th = [threading.Thread(target=worker, args=(k,)) for k in range(clients)]
    t0 = time.time()
    for t in th:
        t.start()
    for t in th:
        t.join()
    dt = time.time() - t0
    if errors:
        raise RuntimeError("upload errors: %r" % errors[:3])
    return dt


def ingest(a, cluster):
    files = B.gen_study("ct%d" % a.n, a.n)
    setups = [("minipacs SQLite, 1 process", "minipacs", None, 1),
              ("minipacs PostgreSQL, 1 process", "minipacs", "pg", 1),
              ("minipacs PostgreSQL, 2 processes", "minipacs", "pg", 2),
              ("Orthanc 1.10.1 + orthanc-postgresql 4.0", "orthanc", "pg", 1)]
    res = []
    for name, kind, backend, nproc in setups:
        extra = {}
        if backend == "pg":
            db = cluster.createdb()
            extra["PostgreSQL"] = cluster.section(db)
            if kind == "orthanc":
                extra["PostgreSQL"]["EnableStorage"] = False
                extra["Plugins"] = [PG_INDEX_PLUGIN]
        servers = [B.Server(kind, sync=False, extra=extra)]
        if nproc == 2:
            e2 = dict(extra)
            e2["StorageDirectory"] = os.path.join(servers[0].dir, "db")
            e2["IndexDirectory"] = os.path.join(servers[0].dir, "db")
            servers.append(B.Server(kind, sync=False, extra=e2))
        try:
            c0 = [proc_cpu(s.proc.pid) for s in servers]
            p0 = cluster.cpu_s()
            m0 = self_cpu()
            RETRIES[0] = 0
            dt = upload_split(servers, files, 8)
            retries = RETRIES[0]
            srv = sum(proc_cpu(s.proc.pid) - c for s, c in zip(servers, c0))
            pg = cluster.cpu_s() - p0 if backend == "pg" else 0.0
            cli = self_cpu() - m0
            st = servers[0].get("/statistics")
            assert st["CountInstances"] == len(files), st
        finally:
            for s in servers:
                s.stop()
        k = len(files) / 1000.0
        res.append({"name": name, "rate": len(files) / dt, "wall": dt, "srv": srv / k,
                    "pg": pg / k, "cli": cli / k, "busy": (srv + pg + cli) / (2 * dt),
                    "retries": retries})
        print("  %-42s %6.0f inst/s" % (name, len(files) / dt), file=sys.stderr)
    ref = res[-1]["rate"]
    rows = [[r["name"], "%.0f" % r["rate"], "%.2fx" % (r["rate"] / ref), "%.1f" % r["srv"],
             "%.1f" % r["pg"], "%.1f" % r["cli"], "%.0f%%" % (100 * r["busy"]), r["retries"]]
            for r in res]
    print("REST ingest of %d CT instances (512x512x16-bit), 8 clients, SyncStorageArea false"
          % len(files))
    print(B.table(rows, ["setup", "inst/s", "vs Orthanc+PG", "server CPU s/1000",
                         "PostgreSQL CPU s/1000", "client CPU s/1000", "2 cores busy",
                         "503 retried"]))
    return res


def _elem(group, elem, vr, value):
    """One explicit VR little endian element (short-length VRs only)."""
    pad = b"\0" if vr == b"UI" else b" "
    if len(value) % 2:
        value += pad
    return struct.pack("<HH", group, elem) + vr + struct.pack("<H", len(value)) + value


def _part10(sop, study, series, s, i):
    sop_class = b"1.2.840.10008.5.1.4.1.1.7"
    meta = (_elem(2, 0x0002, b"UI", sop_class) + _elem(2, 0x0003, b"UI", sop) +
            _elem(2, 0x0010, b"UI", b"1.2.840.10008.1.2.1"))
    meta = (struct.pack("<HH", 2, 1) + b"OB\0\0" + struct.pack("<I", 2) + b"\0\1") + meta
    head = b"\0" * 128 + b"DICM" + _elem(2, 0, b"UL", b"")[:6] + struct.pack("<H", 4) + \
        struct.pack("<I", len(meta)) + meta
    body = (_elem(8, 0x0016, b"UI", sop_class) + _elem(8, 0x0018, b"UI", sop) +
            _elem(8, 0x0020, b"DA", b"20%02d%02d%02d" % (10 + s % 10, 1 + s % 12, 1 + s % 28)) +
            _elem(8, 0x0060, b"CS", b"OT") + _elem(0x10, 0x0010, b"PN", b"PAT%06d^Bench" % s) +
            _elem(0x10, 0x0020, b"LO", b"P%06d" % s) + _elem(0x20, 0x000D, b"UI", study) +
            _elem(0x20, 0x000E, b"UI", series) + _elem(0x20, 0x0013, b"IS", b"%d" % (i + 1)))
    return head + body


def gen_find_set(n):
    """n tiny instances in memory: n/10 studies (one series of 10 each), distinct patients
    PAT000000^Bench..., encoded directly as Part-10 bytes (pydicom writes ~100 files/s here)."""
    root = b"1.2.826.0.1.3680043.10.1017.%d" % int(time.time())
    out = []
    for s in range(n // 10):
        study, series = root + b".1.%d" % s, root + b".2.%d" % s
        for i in range(10):
            out.append(_part10(root + b".3.%d.%d" % (s, i), study, series, s, i))
    return out


FINDS = [
    ("study, PatientName PAT0001*", {"Level": "Study", "Query": {"PatientName": "PAT0001*"}}),
    ("study, PatientID exact", {"Level": "Study", "Query": {"PatientID": "P000777"}}),
    ("series, StudyDate range", {"Level": "Series", "Query": {"StudyDate": "20150101-20150131"}}),
    ("instance, PatientID exact", {"Level": "Instance", "Query": {"PatientID": "P000123"}}),
]


def run_checked(cmd):
    r = subprocess.run(cmd, capture_output=True, text=True)
    if r.returncode != 0:
        raise RuntimeError("%s failed: %s" % (cmd[0], (r.stdout + r.stderr)[-600:]))
    return r


def p50(fn, repeat):
    ts = []
    out = None
    for _ in range(repeat):
        t0 = time.perf_counter()
        out = fn()
        ts.append(time.perf_counter() - t0)
    return statistics.median(ts) * 1000, out


def find(a, cluster):
    files = gen_find_set(a.find_n)
    cols = {}
    counts = {}
    for label, backend in (("SQLite", None), ("PostgreSQL", "pg")):
        extra = {"DicomAlwaysAllowFind": True}
        if backend:
            extra["PostgreSQL"] = cluster.section(cluster.createdb())
        s = B.Server("minipacs", sync=False, extra=extra)
        try:
            t0 = time.time()
            upload_split([s], files, 8)
            print("  %s: %d instances stored in %.0f s" % (label, len(files), time.time() - t0),
                  file=sys.stderr)
            res = []
            for name, q in FINDS:
                ms, out = p50(lambda: s.post("/tools/find", q), a.repeat)
                counts.setdefault(name, set()).add(len(out))
                res.append(ms)
            cmd = ["findscu", "-v", "-S", "-aec", "ORTHANC", "-k", "QueryRetrieveLevel=STUDY",
                   "-k", "PatientName=PAT0001*", "-k", "StudyInstanceUID", "127.0.0.1",
                   str(s.dicom_port)]
            ms, out = p50(lambda: run_checked(cmd),
                          a.repeat)
            with open(os.path.join(B.WORK, "pg-findscu-%s.txt" % label), "w") as f:
                f.write(out.stdout + out.stderr)
            n = out.stderr.count("(Pending)")
            counts.setdefault("C-FIND study PatientName PAT0001* (findscu)", set()).add(n)
            res.append(ms)
            cols[label] = res
        finally:
            s.stop()
    names = [n for n, _ in FINDS] + ["C-FIND study PatientName PAT0001* (findscu)"]
    rows = []
    for i, name in enumerate(names):
        c = counts.get(name, {"?"})
        rows.append([name, "/".join(str(x) for x in sorted(c)), "%.1f" % cols["SQLite"][i],
                     "%.1f" % cols["PostgreSQL"][i],
                     "%.2fx" % (cols["PostgreSQL"][i] / cols["SQLite"][i])])
    print("/tools/find and C-FIND over %d instances (%d studies), p50 of %d runs"
          % (len(files), len(files) // 10, a.repeat))
    print(B.table(rows, ["query", "answers", "SQLite ms", "PostgreSQL ms", "PG / SQLite"]))


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--n", type=int, default=2000)
    ap.add_argument("--find-n", type=int, default=100000)
    ap.add_argument("--repeat", type=int, default=20)
    ap.add_argument("--only", choices=("ingest", "find"))
    ap.add_argument("--no-build", action="store_true")
    a = ap.parse_args()
    if not a.no_build:
        B.build_release()
    print("uptime: " + subprocess.run(["uptime"], capture_output=True, text=True).stdout.strip())
    cluster = Cluster()
    try:
        if a.only in (None, "ingest"):
            ingest(a, cluster)
        if a.only in (None, "find"):
            find(a, cluster)
    finally:
        cluster.stop()
    print("uptime: " + subprocess.run(["uptime"], capture_output=True, text=True).stdout.strip())


if __name__ == "__main__":
    main()
