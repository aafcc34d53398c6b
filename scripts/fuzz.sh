#!/usr/bin/env bash
# Builds the libFuzzer targets with clang into build-fuzz (ASan+UBSan, coverage) and runs each
# for MINIPACS_FUZZ_SECONDS (default 20) through `ctest -L fuzz`, one at a time.
# Longer runs by hand: tests/fuzz/run.sh build-fuzz/tests/fuzz/fuzz_ingest 600 /tmp/corpus
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/deps.sh --fuzz
secs="${MINIPACS_FUZZ_SECONDS:-20}"
CC=clang CXX=clang++ scripts/build.sh build-fuzz -DMINIPACS_FUZZ=ON -DMINIPACS_TESTS=OFF \
  -DMINIPACS_FUZZ_SECONDS="$secs"
cd build-fuzz
ctest --output-on-failure -L fuzz "$@"
