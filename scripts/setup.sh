#!/usr/bin/env bash
# Installs every Debian 12 package vlascope needs to build, test and run. Safe to run twice:
# apt-get skips what is already installed, and nothing else is touched.
set -euo pipefail

packages=(
  # toolchain
  build-essential cmake ninja-build pkg-config git
  # simulator: MuJoCo 2.2.2 (its CMake config needs qhull) and software OpenGL for headless rendering
  libmujoco-dev libqhull-dev libosmesa6-dev
  # policy: libtorch 1.13 (CPU) with OpenMP OpenBLAS; without it torch runs reference BLAS (30x slower), and the
  # pthread build fights libtorch's OpenMP threads (10 instead of 120 GFLOP/s on one 1024² matmul)
  libtorch-dev libopenblas0-openmp
  # images, video (OpenCV writes MP4 through FFmpeg), cameras
  libopencv-dev ffmpeg
  # datasets, config files, serial bus
  libhdf5-dev nlohmann-json3-dev libserialport-dev
  # statistics: the t, normal and beta distributions (header-only Boost.Math)
  libboost-math-dev
  # tests and benchmarks; a one-node Slurm (with munge) for the sharded-sweep test; Chromium for the explorer's
  # browser test (driven by playwright-core from npm, below)
  libgtest-dev libgmock-dev libbenchmark-dev slurm-wlm munge python3 chromium
  # the parsers' libFuzzer harnesses (fuzz/): clang with its sanitizer and fuzzer runtimes
  clang
)
# Node.js and npm run the browser test; a machine that has them (from Debian or elsewhere) keeps its own.
command -v npm >/dev/null 2>&1 || packages+=(nodejs npm)

missing=()
for p in "${packages[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done

SUDO=""
if [ "$(id -u)" -ne 0 ]; then SUDO="sudo"; fi
if [ ${#missing[@]} -eq 0 ]; then
  echo "setup: all ${#packages[@]} packages already installed"
else
  echo "setup: installing ${missing[*]}"
  export DEBIAN_FRONTEND=noninteractive
  $SUDO apt-get update -qq
  $SUDO apt-get install -y -qq --no-install-recommends "${missing[@]}"
fi

# libblas.so.3 / liblapack.so.3 must be OpenMP OpenBLAS even when another package pulled in the pthread build
# (which Debian ranks higher).
arch=$(dpkg-architecture -qDEB_HOST_MULTIARCH 2>/dev/null || echo x86_64-linux-gnu)
for lib in libblas.so.3 liblapack.so.3; do
  want=/usr/lib/$arch/openblas-openmp/$lib
  name=$lib-$arch
  if [ -e "$want" ] && [ "$(readlink -f /usr/lib/$arch/$lib)" != "$(readlink -f "$want")" ]; then
    echo "setup: $lib -> OpenMP OpenBLAS"
    $SUDO update-alternatives --quiet --set "$name" "$want"
  fi
done
# playwright-core for the explorer's browser test, at the version package-lock.json pins (no browser download: the
# test launches Debian's /usr/bin/chromium).
here=$(cd "$(dirname "$0")/.." && pwd)
if [ ! -d "$here/tests/browser/node_modules/playwright-core" ]; then
  echo "setup: npm ci in tests/browser"
  (cd "$here/tests/browser" && npm ci --no-audit --no-fund --loglevel=error)
fi
echo "setup: done"
