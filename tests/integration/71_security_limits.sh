#!/usr/bin/env bash
# Limits and hostile requests: path traversal (raw and percent-encoded) is 404 and never serves
# a file outside the storage area; bodies over MaximumUploadSize (announced, chunked, or
# inflated from gzip) and JSON bodies over the JSON ceiling are 413 without being read;
# HttpRequestTimeout closes a stalled connection; MaximumAssociations refuses the association
# past the limit; HTTPS with SslEnabled. The server answers normally after each of them.
source "$(dirname "$0")/lib.sh"
F="$PYDICOM_FILES/CT_small.dcm"
write_config '"MaximumUploadSize": 1, "HttpRequestTimeout": 2, "MaximumAssociations": 2'
start_server
I=$(upload "$F" | json 'j["ID"]')

# ---- path traversal ----
for p in "/instances/../../etc/passwd" "/instances/$I/../../../../etc/passwd" \
         "/instances/%2e%2e/%2e%2e/etc/passwd" "/instances/..%2f..%2f..%2fetc%2fpasswd" \
         "/instances/%2E%2E%2F%2E%2E%2Fetc%2Fpasswd/file" "/instances/..%5c..%5cetc%5cpasswd/file" \
         "/instances/$I/file/../../../etc/passwd" "/instances/..%252f..%252fetc%252fpasswd/file" \
         "/%2e%2e/%2e%2e/etc/passwd" "/instances/$I%00/file" "/instances/./$I/file" \
         "/instances/../$I/../etc/passwd/file" "/../../../../../../etc/passwd"; do
  c=$(curl -s --path-as-is -o "$T/body" -w '%{http_code}' "$URL$p" || true)
  [ "$c" = 404 ] || [ "$c" = 400 ] || fail "$p -> $c"
  if grep -q 'root:' "$T/body"; then fail "$p served /etc/passwd"; fi
done
# a raw request line MHD will not normalize either
$PY - "$HTTP_PORT" <<'PY' || fail "raw traversal"
import socket, sys
for path in [b"/instances/../../../../etc/passwd", b"/instances/..\\..\\etc\\passwd/file", b"//etc/passwd"]:
    s = socket.create_connection(("127.0.0.1", int(sys.argv[1]))); s.settimeout(5)
    s.sendall(b"GET " + path + b" HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
    r = b""
    while True:
        d = s.recv(65536)
        if not d: break
        r += d
    assert r.split(b" ")[1] in (b"404", b"400"), r[:200]
    assert b"root:" not in r
PY
curl -sf "$URL/instances/$I/file" | cmp - "$F" || fail "the real file is still served"
pass "path traversal: 404, nothing outside the storage area"

# ---- body ceilings ----
head -c $((2 * 1024 * 1024)) /dev/urandom > "$T/big.bin"
c=$(curl -s -o "$T/body" -w '%{http_code}' -X POST --data-binary @"$T/big.bin" "$URL/instances")
[ "$c" = 413 ] || fail "2 MB upload over a 1 MB limit -> $c"
json 'j["HttpStatus"]' <"$T/body" | grep -qx 413 || fail "413 JSON: $(cat "$T/body")"
c=$(curl -s -o /dev/null -w '%{http_code}' -X POST -H 'Transfer-Encoding: chunked' --data-binary @"$T/big.bin" "$URL/instances")
[ "$c" = 413 ] || fail "chunked 2 MB upload -> $c"
# gzip bomb: 40 MB of zeros in a ~40 KB body
head -c $((40 * 1024 * 1024)) /dev/zero | gzip -9 > "$T/bomb.gz"
c=$(curl -s -o "$T/body" -w '%{http_code}' -X POST -H 'Content-Encoding: gzip' --data-binary @"$T/bomb.gz" "$URL/instances")
[ "$c" = 413 ] || fail "gzip bomb -> $c $(cat "$T/body")"
# announced but never sent: refused at once, nothing read
$PY - "$HTTP_PORT" <<'PY' || fail "announced oversize body not refused early"
import socket, sys, time
for hdr in [b"Content-Length: 5000000000\r\n", b"Content-Type: application/json\r\nContent-Length: 104857600\r\n"]:
    s = socket.create_connection(("127.0.0.1", int(sys.argv[1]))); s.settimeout(5)
    t = time.time()
    s.sendall(b"POST /instances HTTP/1.1\r\nHost: x\r\n" + hdr + b"\r\n{")
    r = s.recv(4096).decode("latin1")
    assert r.startswith("HTTP/1.1 413"), r
    assert time.time() - t < 1.5, time.time() - t
PY
[ "$(http GET /statistics | json 'j["CountInstances"]')" = 1 ] || fail "statistics after refusals"
pass "413 for oversized, chunked, gzip-inflated and announced bodies, before reading them"

# ---- request timeout (HttpRequestTimeout 2) ----
$PY - "$HTTP_PORT" <<'PY' || fail "stalled connection not closed"
import socket, sys, time
s = socket.create_connection(("127.0.0.1", int(sys.argv[1]))); s.settimeout(10)
t = time.time()
s.sendall(b"POST /instances HTTP/1.1\r\nHost: x\r\nContent-Length: 1000\r\n\r\nabc")  # then nothing
try:
    while s.recv(4096): pass
except ConnectionResetError:
    pass
dt = time.time() - t
assert 1.5 < dt < 6, dt
print("stalled connection closed after %.1f s" % dt)
PY
[ "$(http GET /system | json 'j["HttpPort"]')" = "$HTTP_PORT" ] || fail "server after the timeout"
pass "stalled request closed after HttpRequestTimeout"

# ---- MaximumAssociations 2 ----
$PY - "$DICOM_PORT" "$MP_SRC/tests/tools" <<'PY' || fail "association limit"
import sys
sys.path.insert(0, sys.argv[2])
import dicom_raw
port = int(sys.argv[1])
a = dicom_raw.Assoc(port); b = dicom_raw.Assoc(port)
assert a.result == 2 and b.result == 2, (a.result, b.result)
c = dicom_raw.Assoc(port)
assert c.result in (3, 7), "third association accepted: %r" % c.result
c.close()  # as an SCU does after A-ASSOCIATE-RJ (the listener waits for that close)
assert a.echo() == 0
a.release(); b.release()
import time
for _ in range(40):  # the released associations' threads end just after answering A-RELEASE
    d = dicom_raw.Assoc(port)
    if d.result == 2:
        break
    d.close()
    time.sleep(0.05)
assert d.result == 2 and d.echo() == 0, d.result
d.release()
PY
pass "MaximumAssociations: the association past the limit is refused, later ones accepted"
stop_server

# ---- HTTPS ----
openssl req -x509 -newkey rsa:2048 -nodes -days 2 -subj /CN=localhost -keyout "$T/key.pem" -out "$T/cert.pem" 2>/dev/null
cat "$T/cert.pem" "$T/key.pem" > "$T/both.pem"
write_config "\"SslEnabled\": true, \"SslCertificate\": \"$T/both.pem\""
"$MINIPACS_BIN" "$T/Orthanc.json" >>"$T/server.log" 2>&1 &
SERVER_PID=$!
for _ in $(seq 1 100); do curl -skf "https://127.0.0.1:$HTTP_PORT/system" >/dev/null && break; sleep 0.05; done
curl -sf --cacert "$T/cert.pem" "https://localhost:$HTTP_PORT/system" | json 'j["Name"]' | grep -qx it || fail "HTTPS /system"
r=$(curl -sf --cacert "$T/cert.pem" -X POST --data-binary @"$F" "https://localhost:$HTTP_PORT/instances") || fail "HTTPS upload"
echo "$r" | json 'j["Status"]' | grep -qx AlreadyStored || fail "HTTPS upload: $r"
if curl -s -m 3 -o /dev/null "http://127.0.0.1:$HTTP_PORT/system"; then fail "plain HTTP answered on the TLS port"; fi
pass "HTTPS with SslCertificate (certificate + key in one PEM)"
stop_server
write_config "\"SslEnabled\": true, \"SslCertificate\": \"$T/missing.pem\""
if timeout 10 "$MINIPACS_BIN" "$T/Orthanc.json" >"$T/bad.log" 2>&1; then fail "started without its certificate"; fi
grep -q 'SslCertificate' "$T/bad.log" || fail "no message naming SslCertificate: $(cat "$T/bad.log")"
pass "missing certificate: clear start-up error"
