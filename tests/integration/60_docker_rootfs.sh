#!/usr/bin/env bash
# The runtime stage for real, without Docker: a debootstrapped minimal bookworm, the runtime
# stage's RUN/COPY/USER lines replayed in it with the built binary, the server started from
# ENTRYPOINT+CMD as the image's user and as PID 1, probed by the HEALTHCHECK, fed one upload,
# stopped by SIGTERM (scripts/docker-check.sh rootfs). Needs root and apt's mirror; ~30 s.
source "$(dirname "$0")/lib.sh"
"$MP_SRC/scripts/docker-check.sh" rootfs "$MINIPACS_BIN" || fail "runtime stage in a bookworm tree"
pass "the binary runs in a minimal bookworm with only the runtime stage's packages"
