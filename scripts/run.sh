#!/usr/bin/env bash
# Installs what is missing, builds, and starts the server on its embedded defaults
# (HTTP 8042, DICOM 4242, AET ORTHANC, storage and index in ./OrthancStorage), or on the
# configuration file given as first argument.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/deps.sh
scripts/build.sh build -DCMAKE_BUILD_TYPE=Release -DMINIPACS_TESTS=OFF
exec build/minipacs "$@"
