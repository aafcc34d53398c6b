#!/usr/bin/env bash
# The container files, checked without a Docker daemon (scripts/docker-check.sh): the Dockerfile
# builds with scripts/deps.sh + scripts/build.sh only and has the runtime shape asked for; the
# compose files validate with docker-compose and meet the deployment's requirements; every
# library of the built binary comes from the runtime stage's packages. Broken copies of the
# Dockerfile must be rejected, so the checks are known to bite.
source "$(dirname "$0")/lib.sh"
CHECK="$MP_SRC/scripts/docker-check.sh"

out=$("$CHECK" files 2>&1) || { echo "$out"; fail "docker files"; }
echo "$out"
pass "Dockerfile and compose files"

out=$("$CHECK" libs "$MINIPACS_BIN" 2>&1) || { echo "$out"; fail "runtime libraries"; }
echo "$out"
pass "ldd of the binary against the runtime stage's packages"

# Mutations: each broken Dockerfile must fail the named check.
mutate() {  # mutate NAME CHECK SED-EXPR
  local name=$1 what=$2 expr=$3 f="$T/Dockerfile.$1"
  sed -E "$expr" "$MP_SRC/docker/Dockerfile" > "$f"
  cmp -s "$f" "$MP_SRC/docker/Dockerfile" && fail "mutation $name changed nothing (sed: $expr)"
  local args=("$what"); [ "$what" = libs ] && args+=("$MINIPACS_BIN")
  if MINIPACS_DOCKERFILE="$f" "$CHECK" "${args[@]}" > "$T/mut.out" 2>&1; then
    cat "$T/mut.out"; fail "mutation $name was not detected"
  fi
  grep -q FAIL "$T/mut.out" || fail "mutation $name: no FAIL line"
  echo "  rejected ($name): $(grep -m1 FAIL "$T/mut.out")"
}
mutate direct-cmake files 's#RUN scripts/build.sh #RUN cmake -S . -B /build \&\& cmake --build /build \&\& true #'
mutate no-deps files 's#^RUN scripts/deps.sh$#RUN apt-get update#'
mutate debug-build files 's#-DCMAKE_BUILD_TYPE=Release#-DCMAKE_BUILD_TYPE=Debug#'
mutate root-user files '/^USER /d'
mutate no-volume files '/^VOLUME /d'
mutate no-healthcheck files '/^HEALTHCHECK /d'
mutate dev-in-runtime files 's#libcjson1 zlib1g#libcjson-dev zlib1g#'
mutate missing-cjson libs 's# libcjson1 # #'
mutate missing-dcmtk libs 's# libdcmtk17 # #'
pass "broken Dockerfiles are rejected"
