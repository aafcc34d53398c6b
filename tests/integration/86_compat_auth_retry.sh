#!/usr/bin/env bash
# Credentials after a 401 (deferred authentication): clients such as httplib2, browsers, .NET
# or Java send a request without credentials first and repeat it with Basic auth after the
# 401. The refused request's body is read and dropped (never parsed nor stored), the answer is
# a clean 401, and the connection stays usable for the retry. A body announced above the
# limit is still refused at once.
source "$(dirname "$0")/lib.sh"
write_config '"AuthenticationEnabled": true, "RegisteredUsers": {"alice": "s3cret"}, "MaximumUploadSize": 8'
"$MINIPACS_BIN" "$T/Orthanc.json" >>"$T/server.log" 2>&1 &
SERVER_PID=$!
for _ in $(seq 1 200); do
  [ "$(curl -s -o /dev/null -w '%{http_code}' -u alice:s3cret "$URL/system" || true)" = 200 ] && break
  kill -0 "$SERVER_PID" 2>/dev/null || fail "server exited at start"
  sleep 0.05
done
$PY "$MP_SRC/tests/tools/gen_study.py" "$T/in" 1 --size 1280 >/dev/null
F=$(ls "$T"/in/*.dcm | head -1)
size=$(stat -c %s "$F")
[ "$size" -gt 3000000 ] || fail "test file only $size bytes"

# 1. httplib2: first try without credentials, 401, retry with them, on its kept connection
$PY - "$URL" "$F" <<'PY' || fail "httplib2 upload"
import httplib2, json, sys
url, path = sys.argv[1], sys.argv[2]
body = open(path, "rb").read()
h = httplib2.Http(timeout=60)
h.add_credentials("alice", "s3cret")
r, content = h.request(url + "/instances", "POST", body=body, headers={"Content-Type": "application/dicom"})
assert r.status == 200, (r.status, content[:300])
assert json.loads(content)["Status"] == "Success", content
# httplib2 sent the first try without credentials: its retry went through after our 401
r2, c2 = h.request(url + "/statistics", "GET")
assert r2.status == 200 and json.loads(c2)["CountInstances"] == 1, c2
print("uploaded", len(body), "bytes")
PY
grep -q 'POST /instances from 127.0.0.1: no credentials' "$T/server.log" || fail "no refused first try in the log"
pass "httplib2 uploads $size bytes after a 401"

# 2. raw socket: a refused request's body is never parsed as a next request; the same
#    connection then serves a request with credentials
$PY - "$HTTP_PORT" <<'PY' || fail "raw socket"
import base64, socket, sys
port = int(sys.argv[1])
s = socket.create_connection(("127.0.0.1", port), timeout=20)
smuggled = b"DELETE /instances HTTP/1.1\r\nHost: x\r\nContent-Length: 0\r\n\r\n" * 3
body = smuggled + b"x" * (3 * 1024 * 1024)
s.sendall(b"POST /instances HTTP/1.1\r\nHost: x\r\nContent-Type: application/dicom\r\n"
          b"Content-Length: %d\r\n\r\n" % len(body) + body)
def read_response(s):
    data = b""
    while b"\r\n\r\n" not in data:
        c = s.recv(65536)
        if not c: raise SystemExit("connection closed: %r" % data[:200])
        data += c
    head, rest = data.split(b"\r\n\r\n", 1)
    n = 0
    for line in head.split(b"\r\n")[1:]:
        k, v = line.split(b":", 1)
        if k.strip().lower() == b"content-length": n = int(v)
    while len(rest) < n:
        c = s.recv(65536)
        if not c: raise SystemExit("closed in body")
        rest += c
    return head, rest[:n], rest[n:]
head, body1, extra = read_response(s)
assert head.startswith(b"HTTP/1.1 401"), head
assert b"WWW-Authenticate: Basic" in head, head
assert not extra, extra
auth = base64.b64encode(b"alice:s3cret")
s.sendall(b"GET /statistics HTTP/1.1\r\nHost: x\r\nAuthorization: Basic " + auth + b"\r\n\r\n")
head, body2, extra = read_response(s)
assert head.startswith(b"HTTP/1.1 200"), head   # the next answer is this request's, not a 405/404
assert b"CountInstances" in body2, body2
s.settimeout(1)
try:
    more = s.recv(100)
except socket.timeout:
    more = b""
assert not more, more                            # nothing answered for the smuggled lines
s.close()
PY
n=$(curl -sf -u alice:s3cret "$URL/statistics" | json 'j["CountInstances"]')
[ "$n" = 1 ] || fail "the refused body was acted upon: $n instances"
grep -q 'DELETE /instances' "$T/server.log" && fail "a smuggled request reached the router"
pass "a refused body is dropped, never parsed as a request; the connection serves the retry"

# 3. a body announced above the limit is refused at once (the connection closes)
code=$(curl -s -o /dev/null -w '%{http_code}' -X POST "$URL/instances" -H 'Content-Length: 999999999' --data-binary @"$F" -m 10) || true
[ "$code" = 401 ] || fail "oversized refused body -> $code"
# Expect: 100-continue without credentials: 401 at once, no body sent
code=$(curl -s -o /dev/null -w '%{http_code}' -H 'Expect: 100-continue' -X POST "$URL/instances" --data-binary @"$F" -m 10)
[ "$code" = 401 ] || fail "Expect 100-continue -> $code"
pass "86_compat_auth_retry"
