#!/usr/bin/env bash
# Installs what is missing, builds, and runs every test through ctest.
# MINIPACS_SANITIZE=1 builds into build-asan with ASan+UBSan instead.
# MINIPACS_TSAN=1 builds into build-tsan with ThreadSanitizer and runs the tests labelled tsan
# (every unit test and the thread-heavy scenarios, see tests/CMakeLists.txt).
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/deps.sh
# MINIPACS_INDEX=postgresql runs the integration scenarios on the PostgreSQL index backend
# (a throw-away cluster started by ctest's fixture), in a build folder of its own.
if [ "${MINIPACS_INDEX:-sqlite}" = postgresql ]; then
  scripts/build.sh build-pg -DMINIPACS_TEST_INDEX=postgresql
  cd build-pg
elif [ "${MINIPACS_TSAN:-0}" = 1 ]; then
  scripts/build.sh build-tsan -DMINIPACS_TSAN=ON
  cd build-tsan
  set -- -L tsan "$@"
elif [ "${MINIPACS_SANITIZE:-0}" = 1 ]; then
  scripts/build.sh build-asan -DMINIPACS_SANITIZE=ON
  cd build-asan
else
  scripts/build.sh build
  cd build
fi
ctest --output-on-failure -j 2 --timeout 300 "$@"
