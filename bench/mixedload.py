"""mixedload.py -- the mixed load shared by bench/soak.py and bench/crash_loop.py, and the
store audit run after each crash.

Load (threads, all against one server): 8 REST uploaders, 8 storescu workers (batches of 5
files, one association each), a deleter (a random patient every 0.5 s), an anonymizer (an
asynchronous /studies/{id}/anonymize every 2 s). Files come from a pool of generated patients
(small 64x64 CT instances), so deletes and re-uploads keep the store bounded.
Each worker counts outcomes; `errors` lists the unexpected ones."""
import json
import os
import random
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.request

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
PY = "/usr/bin/python3"


def gen_pool(d, patients=30, per=8):
    if os.path.isdir(d) and len(os.listdir(d)) >= patients:
        return sorted(os.path.join(d, p, f) for p in os.listdir(d) for f in os.listdir(os.path.join(d, p)))
    for p in range(patients):
        subprocess.run([PY, os.path.join(ROOT, "tests", "tools", "gen_study.py"), os.path.join(d, "p%02d" % p),
                        str(per), "--patient", "MIX%02d" % p, "--seed", str(100 + p), "--size", "64",
                        "--series", "2"], check=True, stdout=subprocess.DEVNULL)
    return gen_pool(d, patients, per)


def req(url, method="GET", data=None, timeout=30):
    r = urllib.request.Request(url, data=data, method=method)
    try:
        with urllib.request.urlopen(r, timeout=timeout) as resp:
            return resp.status, resp.read()
    except urllib.error.HTTPError as e:
        return e.code, e.read()


class Load:
    def __init__(self, url, dicom_port, files, storescu=True, anonymize=True):
        self.url, self.port, self.files = url, dicom_port, files
        self.stop = threading.Event()
        self.lock = threading.Lock()
        self.counts = {}
        self.errors = []
        self.threads = []
        self.storescu, self.anonymize = storescu, anonymize

    def count(self, key, ok=True, detail=""):
        with self.lock:
            self.counts[key] = self.counts.get(key, 0) + 1
            if not ok and len(self.errors) < 50:
                self.errors.append("%s %s" % (key, detail))

    def uploader(self):
        rnd = random.Random()
        while not self.stop.is_set():
            f = rnd.choice(self.files)
            try:
                st, body = req(self.url + "/instances", "POST", open(f, "rb").read())
                self.count("upload %d" % st, st == 200, body[:200])
            except Exception as e:  # connection refused/reset while the server is killed
                self.count("upload exc", False, repr(e))
                time.sleep(0.05)

    def cstore(self):
        rnd = random.Random()
        while not self.stop.is_set():
            batch = rnd.sample(self.files, 5)
            r = subprocess.run(["storescu", "-aec", "ORTHANC", "127.0.0.1", str(self.port)] + batch,
                               stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
            self.count("storescu rc=%d" % r.returncode, r.returncode == 0, r.stderr[-200:])

    def deleter(self):
        rnd = random.Random()
        while not self.stop.wait(0.5):
            try:
                st, body = req(self.url + "/patients")
                ids = json.loads(body) if st == 200 else []
                if len(ids) > 5:
                    st, body = req(self.url + "/patients/" + rnd.choice(ids), "DELETE")
                    self.count("delete %d" % st, st in (200, 404), body[:200])
            except Exception as e:
                self.count("delete exc", False, repr(e))

    def anonymizer(self):
        rnd = random.Random()
        while not self.stop.wait(2.0):
            try:
                st, body = req(self.url + "/studies")
                ids = json.loads(body) if st == 200 else []
                if ids:
                    st, body = req(self.url + "/studies/" + rnd.choice(ids) + "/anonymize", "POST",
                                   b'{"Asynchronous": true}')
                    self.count("anonymize %d" % st, st in (200, 404), body[:200])
            except Exception as e:
                self.count("anonymize exc", False, repr(e))

    def start(self):
        fns = [self.uploader] * 8 + [self.deleter]
        if self.storescu:
            fns += [self.cstore] * 8
        if self.anonymize:
            fns.append(self.anonymizer)
        for fn in fns:
            t = threading.Thread(target=fn, daemon=True)
            t.start()
            self.threads.append(t)

    def finish(self):
        self.stop.set()
        for t in self.threads:
            t.join(60)


def audit(url, storage_dir):
    """The store after a restart: index and files agree exactly, every file parses, statistics
    match a recount. Returns a list of problems (empty when consistent) and the counts."""
    import pydicom
    problems = []
    st, body = req(url + "/instances?expand")
    insts = json.loads(body)
    uuids = {}
    for i in insts:
        uuids[i["FileUuid"]] = i
    on_disk = {}
    tmps = []
    for dp, _, fs in os.walk(storage_dir):
        for f in fs:
            if f.startswith("index.sqlite"):
                continue
            if f.endswith(".tmp"):
                tmps.append(f)
                continue
            on_disk[f] = os.path.getsize(os.path.join(dp, f))
    if tmps:
        problems.append("%d temp files" % len(tmps))
    missing = set(uuids) - set(on_disk)
    orphans = set(on_disk) - set(uuids)
    if missing:
        problems.append("%d rows without file" % len(missing))
    if orphans:
        problems.append("%d orphan files" % len(orphans))
    for u, i in uuids.items():
        if u in on_disk:
            if on_disk[u] != i["FileSize"]:
                problems.append("size mismatch " + u)
            p = os.path.join(storage_dir, u[0:2], u[2:4], u)
            try:
                pydicom.dcmread(p, stop_before_pixels=True)
            except Exception as e:
                problems.append("unparseable %s: %r" % (u, e))
    st, body = req(url + "/statistics")
    s = json.loads(body)
    counts = {}
    for lvl in ("patients", "studies", "series"):
        counts[lvl] = len(json.loads(req(url + "/" + lvl)[1]))
    counts["instances"] = len(insts)
    expect = {"CountPatients": counts["patients"], "CountStudies": counts["studies"],
              "CountSeries": counts["series"], "CountInstances": counts["instances"],
              "TotalDiskSize": str(sum(on_disk[u] for u in uuids if u in on_disk))}
    for k, v in expect.items():
        if s[k] != v:
            problems.append("/statistics %s = %s, recount %s" % (k, s[k], v))
    return problems, counts
