#!/usr/bin/python3
"""qr.py -- query/retrieve side by side with Debian's Orthanc 1.10.1 (issue 13).

C-FIND: STUDIES one-instance studies (tiny images, distinct patients), STUDY level,
PatientName wildcard, REPEAT findscu runs: latency p50/p95 (findscu's own start-up included
for both servers). C-MOVE and C-GET: one MOVE_N-instance CT study (512x512, ~0.5 MB each) to
storescp / getscu: instances/s and the server's RSS growth (VmHWM after - VmRSS before).

usage: bench/qr.py [--studies 10000] [--repeat 50] [--move 2000]
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


def cfind(server, repeat):
    lat = []
    c0 = cpu_s(server.proc.pid)
    for i in range(repeat):
        t0 = time.perf_counter()
        r = subprocess.run(["findscu", "-S", "-aec", "ORTHANC", "-k", "QueryRetrieveLevel=STUDY",
                            "-k", "PatientName=PAT00%d*" % (i % 10), "-k", "StudyInstanceUID",
                            "-k", "StudyDate", "127.0.0.1", str(server.dicom_port)],
                           capture_output=True, text=True)
        lat.append((time.perf_counter() - t0) * 1000)
        if r.returncode != 0:
            raise RuntimeError("findscu failed: " + r.stderr[-300:])
    lat.sort()
    cpu_ms = (cpu_s(server.proc.pid) - c0) * 1000 / repeat
    return statistics.median(lat), lat[int(len(lat) * 0.95) - 1], cpu_ms


def retrieve(server, files, kind, port):
    """C-MOVE to storescp on port (kind "move") or C-GET by getscu: (instances/s, RSS growth MB)."""
    out = tempfile.mkdtemp(prefix="qr-recv-", dir=bl.WORK)
    scp = None
    env = dict(os.environ, TCP_NODELAY="1")
    if kind == "move":
        scp = subprocess.Popen(["storescp", "-B", "-aet", "DEST", "-od", out, str(port)], env=env,
                               stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        time.sleep(0.5)
    import pydicom
    study = pydicom.dcmread(files[0], stop_before_pixels=True).StudyInstanceUID
    rss0 = server.rss_kb()
    c0 = cpu_s(server.proc.pid)
    t0 = time.perf_counter()
    if kind == "move":
        cmd = ["movescu", "-S", "-aet", "MOVER", "-aec", "ORTHANC", "-aem", "DEST"]
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
        scp.terminate()
        scp.wait()
    shutil.rmtree(out, ignore_errors=True)
    if got != len(files):
        raise RuntimeError("%s received %d of %d" % (kind, got, len(files)))
    return len(files) / dt, max(0, hwm - rss0) / 1024.0, cpu_ms


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--studies", type=int, default=10000)
    ap.add_argument("--repeat", type=int, default=50)
    ap.add_argument("--move", type=int, default=2000)
    a = ap.parse_args()
    small = gen_small_studies(a.studies)
    big = bl.gen_study("qr-move-%d" % a.move, a.move, series=4)
    dest_port = bl.free_port()
    mods = {"DicomModalities": {"dest": ["DEST", "127.0.0.1", dest_port], "mover": ["MOVER", "127.0.0.1", 1],
                                "getter": ["GETTER", "127.0.0.1", 1]},
            "DicomAlwaysAllowFind": True, "DicomAlwaysAllowMove": True, "DicomAlwaysAllowGet": True}
    rows = []
    for kind in ("minipacs", "orthanc"):
        s = bl.Server(kind, extra=mods)
        try:
            bl.upload_all(s, small, 4)
            bl.upload_all(s, big, 4)
            p50, p95, fcpu = cfind(s, a.repeat)
            mv = retrieve(s, big, "move", dest_port)
            gt = retrieve(s, big, "get", dest_port)
            rows.append((kind, p50, p95, mv, gt, fcpu))
        finally:
            s.stop()
    print("C-FIND STUDY level, PatientName wildcard, %d studies, %d runs (findscu start-up included)"
          % (a.studies, a.repeat))
    for kind, p50, p95, _, _, fcpu in rows:
        print("  %-9s p50 %7.1f ms  p95 %7.1f ms  server CPU %6.1f ms/query" % (kind, p50, p95, fcpu))
    print("  ratio Orthanc/minipacs: p50 %.2fx, p95 %.2fx" % (rows[1][1] / rows[0][1], rows[1][2] / rows[0][2]))
    for i, what in ((3, "C-MOVE to storescp"), (4, "C-GET by getscu")):
        print("%s of a %d-instance study:" % (what, a.move))
        for r in rows:
            print("  %-9s %7.1f instances/s, RSS growth %6.1f MB, server CPU %5.2f ms/instance"
                  % (r[0], r[i][0], r[i][1], r[i][2]))
        print("  ratio minipacs/Orthanc: %.2fx (throughput), CPU per instance %.2fx less"
              % (rows[0][i][0] / rows[1][i][0], rows[1][i][2] / max(rows[0][i][2], 1e-6)))


if __name__ == "__main__":
    main()
