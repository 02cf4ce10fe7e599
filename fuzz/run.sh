#!/usr/bin/env bash
# Builds the libFuzzer harnesses with clang (ASan + UBSan) and runs each from its seed corpus for SECONDS (default 30).
# New inputs go to a scratch copy of the corpus, not into the repository; a crash leaves its input in BUILD_DIR/crashes.
#   fuzz/run.sh [SECONDS] [BUILD_DIR]
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
seconds=${1:-30}
build=${2:-$here/../build-fuzz}
command -v clang++ >/dev/null || { echo "fuzz: clang++ is missing: run scripts/setup.sh" >&2; exit 1; }
cmake -S "$here" -B "$build" -G Ninja -DCMAKE_CXX_COMPILER=clang++ -DCMAKE_BUILD_TYPE=RelWithDebInfo >/dev/null
cmake --build "$build" -j 2 >/dev/null
mkdir -p "$build/crashes"
scratch=$(mktemp -d)
trap 'rm -rf "$scratch"' EXIT
status=0
for name in safetensors tokenizer config feetech calibration neuron_sets; do
  cp -r "$here/corpus/$name" "$scratch/$name"
  if "$build/fuzz_$name" "$scratch/$name" -max_total_time="$seconds" -rss_limit_mb=2048 -max_len=70000 \
       -artifact_prefix="$build/crashes/${name}_" -print_final_stats=1 >"$scratch/$name.log" 2>&1; then
    echo "fuzz_$name: $(grep -o 'stat::number_of_executed_units: *[0-9]*' "$scratch/$name.log" | grep -o '[0-9]*$') runs in ${seconds} s, no finding"
  else
    echo "fuzz_$name: FINDING (input in $build/crashes/):"
    grep -E "ERROR|SUMMARY|terminate|what\(\)|runtime error" "$scratch/$name.log" | head -8 || true
    status=1
  fi
done
exit $status
