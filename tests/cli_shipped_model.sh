#!/usr/bin/env bash
# The shipped unfrozen-VLM model still picks up the cube: seeded closed-loop episodes in the digital twin,
# headless, through `vlascope eval` exactly as a user runs it. A change to the model code, the checkpoint
# loader, preprocessing, the tokenizer or the simulator that breaks the policy fails here.
set -euo pipefail
vlascope=$1
model=$2
# 20 episodes in lock-step batches of 10. Rollouts are chaotic, so another machine's floats give other episodes: at
# the model's 72 % success (models/README.md) fewer than 9 of 20 succeed by chance 0.3 % of the time, while a policy
# that barely works (30 %) reaches 9 in 11 % of draws and one at 20 % in 1 %.
episodes=${EPISODES:-20}
need=${NEED:-9}
dir=$(mktemp -d)
trap 'rm -rf "$dir"' EXIT
[ -f "$model/model.safetensors" ] || { echo "FAIL: no shipped model at $model" >&2; exit 1; }
$vlascope eval --checkpoint "$model" --episodes "$episodes" --batch 10 --seed 100000 --videos 0 --out "$dir" >"$dir/log.txt" 2>&1 \
  || { cat "$dir/log.txt"; echo "FAIL: eval" >&2; exit 1; }
successes=$(python3 -c "import json; print(json.load(open('$dir/eval.json'))['successes'])")
grep "success" "$dir/log.txt" | tail -1
[ "$successes" -ge "$need" ] || { echo "FAIL: $successes/$episodes seeded episodes succeeded, need $need" >&2; exit 1; }
echo "cli_shipped_model: $successes/$episodes seeded episodes succeeded (need $need)"
