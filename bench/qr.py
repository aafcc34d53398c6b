#!/usr/bin/python3
"""qr.py -- query/retrieve side by side with Debian's Orthanc 1.10.1 (issue 13).

C-FIND: STUDIES one-instance studies (tiny images, distinct patients "PAT000000^Bench"...),
STUDY level, PatientName wildcard "PAT00<d>*" (with 10,000 studies: 1,000 answers per query),
keys StudyInstanceUID and StudyDate. Two figures per server:
- server latency: one association kept open, REPEAT queries on it, each timed from the
  C-FIND-RQ sent to the final response received (tests/tools/dicom_raw.py, a small client
  reading with one buffered reader: no tool start-up, no association set-up in the figure);
  p50/p95, and the server's CPU time per query (utime+stime from /proc, load-independent);
- findscu end to end (start-up, association, answers, release), as a user sees it; findscu's
  own start-up (~50-100 ms of dictionary loading) is in both servers' figures.
C-MOVE and C-GET: one MOVE_N-instance CT study (512x512, ~0.5 MB each) to storescp / getscu:
instances/s, the server's RSS growth (VmHWM after - VmRSS before) scaled to 1 GB moved, and
CPU per instance.
--receiver-fork: the C-MOVE also to a forking storescp (--fork: one process per association),
our destination with "ParallelAssociations" N for each N of --parallel (default 2, the best of
2, 3 and 4 on this 2-core machine: bench/results/qr-2026-12-01-s6.txt). The key is ours only:
Orthanc 1.10.1 moves over one association, its config is otherwise the same. Both figures are
printed, plain storescp and forking storescp.

usage: bench/qr.py [--studies 10000] [--repeat 50] [--move 2000] [--only find|retrieve|move]
                   [--receiver-fork [--parallel 2[,3,4]]]
Environment: MINIPACS_BIN (default build-release/minipacs)."""
import argparse
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import benchlib as bl  # noqa: E402
sys.path.insert(0, os.path.join(bl.ROOT, "tests", "tools"))
import dicom_raw  # noqa: E402


def gen_small_studies(n):
    d = os.path.join(bl.WORK, "qr-small-%d" % n)
    if os.path.isdir(d) and len(os.listdir(d)) >= n:
        return sorted(os.path.join(d, f) for f in os.listdir(d))
    shutil.rmtree(d, ignore_errors=True)
    os.makedirs(d)
    code = r'''
import sys, os
from pydicom.dataset import Dataset, FileMetaDataset
from pydicom.uid import ExplicitVRLittleEndian, generate_uid
out, n = sys.argv[1], int(sys.argv[2])
for i in range(n):
    ds = Dataset()
    ds.SOPClassUID = "1.2.840.10008.5.1.4.1.1.7"; ds.SOPInstanceUID = generate_uid()
    ds.PatientID = "P%06d" % i; ds.PatientName = "PAT%06d^Bench" % i
    ds.StudyInstanceUID = generate_uid(); ds.SeriesInstanceUID = generate_uid()
    ds.StudyDate = "2020%02d%02d" % (1 + i % 12, 1 + i % 28); ds.Modality = "OT"
    ds.file_meta = FileMetaDataset(); ds.file_meta.TransferSyntaxUID = ExplicitVRLittleEndian
    ds.is_little_endian = True; ds.is_implicit_VR = False
    ds.save_as(os.path.join(out, "s%06d.dcm" % i), write_like_original=False)
'''
    subprocess.run([bl.PY, "-c", code, d, str(n)], check=True)
    return sorted(os.path.join(d, f) for f in os.listdir(d))


def cpu_s(pid):
    """utime + stime of a process, seconds (less sensitive to a loaded machine than wall time)."""
    with open("/proc/%d/stat" % pid) as f:
        v = f.read().rsplit(")", 1)[1].split()
    return (int(v[11]) + int(v[12])) / os.sysconf("SC_CLK_TCK")


def pattern(i):
    return "PAT00%d*" % (i % 10)


def cfind_findscu(server, repeat):
    """findscu end to end: (p50 ms, p95 ms, server CPU ms/query)."""
    lat = []
    c0 = cpu_s(server.proc.pid)
    for i in range(repeat):
        t0 = time.perf_counter()
        r = subprocess.run(["findscu", "-S", "-aec", "ORTHANC", "-k", "QueryRetrieveLevel=STUDY",
                            "-k", "PatientName=" + pattern(i), "-k", "StudyInstanceUID",
                            "-k", "StudyDate", "127.0.0.1", str(server.dicom_port)],
                           capture_output=True, text=True)
        lat.append((time.perf_counter() - t0) * 1000)
        if r.returncode != 0:
            raise RuntimeError("findscu failed: " + r.stderr[-300:])
    lat.sort()
    cpu_ms = (cpu_s(server.proc.pid) - c0) * 1000 / repeat
    return statistics.median(lat), lat[max(0, int(len(lat) * 0.95) - 1)], cpu_ms


def cfind_assoc(server, repeat):
    """One association, `repeat` C-FINDs, each timed from C-FIND-RQ to the final response:
    (p50 ms, p95 ms, server CPU ms/query, answers per query, client CPU ms/query)."""
    a = dicom_raw.Assoc(server.dicom_port, calling="FINDSCU",
                        contexts=[(1, dicom_raw.FIND_STUDY_ROOT, [dicom_raw.IMPLICIT_LE])], timeout=600)
    if a.result != 2:
        raise RuntimeError("association refused by %s" % server.kind)
    lat, counts, client_ms = [], set(), []
    a.find(dicom_raw.identifier([(0x00080052, "STUDY"), (0x00100010, "NOBODY*")]))  # warm-up
    c0 = cpu_s(server.proc.pid)
    for i in range(repeat):
        ident = dicom_raw.identifier([(0x00080052, "STUDY"), (0x00100010, pattern(i)),
                                      (0x0020000D, ""), (0x00080020, "")])
        t0 = time.perf_counter()
        p0 = time.process_time()
        st, answers = a.find(ident)
        client_ms.append((time.process_time() - p0) * 1000)
        lat.append((time.perf_counter() - t0) * 1000)
        if st != 0:
            raise RuntimeError("%s: C-FIND status 0x%04x" % (server.kind, st))
        counts.add(answers)
    cpu_ms = (cpu_s(server.proc.pid) - c0) * 1000 / repeat
    a.release()
    lat.sort()
    return (statistics.median(lat), lat[max(0, int(len(lat) * 0.95) - 1)], cpu_ms, sorted(counts),
            statistics.median(client_ms))


def retrieve(server, files, kind, port, aet="DEST", fork=False):
    """C-MOVE to storescp on port (kind "move"; fork: storescp --fork, called aet) or C-GET by
    getscu: (instances/s, RSS growth MB, server CPU ms/instance)."""
    out = tempfile.mkdtemp(prefix="qr-recv-", dir=bl.WORK)
    os.sync()  # the previous run's 1 GB written back first, not during this one
    scp = None
    env = dict(os.environ, TCP_NODELAY="1")
    if kind == "move":
        scp = subprocess.Popen(["storescp"] + (["--fork"] if fork else []) +
                               ["-B", "-aet", aet, "-od", out, str(port)], env=env,
                               stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                               start_new_session=True)  # its --fork children in its group
        time.sleep(0.5)
    import pydicom
    study = pydicom.dcmread(files[0], stop_before_pixels=True).StudyInstanceUID
    try:  # reset VmHWM to the current RSS, so that the upload's peak does not count
        with open("/proc/%d/clear_refs" % server.proc.pid, "w") as f:
            f.write("5")
    except OSError:
        pass
    rss0 = server.rss_kb()
    c0 = cpu_s(server.proc.pid)
    t0 = time.perf_counter()
    if kind == "move":
        cmd = ["movescu", "-S", "-aet", "MOVER", "-aec", "ORTHANC", "-aem", aet]
    else:
        cmd = ["getscu", "-S", "-aet", "GETTER", "-aec", "ORTHANC", "-od", out]
    subprocess.run(cmd + ["-k", "QueryRetrieveLevel=STUDY", "-k", "StudyInstanceUID=" + study,
                          "127.0.0.1", str(server.dicom_port)], check=True, env=env,
                   stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    dt = time.perf_counter() - t0
    cpu_ms = (cpu_s(server.proc.pid) - c0) * 1000 / len(files)
    hwm = server.hwm_kb()
    got = len(os.listdir(out))
    if scp:
        os.killpg(scp.pid, 15)
        scp.wait()
    # removed at exit, like the servers' storage (benchlib: inodes freed just before slowed
    # the next run's file creation; seen here as the later of several moves running slower)
    bl._to_remove.append(out)
    if got != len(files):
        raise RuntimeError("%s received %d of %d" % (kind, got, len(files)))
    return len(files) / dt, max(0, hwm - rss0) / 1024.0, cpu_ms


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--studies", type=int, default=10000)
    ap.add_argument("--repeat", type=int, default=50)
    ap.add_argument("--findscu-repeat", type=int, default=20)
    ap.add_argument("--move", type=int, default=2000)
    ap.add_argument("--only", choices=("find", "retrieve", "move"), default=None)
    ap.add_argument("--receiver-fork", action="store_true",
                    help="also C-MOVE to storescp --fork, ours with ParallelAssociations (--parallel)")
    ap.add_argument("--parallel", default="2", help="ParallelAssociations values to try (2,3,4)")
    ap.add_argument("--baseline", default=None,
                    help="another minipacs binary (e.g. main's) run in the same session: before/after")
    a = ap.parse_args()
    do_find = a.only in (None, "find")
    do_ret = a.only in (None, "retrieve", "move")
    do_get = a.only in (None, "retrieve")
    pars = [int(x) for x in a.parallel.split(",")] if a.receiver_fork else []
    small = gen_small_studies(a.studies) if do_find else []
    big = bl.gen_study("qr-move-%d" % a.move, a.move, series=4) if do_ret else []
    big_bytes = sum(os.path.getsize(f) for f in big)
    dest_port = bl.free_port()
    mods = {"DicomModalities": {"dest": ["DEST", "127.0.0.1", dest_port], "mover": ["MOVER", "127.0.0.1", 1],
                                "getter": ["GETTER", "127.0.0.1", 1], "finder": ["FINDSCU", "127.0.0.1", 1]},
            "DicomAlwaysAllowFind": True, "DicomAlwaysAllowMove": True, "DicomAlwaysAllowGet": True,
            # no "stable" processing of the 10,000 new studies in the middle of the figures
            "StableAge": 3600}
    for n in pars:  # one destination per value, same storescp port; the key is ours only
        mods["DicomModalities"]["fork%d" % n] = {"AET": "FORK%d" % n, "Host": "127.0.0.1", "Port": dest_port,
                                                 "ParallelAssociations": n}
    kinds = [("minipacs", "minipacs", None)]
    if a.baseline:
        kinds.append(("baseline", "minipacs", a.baseline))
    kinds.append(("orthanc", "orthanc", None))
    rows = []
    for label, kind, exe in kinds:
        m = mods
        if kind == "orthanc":  # the same destinations without our key
            m = dict(mods, DicomModalities={k: ([v["AET"], v["Host"], v["Port"]] if isinstance(v, dict) else v)
                                            for k, v in mods["DicomModalities"].items()})
        s = bl.Server(kind, extra=m, exe=exe)
        try:
            r = {"label": label}
            if do_find:
                bl.upload_all(s, small, 4)
                r["assoc"] = cfind_assoc(s, a.repeat)
                r["findscu"] = cfind_findscu(s, a.findscu_repeat)
            if do_ret:
                bl.upload_all(s, big, 4)
                r["move"] = retrieve(s, big, "move", dest_port)
                if do_get:
                    r["get"] = retrieve(s, big, "get", dest_port)
                # Orthanc has one figure (no key): its first FORK destination
                for n in (pars[:1] if kind == "orthanc" else pars):
                    r["fork%d" % n] = retrieve(s, big, "move", dest_port, "FORK%d" % n, fork=True)
            rows.append(r)
        finally:
            s.stop()
    orth = rows[-1]
    if do_find:
        print("C-FIND STUDY level, PatientName wildcard, %d studies (answers per query: %s)"
              % (a.studies, ", ".join("%s %s" % (r["label"], r["assoc"][3]) for r in rows)))
        print(" server latency: one association, %d queries, C-FIND-RQ -> final response" % a.repeat)
        for r in rows:
            p50, p95, cpu, _, client = r["assoc"]
            print("  %-9s p50 %7.1f ms  p95 %7.1f ms  server CPU %6.1f ms/query  (client CPU %4.1f ms/query)"
                  % (r["label"], p50, p95, cpu, client))
        for r in rows[:-1]:
            print("  ratio Orthanc/%s: p50 %.2fx, p95 %.2fx, CPU %.2fx"
                  % (r["label"], orth["assoc"][0] / r["assoc"][0], orth["assoc"][1] / r["assoc"][1],
                     orth["assoc"][2] / max(r["assoc"][2], 1e-6)))
        print(" findscu end to end (its start-up included), %d runs" % a.findscu_repeat)
        for r in rows:
            p50, p95, cpu = r["findscu"]
            print("  %-9s p50 %7.1f ms  p95 %7.1f ms  server CPU %6.1f ms/query" % (r["label"], p50, p95, cpu))
        for r in rows[:-1]:
            print("  ratio Orthanc/%s: p50 %.2fx, p95 %.2fx"
                  % (r["label"], orth["findscu"][0] / r["findscu"][0], orth["findscu"][1] / r["findscu"][1]))
    if do_ret:
        gb = big_bytes / float(1 << 30)
        figures = [("move", "C-MOVE to storescp")] + ([("get", "C-GET by getscu")] if do_get else [])
        for key, what in figures:
            print("%s of a %d-instance study (%.2f GB):" % (what, a.move, gb))
            for r in rows:
                ips, rss, cpu = r[key]
                print("  %-9s %7.1f instances/s, RSS growth %6.1f MB (%5.1f MB per GB), server CPU %5.2f ms/instance"
                      % (r["label"], ips, rss, rss / gb, cpu))
            for r in rows[:-1]:
                print("  ratio %s/Orthanc: %.2fx (throughput), CPU per instance %.2fx less"
                      % (r["label"], r[key][0] / orth[key][0], orth[key][2] / max(r[key][2], 1e-6)))
        if pars:
            okey = "fork%d" % pars[0]
            print("C-MOVE to storescp --fork of a %d-instance study (%.2f GB); Orthanc: one association per"
                  " C-MOVE, ours: ParallelAssociations N:" % (a.move, gb))
            ips, rss, cpu = orth[okey]
            print("  %-9s %7.1f instances/s, RSS growth %6.1f MB, server CPU %5.2f ms/instance"
                  % (orth["label"], ips, rss, cpu))
            for r in rows[:-1]:
                for n in pars:
                    ips, rss, cpu = r["fork%d" % n]
                    print("  %-9s N=%d %7.1f instances/s, RSS growth %6.1f MB, server CPU %5.2f ms/instance,"
                          " ratio %.2fx Orthanc" % (r["label"], n, ips, rss, cpu, ips / orth[okey][0]))


if __name__ == "__main__":
    main()
