#!/usr/bin/env bash
# The full recipe of vlascope's shipped small models (models/README.md records what it printed):
#   1. collect scripted demonstrations in the digital twin (high, low, fast, slow; one instruction)
#   2. pre-train the VLM on captions of those frames (a vocabulary with meaning)
#   3. collect a second, larger set with execution noise (DART: the arm is pushed off its path while reaching,
#      the recorded action is the plan's, so the demonstrations show how to get back to the cube)
#   4. train the VLA twice on both sets together from the pre-trained VLM, side by side on one core each:
#      unfrozen VLM, and frozen VLM (expert only)
#   5. evaluate both on 50 unseen seeds
# Work files go to $WORK (default ./work); the two models to models/. Every stage resumes if re-run.
set -euo pipefail
cd "$(dirname "$0")/.."
./scripts/setup.sh
./scripts/build.sh
vlascope=${VLASCOPE:-./build/apps/vlascope}  # VLASCOPE: a snapshot of the binary, so rebuilding meanwhile is safe
work=${WORK:-work}
episodes=${EPISODES:-400}
dart_episodes=${DART_EPISODES:-800}
pretrain_steps=${PRETRAIN_STEPS:-1000}
vla_steps=${VLA_STEPS:-3000}
mkdir -p "$work" models
start=$(date +%s)

$vlascope collect --out "$work/demos" --episodes "$episodes" --variants high,low,fast,slow --seed 0 --threads 2 \
  --resume --plot "$work/cube_height.png"
$vlascope pretrain-vlm --dataset "$work/demos" --out "$work/vlm" --steps "$pretrain_steps" --batch 16 --lr 3e-4 \
  --seed 0 --eval-every 100 --resume
$vlascope collect --out "$work/demos_dart" --episodes "$dart_episodes" --variants high,low,fast,slow --seed 300000 \
  --threads 2 --execution-noise 0.08 --resume --plot "$work/cube_height_dart.png"
for variant in unfrozen frozen; do
  flag=""; [ "$variant" = frozen ] && flag="--frozen-vlm"
  $vlascope train --dataset "$work/demos,$work/demos_dart" --init "$work/vlm" --out "$work/vla_$variant" $flag \
    --steps "$vla_steps" --batch 16 --lr 3e-4 --seed 0 --eval-every 100 --threads 1 --resume \
    >"$work/train_$variant.log" 2>&1 &
done
wait %1 && wait %2 || { tail -n 5 "$work"/train_*.log; exit 1; }
tail -n 1 "$work"/train_*.log
for variant in unfrozen frozen; do
  $vlascope export --checkpoint "$work/vla_$variant" --out "models/smolvla_small_$variant" --dtypes lerobot
done
echo "recipe: $(( ($(date +%s) - start) / 60 )) min of collection and training"
for variant in unfrozen frozen; do
  $vlascope eval --checkpoint "models/smolvla_small_$variant" --episodes 50 --seed 100000 --videos 3 \
    --out "$work/eval_$variant"
done
