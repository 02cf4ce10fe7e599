#!/usr/bin/env bash
# The two-stage recipe of vlascope's small models (models/README.md records what it printed). Five stages, as a
# real SmolVLA checkpoint is made and then fine-tuned by its user:
#   1. collect scripted demonstrations in the digital twin (high, low, fast, slow; one instruction), and a second,
#      larger set with execution noise (DART: the arm is pushed off its path while reaching, the recorded action is
#      the plan's, so the demonstrations show how to get back to the cube)
#   2. VLM pre-training on captions of the frames of both sets, half in paraphrases with synonyms (a vocabulary where
#      a concept is a cluster of words), half in the canonical wording (one word per place and state); the language
#      head is the input embedding (tied, as in SmolLM2-135M), so a word read and a word written are one direction
#   3. VLA pre-training from that VLM on both sets, each sample's instruction either a neutral wording of the task
#      or a paraphrase that names its episode's variant ("… lift it high", "gently grab the block and lift it"):
#      the words learn to ask for behaviour. This checkpoint is the positive control, smolvla_small_pretrained.
#   4. LeRobot-style fine-tuning from it on the same-prompt demonstrations (every one with the neutral instruction),
#      side by side on one core each: unfrozen VLM, and frozen VLM (train_expert_only)
#   5. export the three models and evaluate them on 50 unseen seeds each
# The VLA pre-training runs in four segments of PRETRAIN_STEPS (lr 3e-4, then 1e-4 three times, each with its own
# warm-up and cosine): that is how the shipped models were made (runs H, H2, H3, H4 of models/README.md), and each
# segment is a checkpoint to evaluate; success rose 23 → 54 → 68 → 78 % over the four.
# The vision encoder learns only from the captions (frozen in the VLA stages, as LeRobot trains). Every training
# image is shifted by up to SHIFT pixels (--augment-shift).
# Knobs (environment): EPISODES, DART_EPISODES, CAPTION_STEPS, PARAPHRASE, SHIFT, PRETRAIN_STEPS, FINETUNE_STEPS,
# INSTRUCTION_MIX, EMA, EVAL_EPISODES. With these defaults it is the recipe of the shipped models (models/README.md).
# Work files go to $WORK (default ./work); the models to $MODELS (default $WORK/models; the shipped models in models/
# are replaced only by hand, see models/README.md). Every stage resumes if re-run (--resume): an interrupted recipe
# loses at most the episode or the checkpoint interval in flight.
set -euo pipefail
cd "$(dirname "$0")/.."
./scripts/setup.sh
./scripts/build.sh
vlascope=${VLASCOPE:-./build/apps/vlascope}  # VLASCOPE: a snapshot of the binary, so rebuilding meanwhile is safe
work=${WORK:-work}
models=${MODELS:-$work/models}
episodes=${EPISODES:-400}
dart_episodes=${DART_EPISODES:-800}
caption_steps=${CAPTION_STEPS:-1500}
paraphrase=${PARAPHRASE:-0.5}
ema=${EMA:-0}  # --ema of the training stages (0: the last weights, as LeRobot saves them)
shift=${SHIFT:-8}
pretrain_steps=${PRETRAIN_STEPS:-3000}
finetune_steps=${FINETUNE_STEPS:-2000}
mix=${INSTRUCTION_MIX:-0.67}
eval_episodes=${EVAL_EPISODES:-50}
neutral="pick up the cube and lift it"
mkdir -p "$work" "$models"
start=$(date +%s)
stage() { echo "recipe: $1 at $(( ($(date +%s) - start) / 60 )) min"; }

stage "collect"
$vlascope collect --out "$work/demos" --episodes "$episodes" --variants high,low,fast,slow --seed 0 --threads 2 \
  --resume --plot "$work/cube_height.png"
$vlascope collect --out "$work/demos_dart" --episodes "$dart_episodes" --variants high,low,fast,slow --seed 300000 \
  --threads 2 --execution-noise 0.08 --resume --plot "$work/cube_height_dart.png"
stage "captions"
$vlascope pretrain-vlm --dataset "$work/demos,$work/demos_dart" --out "$work/vlm" --tie-embeddings \
  --paraphrase-fraction "$paraphrase" --augment-shift "$shift" --steps "$caption_steps" --batch 16 --lr 3e-4 --seed 0 \
  --eval-every 100 --resume
stage "VLA pre-training"
init="$work/vlm"
seeds=(0 2 3 5)  # of the segments H, H2, H3, H4 that made the shipped models
for segment in 1 2 3 4; do
  lr=1e-4; seed=${seeds[$((segment - 1))]}; [ $segment = 1 ] && lr=3e-4
  $vlascope train --dataset "$work/demos,$work/demos_dart" --init "$init" --out "$work/vla_pretrained_$segment" \
    --instruction-mix "$mix" --augment-shift "$shift" --steps "$pretrain_steps" --batch 16 --lr $lr --seed $seed \
    --ema "$ema" --eval-every 100 --threads 2 --resume
  init="$work/vla_pretrained_$segment"
done
rm -rf "$work/vla_pretrained" && cp -r "$init" "$work/vla_pretrained"
stage "fine-tuning"
for variant in unfrozen frozen; do
  flag=""; [ "$variant" = frozen ] && flag="--frozen-vlm"
  $vlascope train --dataset "$work/demos,$work/demos_dart" --init "$work/vla_pretrained" --out "$work/vla_$variant" \
    $flag --instruction "$neutral" --augment-shift "$shift" --steps "$finetune_steps" --batch 16 --lr 1e-4 \
    --seed 4 --ema "$ema" --eval-every 100 --threads 1 --resume >"$work/finetune_$variant.log" 2>&1 &
done
wait %1 && wait %2 || { tail -n 5 "$work"/finetune_*.log; exit 1; }
tail -n 1 "$work"/finetune_*.log
$vlascope export --checkpoint "$work/vla_pretrained" --out "$models/smolvla_small_pretrained" --dtypes lerobot
for variant in unfrozen frozen; do
  $vlascope export --checkpoint "$work/vla_$variant" --out "$models/smolvla_small_$variant" --dtypes lerobot
done
stage "done: collection and training"
for variant in pretrained unfrozen frozen; do
  $vlascope eval --checkpoint "$models/smolvla_small_$variant" --episodes "$eval_episodes" --seed 100000 --videos 3 \
    --out "$work/eval_$variant"
done
