#!/usr/bin/env bash
# The full recipe of vlascope's shipped small models (models/README.md records what it printed):
#   1. collect scripted demonstrations in the digital twin (high, low, fast, slow; one instruction)
#   2. pre-train the VLM on captions of those frames (a vocabulary with meaning)
#   3. train the VLA twice from that VLM: unfrozen VLM, and frozen VLM (expert only)
#   4. evaluate both on 50 unseen seeds
# Work files go to $WORK (default ./work); the two models to models/. Every stage resumes if re-run.
set -euo pipefail
cd "$(dirname "$0")/.."
./scripts/setup.sh
./scripts/build.sh
vlascope=./build/apps/vlascope
work=${WORK:-work}
episodes=${EPISODES:-400}
pretrain_steps=${PRETRAIN_STEPS:-900}
vla_steps=${VLA_STEPS:-1800}
mkdir -p "$work" models
start=$(date +%s)

$vlascope collect --out "$work/demos" --episodes "$episodes" --variants high,low,fast,slow --seed 0 --threads 2 \
  --resume --plot "$work/cube_height.png"
$vlascope pretrain-vlm --dataset "$work/demos" --out "$work/vlm" --steps "$pretrain_steps" --batch 16 --lr 3e-4 \
  --seed 0 --eval-every 100 --resume
for variant in unfrozen frozen; do
  flag=""; [ "$variant" = frozen ] && flag="--frozen-vlm"
  $vlascope train --dataset "$work/demos" --init "$work/vlm" --out "$work/vla_$variant" $flag --steps "$vla_steps" \
    --batch 16 --lr 3e-4 --seed 0 --eval-every 100 --resume
  $vlascope export --checkpoint "$work/vla_$variant" --out "models/smolvla_small_$variant" --dtypes lerobot
done
echo "recipe: $(( ($(date +%s) - start) / 60 )) min of training and collection"
for variant in unfrozen frozen; do
  $vlascope eval --checkpoint "models/smolvla_small_$variant" --episodes 50 --seed 100000 --videos 3 \
    --out "$work/eval_$variant"
done
