#!/usr/bin/env bash
# The test command: installs what a fresh Debian 12 machine lacks, builds, and runs the whole suite.
# Extra arguments go to CMake (scripts/test.sh -DVLASCOPE_SANITIZE=ON runs the suite under ASan+UBSan).
set -euo pipefail
cd "$(dirname "$0")/.."
./scripts/setup.sh
./scripts/build.sh "$@"
ctest --test-dir "${BUILD_DIR:-build}" --output-on-failure -j "${JOBS:-2}"
