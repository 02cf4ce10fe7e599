#!/usr/bin/env bash
# Closed-loop episodes per minute of `vlascope eval` on one checkpoint, the same seeds at every setting (issue 15):
# the sequential baseline (--batch 1, one thread), then --batch 1/4/8/16 in one process on 1 and 2 threads, then
# --workers 2 (two processes of one thread each, each running half the episodes in batches). Prints a table with each
# setting's ratio to the baseline of the same run, and its success count (the statistics must agree; single episodes
# may not, see interp/README.md).
#
#   benchmarks/rollout_throughput.sh [CHECKPOINT] [EPISODES] [VLASCOPE]
#
# BEFORE=path/to/an/older/vlascope adds its sequential eval as the first row and the baseline of the ratios (e.g. a
# binary from before lazy camera frames and batching). PRECISION=bf16 runs the policy in bf16 (default fp32).
# SETTINGS="B T W;…" picks the rows (batch, threads, workers; the first is the baseline when BEFORE is not given).
set -euo pipefail
here=$(cd "$(dirname "$0")/.." && pwd)
checkpoint=${1:-$here/models/smolvla_small_unfrozen}
episodes=${2:-48}
vlascope=${3:-$here/build/apps/vlascope}
precision=${PRECISION:-fp32}
dir=$(mktemp -d)
trap 'rm -rf "$dir"' EXIT
json() { python3 -c "import json, sys; d = json.load(open(sys.argv[1])); print($2)" "$1"; }
row() { printf '%-8s %-8s %-8s %12s %8s %10s\n' "$@"; }
row batch threads workers "episodes/min" ratio successes
base=""
if [ -n "${BEFORE:-}" ]; then
  "$BEFORE" eval --checkpoint "$checkpoint" --episodes "$episodes" --videos 0 --out "$dir/before" >/dev/null 2>&1
  base=$(json "$dir/before/eval.json" "round(d['episodes'] * 60 / sum(e['wall_seconds'] for e in d['per_episode']), 1)")
  row before 1 1 "$base" 1.00 "$(json "$dir/before/eval.json" "f\"{d['successes']}/{d['episodes']}\"")"
fi
# batch, threads (intra-op and simulation), workers
settings=${SETTINGS:-"1 1 1;1 2 1;4 1 1;4 2 1;8 1 1;8 2 1;16 1 1;16 2 1;1 1 2;4 1 2;8 1 2;16 1 2"}
IFS=';' read -r -a settings <<<"$settings"
for setting in "${settings[@]}"; do
  read -r batch threads workers <<<"$setting"
  run="$dir/b${batch}_t${threads}_w${workers}"
  "$vlascope" eval --checkpoint "$checkpoint" --episodes "$episodes" --videos 0 --batch "$batch" --threads "$threads" \
    --sim-threads "$threads" --workers "$workers" --precision "$precision" --out "$run" >/dev/null 2>&1
  rate=$(json "$run/eval.json" "round(d['episodes_per_minute'], 1)")
  [ -z "$base" ] && base=$rate
  row "$batch" "$threads" "$workers" "$rate" "$(python3 -c "print(round($rate / $base, 2))")" \
    "$(json "$run/eval.json" "f\"{d['successes']}/{d['episodes']}\"")"
done
