#!/usr/bin/env bash
# Installs every Debian package the build, the server and the tests need; idempotent and quick
# when everything is present. Runs as root (apt-get) or through sudo when available.
set -euo pipefail
PKGS="build-essential cmake pkg-config libdcmtk-dev dcmtk libmicrohttpd-dev libsqlite3-dev sqlite3 \
libcjson-dev zlib1g-dev curl python3 python3-pydicom python3-pytest python3-numpy procps docker-compose python3-yaml debootstrap openssl strace postgresql orthanc"  # orthanc: 92_qr_scu queries it
if [ "${1:-}" = "--bench" ]; then PKGS="$PKGS orthanc gnuplot-nox"; fi
if [ "${1:-}" = "--fuzz" ]; then PKGS="$PKGS clang libclang-rt-14-dev"; fi  # scripts/fuzz.sh
missing=""
for p in $PKGS; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing="$missing $p"
done
if [ -n "$missing" ]; then
  SUDO=""; [ "$(id -u)" = 0 ] || SUDO="sudo"
  echo "deps: installing$missing"
  $SUDO apt-get update -q
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -q --no-install-recommends $missing
fi
