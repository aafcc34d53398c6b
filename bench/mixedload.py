"""mixedload.py -- the mixed load shared by bench/soak.py and bench/crash_loop.py, and the
store audit run after each crash.

Load (threads, all against one server): 8 REST uploaders, 8 storescu workers (batches of 5
files, one association each), a deleter (a random patient every 0.5 s), an anonymizer (an
asynchronous /studies/{id}/anonymize every 2 s). Files come from a pool of generated patients
(small 64x64 CT instances), so deletes and re-uploads keep the store bounded.
Each worker counts outcomes; `errors` lists the unexpected ones. Acknowledged uploads (REST 200,
C-STORE success) are recorded in `acks` as (instance ID, patient ID, start, end) and patient
deletes in `deletes` as (patient ID, start, end or None when no answer came), monotonic
times, so that audit_acks() can tell which instances must still be there after a crash."""
import hashlib
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


def orthanc_ids(path):
    """Orthanc's (instance ID, patient ID) of a file: SHA-1 of its UIDs."""
    import pydicom
    ds = pydicom.dcmread(path, stop_before_pixels=True)
    k = [str(ds.PatientID).strip(), str(ds.StudyInstanceUID).strip(),
         str(ds.SeriesInstanceUID).strip(), str(ds.SOPInstanceUID).strip()]

    def oid(s):
        h = hashlib.sha1(s.encode()).hexdigest()
        return "-".join(h[i:i + 8] for i in range(0, 40, 8))
    return oid("|".join(k)), oid(k[0])


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
        self.acks = []     # (instance ID, patient ID, start, end) of acknowledged uploads
        self.deletes = []  # (patient ID, start, end or None) of patient deletes
        self.ids = {}      # file -> (instance ID, patient ID), for C-STORE acknowledgements

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
                t0 = time.monotonic()
                st, body = req(self.url + "/instances", "POST", open(f, "rb").read())
                t1 = time.monotonic()
                self.count("upload %d" % st, st == 200, body[:200])
                if st == 200:
                    j = json.loads(body)
                    with self.lock:
                        self.acks.append((j["ID"], j["ParentPatient"], t0, t1))
            except Exception as e:  # connection refused/reset while the server is killed
                self.count("upload exc", False, repr(e))
                time.sleep(0.05)

    def cstore(self):
        rnd = random.Random()
        while not self.stop.is_set():
            batch = rnd.sample(self.files, 5)
            t0 = time.monotonic()
            r = subprocess.run(["storescu", "-v", "-aec", "ORTHANC", "127.0.0.1", str(self.port)] + batch,
                               stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
            t1 = time.monotonic()
            self.count("storescu rc=%d" % r.returncode, r.returncode == 0, r.stdout[-200:])
            # "Sending file: F" ... "Received Store Response (Success)": F is acknowledged
            sending = None
            for line in r.stdout.decode("latin1").splitlines():
                if "Sending file: " in line:
                    sending = line.split("Sending file: ", 1)[1].strip()
                elif "Received Store Response (Success)" in line and sending:
                    if sending not in self.ids:
                        self.ids[sending] = orthanc_ids(sending)
                    iid, pid = self.ids[sending]
                    with self.lock:
                        self.acks.append((iid, pid, t0, t1))
                    sending = None

    def deleter(self):
        rnd = random.Random()
        while not self.stop.wait(0.5):
            try:
                st, body = req(self.url + "/patients")
                ids = json.loads(body) if st == 200 else []
                if len(ids) > 5:
                    pid = rnd.choice(ids)
                    t0 = time.monotonic()
                    entry = [pid, t0, None]  # end stays None until an answer comes
                    with self.lock:
                        self.deletes.append(entry)
                    st, body = req(self.url + "/patients/" + pid, "DELETE")
                    entry[2] = time.monotonic()
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


def wait_jobs(url, limit=300):
    """Waits until no job is Pending or Running (jobs resumed at start-up included); returns
    the seconds waited, or None after `limit`."""
    t0 = time.time()
    while time.time() - t0 < limit:
        st, body = req(url + "/jobs?expand")
        if st == 200 and not any(j.get("State") in ("Pending", "Running") for j in json.loads(body)):
            return time.time() - t0
        time.sleep(0.2)
    return None


def audit_acks(url, acks, deletes):
    """Every acknowledged upload that no patient delete can have removed is present and
    readable: GET /instances/{id}/file answers 200 with a file that parses and carries the
    instance's own IDs. A delete of the patient counts against an acknowledgement when it may
    have run after the upload began (it ended after that, or never answered). Returns the
    problems and how many instances were checked."""
    import io
    import pydicom
    dels = {}
    for pid, s, e in deletes:
        dels.setdefault(pid, []).append(float("inf") if e is None else e)
    expected = {}
    for iid, pid, s, e in acks:
        if all(de < s for de in dels.get(pid, [])):
            expected[iid] = pid
    problems = []
    for iid, pid in expected.items():
        st, body = req(url + "/instances/" + iid + "/file")
        if st != 200:
            problems.append("acknowledged instance %s: GET file -> %d" % (iid, st))
            continue
        try:
            ds = pydicom.dcmread(io.BytesIO(body), stop_before_pixels=True)
            k = [str(ds.PatientID).strip(), str(ds.StudyInstanceUID).strip(),
                 str(ds.SeriesInstanceUID).strip(), str(ds.SOPInstanceUID).strip()]
            h = hashlib.sha1("|".join(k).encode()).hexdigest()
            if "-".join(h[i:i + 8] for i in range(0, 40, 8)) != iid:
                problems.append("acknowledged instance %s: the file holds another instance" % iid)
        except Exception as ex:
            problems.append("acknowledged instance %s: unreadable: %r" % (iid, ex))
    return problems, len(expected)


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
