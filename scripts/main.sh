#!/usr/bin/env bash
# The main job: installs, builds, then collects and renders a few scripted demonstrations in simulation.
# Results go to ./out (or $OUT).
set -euo pipefail
cd "$(dirname "$0")/.."
./scripts/setup.sh
./scripts/build.sh
out=${OUT:-out}
mkdir -p "$out"
./build/apps/vlascope info
