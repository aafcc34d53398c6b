#!/usr/bin/env bash
# kill -9 at random points of the mixed load (8 REST uploaders, 8 storescu, deletes,
# anonymization jobs), 3 rounds on one store (bench/crash_loop.py 20 is the long version):
# after each restart, once the jobs resumed at start-up are done, every acknowledged upload
# (REST 200, C-STORE success) that no delete can have removed is present and readable; index
# and files agree exactly, every file parses, /statistics = recount.
source "$(dirname "$0")/lib.sh"
MINIPACS_BIN="$MINIPACS_BIN" SEED=3 $PY "$MP_SRC/bench/crash_loop.py" 3 | tee "$T/out"
grep -q '^PASS' "$T/out" || fail "crash loop"
grep -q "acked=[1-9]" "$T/out" || fail "no acknowledged upload was checked"
pass "3 kill -9 rounds under mixed load"
