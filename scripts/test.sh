#!/usr/bin/env bash
# Installs what is missing, builds, and runs every test through ctest.
# MINIPACS_SANITIZE=1 builds into build-asan with ASan+UBSan instead.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/deps.sh
if [ "${MINIPACS_SANITIZE:-0}" = 1 ]; then
  scripts/build.sh build-asan -DMINIPACS_SANITIZE=ON
  cd build-asan
else
  scripts/build.sh build
  cd build
fi
ctest --output-on-failure -j 2 --timeout 300 "$@"
