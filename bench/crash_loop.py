#!/usr/bin/python3
"""crash_loop.py [ROUNDS=20] [--quick] -- kill -9 at random points of the mixed load of
mixedload.py (8 REST uploaders, 8 storescu, deletes, anonymization jobs), ROUNDS times in a
row on the same store. After each restart, once the jobs resumed at start-up are finished:
every ACKNOWLEDGED upload so far (REST 200, C-STORE success; all rounds) that no patient
delete can have removed is present and readable (its file parses and is that instance); the
index and the files agree exactly (no row without its file, no orphan, no temp file, sizes
equal), every stored file parses (pydicom), and /statistics matches a recount of the lists.
Prints one line per round; exit 1 on the first inconsistency. --quick: plain REST uploads and
deletes only.
MINIPACS_BIN picks the binary."""
import json
import os
import random
import subprocess
import sys
import tempfile
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import mixedload as ml  # noqa: E402

args = [a for a in sys.argv[1:] if not a.startswith("--")]
quick = "--quick" in sys.argv
rounds = int(args[0]) if args else 20
binary = os.environ.get("MINIPACS_BIN", os.path.join(ml.ROOT, "build", "minipacs"))
work = tempfile.mkdtemp(prefix="mp-crash.")
files = ml.gen_pool(os.path.join(work, "pool"), patients=12 if quick else 30)


def free_port():
    import socket
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    p = s.getsockname()[1]
    s.close()
    return p


hp, dp = free_port(), free_port()
cfg = os.path.join(work, "Orthanc.json")
json.dump({"StorageDirectory": work + "/db", "IndexDirectory": work + "/db", "HttpPort": hp,
           "DicomPort": dp, "SyncStorageArea": True, "LogLevel": "warning"}, open(cfg, "w"))
url = "http://127.0.0.1:%d" % hp
log = open(os.path.join(work, "server.log"), "a")


def start():
    p = subprocess.Popen([binary, cfg], stdout=log, stderr=log)
    for _ in range(400):
        try:
            if ml.req(url + "/system", timeout=2)[0] == 200:
                return p
        except Exception:
            pass
        if p.poll() is not None:
            sys.exit("server exited at start (log %s/server.log)" % work)
        time.sleep(0.05)
    sys.exit("server did not answer")


rnd = random.Random(int(os.environ.get("SEED", "1")))
acks, deletes = [], []
for r in range(1, rounds + 1):
    srv = start()
    load = ml.Load(url, dp, files, storescu=not quick, anonymize=not quick)
    load.start()
    t = rnd.uniform(0.5, 3.0)
    time.sleep(t)
    srv.kill()  # SIGKILL
    srv.wait()
    load.finish()
    acks += load.acks
    deletes += load.deletes
    srv = start()
    waited = ml.wait_jobs(url)
    problems = [] if waited is not None else ["jobs still running 300 s after the restart"]
    lost, checked = ml.audit_acks(url, acks, deletes)
    problems += lost
    more, counts = ml.audit(url, work + "/db")
    problems += more
    counts["acked"] = checked
    srv.terminate()
    srv.wait(30)
    print("round %2d: killed after %.2f s; jobs done after %.1f s; %s; %s" % (
        r, t, waited or -1, " ".join("%s=%d" % kv for kv in counts.items()),
        "consistent" if not problems else "PROBLEMS: " + "; ".join(problems[:5])), flush=True)
    if problems:
        sys.exit("inconsistent store after round %d (kept in %s)" % (r, work))
print("PASS: %d kill -9 rounds, every acknowledged upload present and readable and the store "
      "consistent after each" % rounds)
subprocess.run(["rm", "-rf", work])
