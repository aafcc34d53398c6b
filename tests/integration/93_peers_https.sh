#!/usr/bin/env bash
# Peers over HTTPS with self-signed certificates made by openssl. A second instance of our
# server serves TLS (SslEnabled): our peer reaches it with HttpsCACertificates (system, store
# with gzip, files identical); under a host name the certificate does not name the request
# fails (500, nothing sent). Client certificates: openssl s_server demands one (-Verify); the
# peer with CertificateFile / CertificateKeyFile / CertificateKeyPassword (an encrypted key) is
# let in, the peer without is refused. (Debian's Orthanc 1.10.1 crashes on its first TLS
# request on this system, so it is not the TLS server here.)
source "$(dirname "$0")/lib.sh"
B_HTTP=$(free_port); B_DICOM=$(free_port); S_PORT=$(free_port)
mkdir -p "$T/tls/www" "$T/b"
(
  cd "$T/tls"
  openssl req -x509 -newkey rsa:2048 -nodes -keyout srv.key -out srv.crt -days 2 -subj "/CN=127.0.0.1" \
    -addext "subjectAltName=IP:127.0.0.1" 2>/dev/null
  openssl req -x509 -newkey rsa:2048 -keyout cli.key -passout pass:kpw -out cli.crt -days 2 -subj "/CN=client" 2>/dev/null
  cat srv.key srv.crt > srv.pem
  echo '{"Name": "s_server"}' > www/system
) || fail "openssl"
write_config "\"HttpsCACertificates\": \"$T/tls/srv.crt\",
  \"OrthancPeers\": {
    \"tls\": [\"https://127.0.0.1:$B_HTTP/\"],
    \"wrongname\": [\"https://localhost:$B_HTTP/\"],
    \"mtls\": {\"Url\": \"https://127.0.0.1:$S_PORT/\", \"CertificateFile\": \"$T/tls/cli.crt\",
             \"CertificateKeyFile\": \"$T/tls/cli.key\", \"CertificateKeyPassword\": \"kpw\"},
    \"nocert\": [\"https://127.0.0.1:$S_PORT/\"] }"
cat > "$T/b/cfg.json" <<JSON
{ "Name": "tls-second", "StorageDirectory": "$T/b/db", "HttpPort": $B_HTTP, "DicomPort": $B_DICOM,
  "SyncStorageArea": false, "SslEnabled": true, "SslCertificate": "$T/tls/srv.pem" }
JSON
"$MINIPACS_BIN" "$T/b/cfg.json" >"$T/b/server.log" 2>&1 &
B_PID=$!
(cd "$T/tls/www" && exec openssl s_server -quiet -accept "$S_PORT" -cert ../srv.crt -key ../srv.key \
   -Verify 1 -CAfile ../cli.crt -WWW) >"$T/s_server.log" 2>&1 &
S_PID=$!
trap 'rc=$?; set +e; kill $B_PID $S_PID 2>/dev/null; wait $B_PID $S_PID 2>/dev/null; [ $rc -ne 0 ] && tail -n 20 "$T/b/server.log" "$T/s_server.log" >&2; (exit $rc); on_exit' EXIT
start_server
BC="curl -s --cacert $T/tls/srv.crt"
B="https://127.0.0.1:$B_HTTP"
for _ in $(seq 1 300); do $BC -f "$B/system" >/dev/null 2>&1 && break; sleep 0.1; done
$BC -f "$B/system" >/dev/null || fail "the second server did not start with TLS"

[ "$(http GET /peers/tls/system | json 'j["Name"]')" = tls-second ] || fail "system over TLS: $(status) $(cat "$T/body")"
ID=$(upload "$PYDICOM_FILES/CT_small.dcm" | json 'j["ID"]')
r=$(http POST /peers/tls/store -d "{\"Resources\": [\"$ID\"], \"Compress\": true}")
[ "$(status)" = 200 ] && [ "$(echo "$r" | json 'j["InstancesCount"]')" = 1 ] || fail "store over TLS: $(status) $r"
cmp -s <(curl -sf "$URL/instances/$ID/file") <($BC "$B/instances/$ID/file") || fail "the instance differs on the TLS peer"
http GET /peers/wrongname/system >/dev/null
[ "$(status)" = 500 ] && json 'j["Details"]' < "$T/body" | grep -qi "certificate\|SSL" || fail "host name not in the certificate: $(status) $(cat "$T/body")"
$BC -X DELETE "$B/instances/$ID" >/dev/null
http POST /peers/wrongname/store -d "\"$ID\"" >/dev/null
[ "$(status)" = 500 ] || fail "store to an unverified peer: $(status)"
[ "$($BC "$B/statistics" | json 'j["CountInstances"]')" = 0 ] || fail "an instance was sent to an unverified peer"
pass "HTTPS: verified with HttpsCACertificates (system, gzip store, identical file); wrong host name refused, nothing sent"

[ "$(http GET /peers/mtls/system | json 'j["Name"]')" = s_server ] || fail "client certificate with an encrypted key: $(status) $(cat "$T/body")"
http GET /peers/nocert/system >/dev/null
[ "$(status)" = 500 ] && [ "$(json 'j["OrthancError"]' < "$T/body")" = "Error in the network protocol" ] || fail "no client certificate: $(status) $(cat "$T/body")"
pass "HTTPS client certificates: CertificateFile/KeyFile/KeyPassword accepted by a server that demands one; none refused"
