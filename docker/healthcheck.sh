#!/bin/bash
# minipacs-healthcheck -- the container's HEALTHCHECK: GET /system on the loopback interface.
# Needs nothing but bash (its /dev/tcp redirection) and coreutils, both in bookworm-slim.
#
# Healthy (exit 0) when /system answers 200. When it answers 401 (authentication enabled) and
# no credentials were given, the server is up and enforcing authentication: also healthy.
# Anything else (no answer, refused connection, other status, timeout) is unhealthy (exit 1).
#
# Environment:
#   MINIPACS_HEALTHCHECK_PORT   port to probe; default ORTHANC__HTTP_PORT, then 8042. Set it
#                               when HttpPort is changed in the JSON file instead of the env.
#   MINIPACS_HEALTHCHECK_AUTH   "user:password": sends HTTP Basic credentials, and then only
#                               200 is healthy.
set -u
port="${MINIPACS_HEALTHCHECK_PORT:-${ORTHANC__HTTP_PORT:-8042}}"
auth="${MINIPACS_HEALTHCHECK_AUTH:-}"
timeout_s="${MINIPACS_HEALTHCHECK_TIMEOUT:-4}"

case "$port" in
  ''|*[!0-9]*) echo "healthcheck: bad port '$port'" >&2; exit 1 ;;
esac

probe() {
  exec 3<>"/dev/tcp/127.0.0.1/$port" || exit 1
  local hdr=""
  if [ -n "$auth" ]; then
    hdr="Authorization: Basic $(printf '%s' "$auth" | base64 -w0)"$'\r\n'
  fi
  printf 'GET /system HTTP/1.0\r\nHost: 127.0.0.1\r\n%sConnection: close\r\n\r\n' "$hdr" >&3
  local proto code
  read -r proto code _ <&3 || exit 1
  code="${code%$'\r'}"
  exec 3<&-
  case "$proto" in HTTP/1.?) ;; *) echo "healthcheck: not HTTP: $proto" >&2; exit 1 ;; esac
  echo "$code"
}

code=$(export -f probe; export port auth; timeout "$timeout_s" bash -c probe 2>/dev/null) || {
  echo "healthcheck: no answer from 127.0.0.1:$port" >&2; exit 1; }
if [ "$code" = 200 ]; then exit 0; fi
if [ "$code" = 401 ] && [ -z "$auth" ]; then exit 0; fi
echo "healthcheck: GET /system answered $code" >&2
exit 1
