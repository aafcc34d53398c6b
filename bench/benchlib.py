"""benchlib.py -- shared by the benchmarks: start minipacs and Debian's Orthanc side by side on
loopback with equivalent configurations, generate studies, upload, sample memory.

Orthanc is started as the brief asks: "Plugins": [], "OrthancExplorerEnabled": false, the same
SyncStorageArea as ours, and TCP_NODELAY=1 in its environment."""
import atexit
import http.client
import json
import os
import shutil
import socket
import subprocess
import sys
import tempfile
import threading
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
WORK = os.path.join(ROOT, "bench", "work")
RESULTS = os.path.join(ROOT, "bench", "results")
MINIPACS = os.environ.get("MINIPACS_BIN", os.path.join(ROOT, "build-release", "minipacs"))
ORTHANC = shutil.which("Orthanc") or "/usr/sbin/Orthanc"
PY = "/usr/bin/python3"


def free_port():
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    p = s.getsockname()[1]
    s.close()
    return p


def build_release():
    subprocess.run([os.path.join(ROOT, "scripts", "build.sh"), "build-release",
                    "-DCMAKE_BUILD_TYPE=Release", "-DMINIPACS_TESTS=OFF"], check=True)


def gen_study(name, n, series=4, extra=()):
    """Generates (once, cached under bench/work) a study of n 512x512 16-bit CT instances."""
    d = os.path.join(WORK, name)
    if not os.path.isdir(d) or len([f for f in os.listdir(d) if f.endswith(".dcm")]) < n:
        shutil.rmtree(d, ignore_errors=True)
        subprocess.run([PY, os.path.join(ROOT, "tests", "tools", "gen_study.py"), d, str(n),
                        "--series", str(series)] + list(extra), check=True)
    return sorted(os.path.join(d, f) for f in os.listdir(d) if f.endswith(".dcm"))


# Storage folders are removed when the benchmark exits, not after each server: ext4 skips
# inodes freed in the last seconds when it allocates new ones, and thousands of them freed
# between two runs slowed the next run's file creation (seen in perf as recently_deleted()),
# penalising whichever server ran second. A new server also waits until QUIET_S seconds have
# passed since the last clean-up, which may have been another benchmark's, and flushes the
# previous run's dirty pages first so their writeback does not land on the next run.
QUIET_S = 15
_LAST_CLEANUP = os.path.join(WORK, ".last-cleanup")
_to_remove = []


def _cleanup():
    for d in _to_remove:
        shutil.rmtree(d, ignore_errors=True)
    if _to_remove:
        with open(_LAST_CLEANUP, "w") as f:
            f.write(str(time.time()))


atexit.register(_cleanup)


def _wait_quiet():
    try:
        last = float(open(_LAST_CLEANUP).read())
    except (OSError, ValueError):
        return
    left = QUIET_S - (time.time() - last)
    if left > 0:
        time.sleep(left)


class Server:
    """A server process (kind "minipacs" or "orthanc") with its own temp storage."""

    def __init__(self, kind, sync=False, extra=None, env=None, exe=None):
        os.makedirs(WORK, exist_ok=True)
        _wait_quiet()
        os.sync()  # start from clean page cache: no writeback of the previous run competing
        self.kind = kind
        self.dir = tempfile.mkdtemp(prefix="bench-%s-" % kind, dir=WORK)
        self.http_port = free_port()
        self.dicom_port = free_port()
        cfg = {
            "Name": kind,
            "StorageDirectory": os.path.join(self.dir, "db"),
            "IndexDirectory": os.path.join(self.dir, "db"),
            "HttpPort": self.http_port,
            "DicomPort": self.dicom_port,
            "DicomAet": "ORTHANC",
            "SyncStorageArea": sync,
            "RemoteAccessAllowed": False,
            "AuthenticationEnabled": False,
        }
        if kind == "orthanc":
            cfg.update({"Plugins": [], "OrthancExplorerEnabled": False})
        else:
            cfg.update({"LogLevel": "warning"})
        cfg.update(extra or {})
        self.cfg_path = os.path.join(self.dir, "config.json")
        with open(self.cfg_path, "w") as f:
            json.dump(cfg, f, indent=1)
        e = dict(os.environ)
        e["TCP_NODELAY"] = "1"
        e.update(env or {})
        self.log = open(os.path.join(self.dir, "server.log"), "w")
        exe = exe or (ORTHANC if kind == "orthanc" else MINIPACS)
        self.proc = subprocess.Popen([exe, self.cfg_path], stdout=self.log, stderr=self.log, env=e)
        deadline = time.time() + 30
        while time.time() < deadline:
            try:
                self.get("/system")
                return
            except OSError:
                time.sleep(0.1)
        raise RuntimeError("%s did not start, see %s" % (kind, self.log.name))

    def conn(self):
        return http.client.HTTPConnection("127.0.0.1", self.http_port, timeout=600)

    def request(self, method, path, body=None, headers=None):
        c = self.conn()
        c.request(method, path, body=body, headers=headers or {})
        r = c.getresponse()
        data = r.read()
        c.close()
        if r.status >= 400:
            raise RuntimeError("%s %s -> %d %s" % (method, path, r.status, data[:300]))
        return json.loads(data) if data and data[:1] in b"[{" else data

    def get(self, path):
        return self.request("GET", path)

    def post(self, path, body):
        if isinstance(body, (dict, list)):
            body = json.dumps(body).encode()
        return self.request("POST", path, body)

    def rss_kb(self):
        return read_status(self.proc.pid, "VmRSS")

    def hwm_kb(self):
        return read_status(self.proc.pid, "VmHWM")

    def stop(self):
        self.proc.terminate()
        try:
            self.proc.wait(30)
        except subprocess.TimeoutExpired:
            self.proc.kill()
        self.log.close()
        _to_remove.append(self.dir)


def read_status(pid, field):
    try:
        with open("/proc/%d/status" % pid) as f:
            for line in f:
                if line.startswith(field + ":"):
                    return int(line.split()[1])
    except OSError:
        pass
    return 0


def upload_all(server, files, clients):
    """Uploads files over REST with `clients` keep-alive connections; returns instances/s."""
    blobs = [open(f, "rb").read() for f in files]
    idx = [0]
    lock = threading.Lock()
    errors = []

    def worker():
        c = server.conn()
        while True:
            with lock:
                i = idx[0]
                idx[0] += 1
            if i >= len(blobs):
                break
            c.request("POST", "/instances", body=blobs[i],
                      headers={"Content-Type": "application/dicom"})
            r = c.getresponse()
            body = r.read()
            if r.status != 200:
                errors.append((r.status, body[:200]))
        c.close()

    t0 = time.time()
    th = [threading.Thread(target=worker) for _ in range(clients)]
    for t in th:
        t.start()
    for t in th:
        t.join()
    dt = time.time() - t0
    if errors:
        raise RuntimeError("upload errors: %r" % errors[:3])
    return len(blobs) / dt


class RssSampler(threading.Thread):
    """Samples a process's RSS every `period` seconds into a list of (t, kB)."""

    def __init__(self, pid, period=1.0):
        super().__init__(daemon=True)
        self.pid, self.period, self.samples = pid, period, []
        self.t0 = time.time()
        self._halt = threading.Event()

    def run(self):
        while not self._halt.is_set():
            self.samples.append((time.time() - self.t0, read_status(self.pid, "VmRSS")))
            self._halt.wait(self.period)

    def stop(self):
        self._halt.set()
        self.join()


def table(rows, header):
    w = [max(len(str(x)) for x in col) for col in zip(header, *rows)]
    line = lambda r: "  ".join(str(x).rjust(w[i]) for i, x in enumerate(r))
    out = [line(header), line(["-" * x for x in w])] + [line(r) for r in rows]
    return "\n".join(out)
