#!/usr/bin/env bash
# The shipped unfrozen-VLM model still picks up the cube: seeded closed-loop episodes in the digital twin,
# headless, through `vlascope eval` exactly as a user runs it. A change to the model code, the checkpoint
# loader, preprocessing, the tokenizer or the simulator that breaks the policy fails here.
set -euo pipefail
vlascope=$1
model=$2
# 10 episodes in one lock-step batch: at the model's ~80 % success, 6 of 10 fail by chance about 2 % of the time on
# a machine whose floats differ; a policy that barely works (≤ 30 %) reaches 6 about 5 % of the time.
episodes=${EPISODES:-10}
need=${NEED:-6}
dir=$(mktemp -d)
trap 'rm -rf "$dir"' EXIT
[ -f "$model/model.safetensors" ] || { echo "FAIL: no shipped model at $model" >&2; exit 1; }
$vlascope eval --checkpoint "$model" --episodes "$episodes" --batch "$episodes" --seed 100000 --videos 0 --out "$dir" >"$dir/log.txt" 2>&1 \
  || { cat "$dir/log.txt"; echo "FAIL: eval" >&2; exit 1; }
successes=$(python3 -c "import json; print(json.load(open('$dir/eval.json'))['successes'])")
grep "success" "$dir/log.txt" | tail -1
[ "$successes" -ge "$need" ] || { echo "FAIL: $successes/$episodes seeded episodes succeeded, need $need" >&2; exit 1; }
echo "cli_shipped_model: $successes/$episodes seeded episodes succeeded (need $need)"
