#!/usr/bin/env bash
# storescu -R plus the -x option that proposes the file's own transfer syntax first (so
# compressed, big endian, implicit and deflated files go as they are) of every file in pydicom's
# test_files, one association each: whatever storescu sends
# must be stored with the dataset bytes storescu put on the wire (captured by storescp -B as an
# oracle, same transfer syntax) and the ID a REST upload of the same file gives. Files storescu
# refuses to send (no meta, unknown SOP class, unreadable) are listed, not failures.
source "$(dirname "$0")/lib.sh"
ORACLE_PORT=$(free_port); mkdir -p "$T/oracle"
storescp -B +xa -uf -od "$T/oracle" "$ORACLE_PORT" >"$T/oracle.log" 2>&1 &
ORACLE_PID=$!
trap 'rc=$?; set +e; kill $ORACLE_PID 2>/dev/null; wait $ORACLE_PID 2>/dev/null; (exit $rc); on_exit' EXIT
start_server
$PY - "$PYDICOM_FILES" "$T/oracle" "$ORACLE_PORT" "$DICOM_PORT" "$URL" "$MP_SRC/tests/tools" <<'PY'
import glob, json, os, subprocess, sys, urllib.request
files, oracle, oport, port, url, tools = sys.argv[1:7]
sys.path.insert(0, tools)
import dicom_raw
def req(method, path, body=None):
    r = urllib.request.Request(url + path, data=body, method=method)
    try:
        with urllib.request.urlopen(r) as f:
            return f.status, f.read()
    except urllib.error.HTTPError as e:
        return e.code, e.read()
import pydicom
PROPOSE = {"1.2.840.10008.1.2.4.50": "-xy", "1.2.840.10008.1.2.4.51": "-xx", "1.2.840.10008.1.2.4.70": "-xs",
           "1.2.840.10008.1.2.4.90": "-xv", "1.2.840.10008.1.2.4.91": "-xw", "1.2.840.10008.1.2.4.80": "-xt",
           "1.2.840.10008.1.2.4.81": "-xu", "1.2.840.10008.1.2.5": "-xr", "1.2.840.10008.1.2.1.99": "-xd",
           "1.2.840.10008.1.2.2": "-xb", "1.2.840.10008.1.2": "-xi", "1.2.840.10008.1.2.1": "-xe"}
def file_ts(f):
    try:
        return str(pydicom.dcmread(f, stop_before_pixels=True).file_meta.TransferSyntaxUID)
    except Exception:
        return ""
def send(p, f):
    opt = PROPOSE.get(file_ts(f), "-x=")
    return subprocess.run(["storescu", "-R", opt, "-aec", "X", "127.0.0.1", p, f], capture_output=True, text=True)
same_ts = 0
sent = skipped = 0
for f in sorted(glob.glob(os.path.join(files, "*"))):
    if not os.path.isfile(f):
        continue
    name = os.path.basename(f)
    for o in os.listdir(oracle):
        os.unlink(os.path.join(oracle, o))
    r1 = send(oport, f)
    got = os.listdir(oracle)
    if not got:
        skipped += 1
        print("skip %-40s storescu: %s" % (name, (r1.stderr.strip().splitlines() or ["?"])[-1][:90]))
        continue
    before = set(json.loads(req("GET", "/instances")[1]))
    r2 = send(port, f)
    after = set(json.loads(req("GET", "/instances")[1]))
    new = after - before
    assert r2.returncode == 0 and len(new) == 1, "%s: not stored (%s) %s" % (name, new, r2.stderr)
    iid = new.pop()
    st, body = req("GET", "/instances/%s/file" % iid)
    assert st == 200, name
    open(os.path.join(oracle, "..", "back.dcm"), "wb").write(body)
    ours = dicom_raw.dataset_bytes(os.path.join(oracle, "..", "back.dcm"))
    wire = dicom_raw.dataset_bytes(os.path.join(oracle, got[0]))
    assert ours == wire, "%s: stored dataset differs from what storescu sent (%d vs %d bytes)" % (name, len(ours), len(wire))
    # the stored meta carries the wire transfer syntax; REST upload of the file gives the same ID
    ts_ours = pydicom.dcmread(os.path.join(oracle, "..", "back.dcm"), stop_before_pixels=True).file_meta.TransferSyntaxUID
    ts_wire = pydicom.dcmread(os.path.join(oracle, got[0]), stop_before_pixels=True).file_meta.TransferSyntaxUID
    assert ts_ours == ts_wire, "%s: transfer syntax %s vs %s" % (name, ts_ours, ts_wire)
    same_ts += ts_ours == file_ts(f)
    st, body = req("POST", "/instances", open(f, "rb").read())
    if st == 200:
        j = json.loads(body)
        assert j["ID"] == iid and j["Status"] == "AlreadyStored", "%s: REST gives %s" % (name, j)
    else:
        print("note %-40s REST refuses the file itself (HTTP %d)" % (name, st))
    assert req("DELETE", "/instances/" + iid)[0] == 200
    sent += 1
print("sent and checked %d files (%d stored in the file's own transfer syntax), %d not sendable by storescu" % (sent, same_ts, skipped))
assert sent >= 40, sent
PY
grep -E " E | W .*dicom" "$T/server.log" && fail "errors or warnings in the log" || true
pass "pydicom test files over C-STORE"
