#!/usr/bin/env bash
# Installs every Debian 12 package vlascope needs to build, test and run. Safe to run twice:
# apt-get skips what is already installed, and nothing else is touched.
set -euo pipefail

packages=(
  # toolchain
  build-essential cmake ninja-build pkg-config git
  # simulator: MuJoCo 2.2.2 (its CMake config needs qhull) and software OpenGL for headless rendering
  libmujoco-dev libqhull-dev libosmesa6-dev
  # policy: libtorch 1.13 (CPU) with an optimised BLAS; without OpenBLAS torch runs reference BLAS (30x slower)
  libtorch-dev libopenblas0-openmp libopenblas-dev
  # images, video (OpenCV writes MP4 through FFmpeg), cameras
  libopencv-dev ffmpeg
  # datasets, config files, serial bus
  libhdf5-dev nlohmann-json3-dev libserialport-dev
  # tests and benchmarks
  libgtest-dev libgmock-dev libbenchmark-dev
)

missing=()
for p in "${packages[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done

if [ ${#missing[@]} -eq 0 ]; then
  echo "setup: all ${#packages[@]} packages already installed"
  exit 0
fi

SUDO=""
if [ "$(id -u)" -ne 0 ]; then SUDO="sudo"; fi
echo "setup: installing ${missing[*]}"
export DEBIAN_FRONTEND=noninteractive
$SUDO apt-get update -qq
$SUDO apt-get install -y -qq --no-install-recommends "${missing[@]}"
echo "setup: done"
