#!/usr/bin/env bash
# Configures and builds vlascope in ./build (or $BUILD_DIR). Extra arguments go to CMake's configure step,
# e.g. scripts/build.sh -DVLASCOPE_SANITIZE=ON.
set -euo pipefail
cd "$(dirname "$0")/.."
build_dir=${BUILD_DIR:-build}
cmake -S . -B "$build_dir" -G Ninja -DCMAKE_BUILD_TYPE=${BUILD_TYPE:-Release} "$@"
cmake --build "$build_dir" -j "${JOBS:-2}"
