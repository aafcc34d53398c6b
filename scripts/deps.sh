#!/usr/bin/env bash
# Installs every Debian package the build, the server and the tests need; idempotent and quick
# when everything is present. Runs as root (apt-get) or through sudo when available.
set -euo pipefail
PKGS="build-essential cmake pkg-config libdcmtk-dev dcmtk libmicrohttpd-dev libsqlite3-dev sqlite3 \
libcjson-dev zlib1g-dev curl python3 python3-pydicom python3-pytest python3-numpy python3-httplib2 procps docker-compose python3-yaml debootstrap openssl strace postgresql libpq-dev orthanc \
libopenjp2-7-dev libpng-dev libarchive-dev python3-pil python3-gdcm"  # orthanc: 92_qr_scu queries it
PKGS="$PKGS nettle-dev"  # SHA-1/MD5/base64 (server/util.c)
PKGS="$PKGS libcurl4-openssl-dev"  # the HTTP client of peers and DICOMweb servers (server/httpc.c)
PKGS="$PKGS orthanc-dicomweb"  # 93_dicomweb_client: our DICOMweb client against Orthanc's plugin
if [ "${1:-}" = "--bench" ]; then PKGS="$PKGS orthanc gnuplot-nox orthanc-postgresql"; fi  # bench/pg.py
if [ "${1:-}" = "--fuzz" ]; then PKGS="$PKGS clang libclang-rt-14-dev"; fi  # scripts/fuzz.sh
# The browser tests of the web interface (tests/browser) need Debian's chromium and nodejs;
# not where those tests are absent (the Docker build stage copies this script alone).
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
BROWSER_TESTS=""; [ -f "$ROOT/tests/browser/package.json" ] && BROWSER_TESTS=1
if [ -n "$BROWSER_TESTS" ]; then PKGS="$PKGS chromium nodejs"; fi
# The OHIF Viewer served at /ohif/ is fetched from npm by scripts/ohif.sh (also in the Docker
# build stage, which copies that script beside this one).
OHIF=""; [ -f "$ROOT/scripts/ohif.sh" ] && OHIF=1
if [ -n "$OHIF" ] && ! command -v npm >/dev/null 2>&1; then PKGS="$PKGS nodejs"; fi
# The DICOMweb client tests (tests/dicomweb: dicomweb-client from Node) need nodejs and npm.
DICOMWEB_TESTS=""; [ -f "$ROOT/tests/dicomweb/package.json" ] && DICOMWEB_TESTS=1
if [ -n "$DICOMWEB_TESTS" ] && ! command -v node >/dev/null 2>&1; then PKGS="$PKGS nodejs"; fi
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
if [ -n "$BROWSER_TESTS$OHIF$DICOMWEB_TESTS" ]; then
  # npm: Debian's package, unless the installed nodejs brings its own (NodeSource's does).
  if ! command -v npm >/dev/null 2>&1; then
    SUDO=""; [ "$(id -u)" = 0 ] || SUDO="sudo"
    DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -q --no-install-recommends npm
  fi
fi
if [ -n "$BROWSER_TESTS" ]; then
  # puppeteer-core from the committed lock file; it downloads no browser (the tests drive
  # Debian's chromium).
  if [ ! -f "$ROOT/tests/browser/node_modules/puppeteer-core/package.json" ]; then
    (cd "$ROOT/tests/browser" && PUPPETEER_SKIP_DOWNLOAD=1 npm ci --no-audit --no-fund --silent)
  fi
fi
if [ -n "$DICOMWEB_TESTS" ] && [ ! -f "$ROOT/tests/dicomweb/node_modules/dicomweb-client/package.json" ]; then
  (cd "$ROOT/tests/dicomweb" && npm ci --no-audit --no-fund --silent)  # from the committed lock file
fi
if [ -n "$OHIF" ]; then "$ROOT/scripts/ohif.sh"; fi
