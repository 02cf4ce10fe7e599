#!/usr/bin/env bash
# The shipped unfrozen-VLM model still picks up the cube: seeded closed-loop episodes in the digital twin,
# headless, through `vlascope eval` exactly as a user runs it. A change to the model code, the checkpoint
# loader, preprocessing, the tokenizer or the simulator that breaks the policy fails here.
set -euo pipefail
vlascope=$1
model=$2
episodes=${EPISODES:-4}
need=${NEED:-3}
dir=$(mktemp -d)
trap 'rm -rf "$dir"' EXIT
[ -f "$model/model.safetensors" ] || { echo "FAIL: no shipped model at $model" >&2; exit 1; }
$vlascope eval --checkpoint "$model" --episodes "$episodes" --seed 100000 --videos 0 --out "$dir" >"$dir/log.txt" 2>&1 \
  || { cat "$dir/log.txt"; echo "FAIL: eval" >&2; exit 1; }
successes=$(python3 -c "import json; print(json.load(open('$dir/eval.json'))['successes'])")
grep "success" "$dir/log.txt" | tail -1
[ "$successes" -ge "$need" ] || { echo "FAIL: $successes/$episodes seeded episodes succeeded, need $need" >&2; exit 1; }
echo "cli_shipped_model: $successes/$episodes seeded episodes succeeded (need $need)"
