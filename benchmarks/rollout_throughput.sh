#!/usr/bin/env bash
# Closed-loop episodes per minute of `vlascope eval` on one checkpoint, the same seeds at every setting (issue 15):
# the sequential baseline (--batch 1, one simulation thread), then --batch 1/4/8/16 on 1 and 2 simulation threads.
# Prints a table with each setting's ratio to the baseline of the same run, and its success count (the statistics
# must agree; single episodes may not, see interp/README.md).
#
#   benchmarks/rollout_throughput.sh [CHECKPOINT] [EPISODES] [VLASCOPE]
#
# BEFORE=path/to/an/older/vlascope adds its sequential eval as the first row and the baseline of the ratios (e.g. a
# binary from before lazy camera frames and batching).
set -euo pipefail
here=$(cd "$(dirname "$0")/.." && pwd)
checkpoint=${1:-$here/models/smolvla_small_unfrozen}
episodes=${2:-32}
vlascope=${3:-$here/build/apps/vlascope}
dir=$(mktemp -d)
trap 'rm -rf "$dir"' EXIT
json() { python3 -c "import json, sys; d = json.load(open(sys.argv[1])); print($2)" "$1"; }
printf '%-8s %-12s %12s %8s %10s\n' batch sim-threads "episodes/min" ratio successes
base=""
if [ -n "${BEFORE:-}" ]; then
  "$BEFORE" eval --checkpoint "$checkpoint" --episodes "$episodes" --videos 0 --out "$dir/before" >/dev/null 2>&1
  base=$(json "$dir/before/eval.json" "round(d['episodes'] * 60 / sum(e['wall_seconds'] for e in d['per_episode']), 1)")
  printf '%-8s %-12s %12s %8s %10s\n' before 1 "$base" 1.00 "$(json "$dir/before/eval.json" "f\"{d['successes']}/{d['episodes']}\"")"
fi
for setting in "1 1" "1 2" "4 1" "4 2" "8 1" "8 2" "16 1" "16 2"; do
  read -r batch threads <<<"$setting"
  [ "$batch" = 1 ] && [ "$threads" = 2 ] && continue  # one lane uses one thread
  "$vlascope" eval --checkpoint "$checkpoint" --episodes "$episodes" --videos 0 --batch "$batch" \
    --sim-threads "$threads" --out "$dir/b${batch}_t${threads}" >/dev/null 2>&1
  report="$dir/b${batch}_t${threads}/eval.json"
  rate=$(json "$report" "round(d['episodes_per_minute'], 1)")
  [ -z "$base" ] && base=$rate
  printf '%-8s %-12s %12s %8s %10s\n' "$batch" "$threads" "$rate" "$(python3 -c "print(round($rate / $base, 2))")" \
    "$(json "$report" "f\"{d['successes']}/{d['episodes']}\"")"
done
