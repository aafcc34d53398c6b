#!/usr/bin/env bash
# kill -9 at random points of the mixed load (8 REST uploaders, 8 storescu, deletes,
# anonymization jobs), 3 rounds on one store (bench/crash_loop.py 20 is the long version):
# after each restart index and files agree exactly, every file parses, /statistics = recount.
source "$(dirname "$0")/lib.sh"
MINIPACS_BIN="$MINIPACS_BIN" SEED=3 $PY "$MP_SRC/bench/crash_loop.py" 3 | tee "$T/out"
grep -q '^PASS' "$T/out" || fail "crash loop"
pass "3 kill -9 rounds under mixed load"
