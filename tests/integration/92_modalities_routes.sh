#!/usr/bin/env bash
# /modalities side by side with Debian's Orthanc 1.10.1, started here with the same
# DicomModalities (array and object forms): every request below goes to both servers and the
# status, the body and its key order must be the same (Details too, except where the text is a
# network library's). Covers GET /modalities (?expand with any value), GET /modalities/{name}
# (its operations; unknown: a bare 404), /configuration, PUT with both forms and bad bodies
# (Orthanc's parser: port 1..65534, manufacturer names, Timeout, flags, unknown keys ignored),
# DELETE (a configured one too), echo (reachable storescp, closed port, Timeout, CheckFind and
# DicomEchoChecksFind, bad bodies, UseDicomTls), /tools/dicom-echo, store/query/move bodies
# checked before the modality, unknown names on every route, and what a restart keeps with
# DicomModalitiesInDatabase true (the PUT ones, DicomModalities ignored, as Orthanc) and false:
# there Orthanc forgets PUT/DELETE, we keep the PUT ones (issue #13: REST-added modalities are
# persisted) and bring the file's back. Then ours only: "ParallelAssociations" (not Orthanc's).
source "$(dirname "$0")/lib.sh"
SCP_PORT=$(free_port); O_HTTP=$(free_port); O_DICOM=$(free_port); DEAD_PORT=$(free_port)
MODS="\"arr\": [\"ARRAET\", \"127.0.0.1\", $SCP_PORT], \"arr4\": [\"ARR4\", \"localhost\", \"104\", \"GE\"],
  \"obj\": {\"AET\": \"OBJAET\", \"Host\": \"127.0.0.1\", \"Port\": $SCP_PORT, \"Manufacturer\": \"Generic\",
            \"AllowEcho\": true, \"AllowFind\": false, \"AllowMove\": true, \"AllowGet\": false,
            \"AllowStore\": true, \"AllowStorageCommitment\": false, \"AllowTranscoding\": false,
            \"UseDicomTls\": false, \"LocalAet\": \"LOCALX\", \"Timeout\": 7},
  \"objmin\": {\"AET\": \"MIN\", \"Host\": \"10.0.0.9\", \"Port\": 4242}"
# configure IN_DB [extra members]: the same modalities and options for both servers
configure() {
  local opts="\"DicomModalities\": { $MODS }, \"DicomScuTimeout\": 5, \"DicomModalitiesInDatabase\": $1${2:+, $2}"
  write_config "$opts"
  mkdir -p "$T/o"
  cat > "$T/o/cfg.json" <<JSON
{ "Name": "o", "StorageDirectory": "$T/o/db", "IndexDirectory": "$T/o/db", "HttpPort": $O_HTTP,
  "DicomPort": $O_DICOM, "DicomAet": "ORTHANC", "Plugins": [], "RemoteAccessAllowed": true,
  "AuthenticationEnabled": false, "SyncStorageArea": false, $opts }
JSON
}
O_PID=""
# start_both: Orthanc spawned first, ours started (and waited for) meanwhile, then Orthanc waited for
start_both() {
  TCP_NODELAY=1 /usr/sbin/Orthanc "$T/o/cfg.json" >>"$T/o/orthanc.log" 2>&1 &
  O_PID=$!
  start_server
  for _ in $(seq 1 200); do curl -sf "http://127.0.0.1:$O_HTTP/system" >/dev/null && return 0; sleep 0.05; done
  fail "Orthanc did not start"
}
# stop_orthanc [signal]: Orthanc takes ~2.5 s to stop on SIGTERM; its index is SQLite, written
# at each PUT/DELETE, so the restarts here use SIGKILL to keep the scenario short
stop_orthanc() {
  [ -n "$O_PID" ] || return 0
  kill "-${1:-TERM}" "$O_PID" 2>/dev/null || true; wait "$O_PID" 2>/dev/null || true; O_PID=""
}
restart_both() { stop_orthanc KILL; stop_server; start_both; }
storescp "$SCP_PORT" >"$T/storescp.log" 2>&1 &
SCP_PID=$!
cleanup_hook() { kill $SCP_PID 2>/dev/null; stop_orthanc; [ "${rc:-0}" = 0 ] || tail -n 5 "$T/o/orthanc.log" >&2; }

# compare PHASE: the phase's requests (in cmp.py) on both servers, first difference fails
cat > "$T/cmp.py" <<'PY'
import json, sys, urllib.request
phase, ours, theirs, scp, dead = sys.argv[1], sys.argv[2], sys.argv[3], int(sys.argv[4]), int(sys.argv[5])
R = []
def r(m, p, b=None, details=True):
    R.append((m, p, b if b is None or isinstance(b, str) else json.dumps(b), details))
ID = "c4ec7f68-9b162055-2c8c4f9b-3ef2c5a3-3d7f1c85"
if phase == "false":
    for q in ["", "?expand", "?expand=false", "?expand=0"]: r("GET", "/modalities" + q)
    for n in ["arr", "arr4", "obj", "objmin", "nope"]:
        r("GET", "/modalities/" + n); r("GET", "/modalities/" + n + "/configuration")
    r("PUT", "/modalities/zz", ["ZZ", "127.0.0.1", scp])
    r("PUT", "/modalities/p2", ["P2", "h", str(scp), "GE"])
    r("PUT", "/modalities/p3", {"AET": "P3", "Host": "h3", "Port": 11112, "Manufacturer": "AgfaImpax",
        "AllowEcho": False, "AllowFindWorklist": False, "AllowNAction": False, "AllowEventReport": True,
        "AllowTranscoding": False, "LocalAet": "LAET", "Timeout": 3, "Unknown": [1]})
    r("PUT", "/modalities/p4", {"AET": "", "Host": "", "Port": "+12", "AllowNAction": False,
        "AllowStorageCommitment": True})
    r("PUT", "/modalities/tls", {"AET": "T", "Host": "127.0.0.1", "Port": scp, "UseDicomTls": True})
    for n in ["zz", "p2", "p3", "p4", "tls"]: r("GET", "/modalities/%s/configuration" % n)
    for b in [{"Host": "h", "Port": 1}, {"AET": "X", "Port": 1}, {"AET": "X", "Host": "h"},
              {"AET": 1, "Host": "h", "Port": 1}, {"AET": "X", "Host": "h", "Port": 0},
              {"AET": "X", "Host": "h", "Port": 65535}, {"AET": "X", "Host": "h", "Port": -1},
              {"AET": "X", "Host": "h", "Port": "abc"}, {"AET": "X", "Host": "h", "Port": " 12"},
              {"AET": "X", "Host": "h", "Port": 104.5}, {"AET": "X", "Host": "h", "Port": True},
              {"AET": "X", "Host": "h", "Port": 1, "AllowEcho": "yes"},
              {"AET": "X", "Host": "h", "Port": 1, "AllowStorageCommitment": 1},
              {"AET": "X", "Host": "h", "Port": 1, "UseDicomTls": "no"},
              {"AET": "X", "Host": "h", "Port": 1, "Manufacturer": "ge"},
              {"AET": "X", "Host": "h", "Port": 1, "Manufacturer": 3},
              {"AET": "X", "Host": "h", "Port": 1, "Timeout": -1},
              {"AET": "X", "Host": "h", "Port": 1, "Timeout": "5"},
              {"AET": "X", "Host": "h", "Port": 1, "Timeout": 2.5},
              {"AET": "X", "Host": "h", "Port": 1, "LocalAet": 5},
              ["X", "h"], ["X", "h", 1, "GE", "x"], ["X", "h", 1, 5], [1, "h", 1], ["X", "h", True],
              ["X", "h", "99999999999"], [], {}, "\"str\"", "12", "not json", ""]:
        r("PUT", "/modalities/bad", b)
    r("GET", "/modalities?expand")
    r("DELETE", "/modalities/zz"); r("DELETE", "/modalities/zz"); r("DELETE", "/modalities/arr")
    r("GET", "/modalities")
    r("POST", "/modalities/obj/echo", ""); r("POST", "/modalities/obj/echo", {"Timeout": 1})
    r("POST", "/modalities/obj/echo", [1]); r("POST", "/modalities/obj/echo", {"CheckFind": True})
    r("POST", "/modalities/obj/echo", {"CheckFind": False})
    for b in ["not json", {"Timeout": "x"}, {"Timeout": -2}, {"CheckFind": "x"}]:
        r("POST", "/modalities/obj/echo", b)
    r("POST", "/modalities/tls/echo", "", details=False)
    r("PUT", "/modalities/dead", ["DEAD", "127.0.0.1", dead])
    r("POST", "/modalities/dead/echo", "", details=False)
    for b in ["", "not json", {"CheckFind": "x"}]: r("POST", "/modalities/arr/echo", b)
    r("POST", "/tools/dicom-echo", {"AET": "ANY", "Host": "127.0.0.1", "Port": scp})
    r("POST", "/tools/dicom-echo", ["ANY", "127.0.0.1", scp])
    r("POST", "/tools/dicom-echo", {"AET": "ANY", "Host": "127.0.0.1", "Port": scp, "CheckFind": True})
    r("POST", "/tools/dicom-echo", {"AET": "ANY", "Host": "127.0.0.1", "Port": scp, "Timeout": 1})
    r("POST", "/tools/dicom-echo", {"AET": "ANY", "Host": "127.0.0.1", "Port": dead}, details=False)
    for b in [{"AET": "ANY"}, "\"obj\"", "nojson", ""]: r("POST", "/tools/dicom-echo", b)
    for n in ["nope", "obj"]:
        for b in [{}, "\"abc\"", "not json", "12", {"Resources": "x"}, {"Resources": [1]}]:
            r("POST", "/modalities/%s/store" % n, b)
        for b in [[ID], ID]:  # unknown resource: our Details says which (Orthanc has none)
            r("POST", "/modalities/%s/store" % n, b, details=False)
        for b in [{}, "not json", {"Level": "Bad"}]: r("POST", "/modalities/%s/query" % n, b)
        for b in [{}, "not json", {"Level": "Bad", "Resources": []}]: r("POST", "/modalities/%s/move" % n, b)
    r("POST", "/modalities/nope/store", []); r("POST", "/modalities/nope/query", {"Level": "Study"})
    r("POST", "/modalities/nope/move", {"Level": "Study", "Resources": []})
    r("PUT", "/modalities/obj/configuration", "{}"); r("POST", "/modalities/obj", "{}")
elif phase == "false-restarted":  # the configured ones as Orthanc (a DELETE forgotten); zz deleted
    for n in ["arr", "arr4", "obj", "objmin", "zz"]: r("GET", "/modalities/%s/configuration" % n)
elif phase == "true":  # DicomModalitiesInDatabase and DicomEchoChecksFind true
    r("GET", "/modalities"); r("GET", "/modalities?expand"); r("GET", "/modalities/arr/configuration")
    r("DELETE", "/modalities/arr")
    r("PUT", "/modalities/k2", {"AET": "K2", "Host": "h", "Port": 6, "AllowFind": False, "Manufacturer": "Vitrea",
        "AllowStorageCommitment": False, "LocalAet": "LL", "Timeout": 4})
    r("PUT", "/modalities/k1", ["K1", "h", 5]); r("PUT", "/modalities/arr", ["ARRNEW", "127.0.0.1", scp])
    r("GET", "/modalities")
    r("POST", "/modalities/arr/echo", ""); r("POST", "/modalities/arr/echo", {"CheckFind": False})
    r("POST", "/tools/dicom-echo", ["ANY", "127.0.0.1", scp])
elif phase == "true-restarted":
    r("GET", "/modalities?expand"); r("DELETE", "/modalities/k1")
elif phase == "true-restarted2":
    r("GET", "/modalities")

def call(base, m, p, body):
    req = urllib.request.Request(base + p, data=None if body is None else body.encode(), method=m)
    try:
        with urllib.request.urlopen(req, timeout=30) as f: return f.status, f.read()
    except urllib.error.HTTPError as e: return e.code, e.read()
def shape(st, b, details):
    try: j = json.loads(b)
    except ValueError: return st, b
    if isinstance(j, dict) and not details: j.pop("Details", None)
    return st, json.dumps(j)  # keeps the key order
bad = 0
for m, p, b, details in R:
    a = shape(*call(theirs, m, p, b), details)
    o = shape(*call(ours, m, p, b), details)
    if a != o:
        bad += 1
        print("DIFF %s %s %s\n  Orthanc: %s %s\n  ours:    %s %s" % (m, p, b, a[0], a[1][:400], o[0], o[1][:400]))
print("%s: %d requests, %d differ" % (phase, len(R), bad))
sys.exit(1 if bad else 0)
PY
compare() { $PY "$T/cmp.py" "$1" "$URL" "http://127.0.0.1:$O_HTTP" "$SCP_PORT" "$DEAD_PORT" || fail "differs from Orthanc ($1)"; }

configure false
start_both
compare false
# two answers the comparison would not show if both were wrong the same way
[ "$(http GET /modalities/obj/configuration | json 'j["AllowNAction"], j["AllowTranscoding"], j["Port"]')" = "(False, False, $SCP_PORT)" ] || fail "obj: $(cat "$T/body")"
[ "$(http POST /modalities/obj/echo -d '{"CheckFind": true}' | json 'j["OrthancStatus"], j["HttpStatus"]')" = "(2016, 500)" ] || fail "CheckFind: $(cat "$T/body")"
pass "DicomModalitiesInDatabase false: every request answered as Orthanc 1.10.1"
restart_both
compare false-restarted
# ours keeps what PUT added or replaced, with every value; Orthanc has only its file's
[ "$(curl -sf "http://127.0.0.1:$O_HTTP/modalities" | json 'sorted(j)')" = '["arr", "arr4", "obj", "objmin"]' ] || fail "Orthanc after restart"
[ "$(http GET /modalities | json 'sorted(j)')" = '["arr", "arr4", "dead", "obj", "objmin", "p2", "p3", "p4", "tls"]' ] || fail "ours after restart: $(cat "$T/body")"
[ "$(http GET /modalities/p3/configuration | json '(j["AET"], j["Host"], j["Port"], j["Manufacturer"], j["AllowEcho"], j["AllowEventReport"], j["LocalAet"], j["Timeout"])')" = \
  "('P3', 'h3', 11112, 'GenericNoWildcardInDates', False, True, 'LAET', 3)" ] || fail "p3 after restart: $(cat "$T/body")"
pass "DicomModalitiesInDatabase false: a restart keeps the PUT ones (ours; Orthanc forgets them) and brings the file's back (a DELETE of one forgotten, as Orthanc)"

stop_server; stop_orthanc KILL
# (Orthanc kept nothing of the false phase; our file of PUT ones would be the true mode's list)
[ -s "$T/db/modalities.json" ] || fail "no modalities.json after PUTs"
rm -f "$T/db/modalities.json"
configure true '"DicomEchoChecksFind": true'
start_both
compare true
restart_both
compare true-restarted
restart_both
compare true-restarted2
[ "$(http GET /modalities | json 'j')" = '["arr", "k2"]' ] || fail "true, after restarts: $(cat "$T/body")"
pass "DicomModalitiesInDatabase true: only the PUT ones, kept across restarts; DicomEchoChecksFind; as Orthanc"

# ours: ParallelAssociations (1..8) shown only when not 1, also through the one parser
http PUT /modalities/par -d '{"AET": "P", "Host": "h", "Port": 1, "ParallelAssociations": 3}' >/dev/null
[ "$(http GET /modalities/par/configuration | json 'j["ParallelAssociations"]')" = 3 ] || fail "par: $(cat "$T/body")"
http PUT /modalities/par -d '{"AET": "P", "Host": "h", "Port": 1, "ParallelAssociations": 9}' >/dev/null
[ "$(status) $(json 'j["OrthancError"]' < "$T/body")" = "400 Parameter out of range" ] || fail "par 9: $(cat "$T/body")"
pass "ParallelAssociations (ours) through the same parser"
