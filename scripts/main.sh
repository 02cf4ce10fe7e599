#!/usr/bin/env bash
# The main job: the headline experiment on vlascope's shipped small models, in simulation. Installs what is missing,
# builds, then writes everything to ./out (or $OUT) with an index page, out/index.html:
#   eval_unfrozen/, eval_frozen/   closed-loop success, lift, length, videos (EPISODES seeded episodes each) of the two
#                                  models fine-tuned on same-prompt demonstrations (models/README.md)
#   prompts_pretrained/            the positive control: the VLA pre-trained checkpoint under the neutral, "high", "low",
#                                  "fast" and "slow" prompts — the words ask for a height and a speed
#   attention/                     where the unfrozen model looks: per-chunk figures, layers × heads grids, overlay video,
#                                  mass on cube / gripper / arm / background per layer and phase, causal check
#   compare_attention/             frozen vs unfrozen VLM on the same seeds, side by side
#   demos/                         a few labelled demonstrations (high, low, fast, slow) for the contrastive search
#   neurons/                       value vectors in the vocabulary; concept, contrastive and choice neuron sets
#   steer/                         the steering experiment: baseline, high, low, random, fast, slow, prompt baselines,
#                                  the positive control: "high" − the neutral prompt on the residual stream after layer
#                                  1, α 2 (up-high); and the word directions from the vocabulary (word-up, word-down,
#                                  word-fast, word-slow: the last word "it" swapped for the concept word), compared in
#                                  pairs (--pairs)
#   patch/                         activation patching: "… lift it high" written into the neutral prompt layer by layer
#                                  (VLM and expert) on the demonstrations' frames, beside a random patch of the same size
#   patch_episodes/                the same between a high and a low demonstration (same prompt, same task phase): the
#                                  scene camera's, the wrist camera's or the state token's embedding written in
#   sae/                           a TopK sparse autoencoder on the VLM's residual stream after layer 1 (image, word and
#                                  state rows of the demonstrations): held-out variance explained, the open-loop splice
#                                  check, and the features most tied to the lift phase, high vs low and fast vs slow
#   explorer.html                  one page over all of it: scrub the attention episodes, search neurons and features
# About 15 minutes on 2 cores once built (15.6 measured 2026-12-08 on a fresh clone; the build from empty adds 11; 14
# min on 2026-12-07 before the between-episode patching step, with batched rollouts, --batch 8 and 20 rollouts per
# steering condition).
set -euo pipefail
cd "$(dirname "$0")/.."
./scripts/setup.sh
./scripts/build.sh
out=${OUT:-out}
episodes=${EPISODES:-20}
rollouts=${ROLLOUTS:-20}
batch=${BATCH:-8}  # episodes in lock step with one batched policy call (interp/rollout.h)
unfrozen=models/smolvla_small_unfrozen
frozen=models/smolvla_small_frozen
pretrained=models/smolvla_small_pretrained
vlascope=./build/apps/vlascope
mkdir -p "$out"
start=$(date +%s)
$vlascope info

# "high" − neutral on the residual stream after layer 1, what the prompt writes where it acts (the positive control,
# models/README.md), and the word directions read from the vocabulary: the neutral prompt's last word "it" swapped
# for "high", "low", "fast", "slowly" after layer 0, compared in pairs.
added=up-high=prompt_up_resid1@2,word-up=word_up@1,word-down=word_down@1,word-fast=word_fast@1,word-slow=word_slow@1
pairs=word-up:word-down,word-fast:word-slow
directions="rise=pick up the cube and lift it high|pick up the cube and lift it low"
directions="$directions;speed=pick up the cube and lift it fast|pick up the cube and lift it slowly"
directions="$directions;up=pick up the cube and lift it high|pick up the cube and lift it"
# The demonstrations the neuron search, patching and the SAE read.
$vlascope collect --out "$out/demos" --episodes 48 --variants high,low,fast,slow --seed 50000 --threads 2 --resume
# The steering chain (neuron search → steering experiment) is the longest part; it runs in the background while
# everything else takes one thread in the foreground. Its log is printed after.
(
  $vlascope neurons --checkpoint $unfrozen --dataset "$out/demos" --episodes 8 --choice-episodes 4 --choice-samples 6 \
    --prompt-directions "$directions" --out "$out/neurons"
  $vlascope steer-experiment --checkpoint $unfrozen --sets "$out/neurons/neuron_sets.json" --rollouts "$rollouts" \
    --sweep 1,4,8 --sweep-rollouts 4 --seed 200000 --batch "$batch" --sim-threads 1 \
    --add-conditions "$added" --pairs "$pairs" --out "$out/steer"
) >"$out/steering.log" 2>&1 &
steering=$!
trap 'kill "$steering" 2>/dev/null || true' EXIT  # a failing foreground step must not leave the chain running
$vlascope eval --checkpoint $unfrozen --episodes "$episodes" --seed 100000 --videos 2 --threads 1 --batch "$batch" \
  --sim-threads 1 --out "$out/eval_unfrozen"
$vlascope eval --checkpoint $frozen --episodes "$episodes" --seed 100000 --videos 1 --threads 1 --batch "$batch" \
  --sim-threads 1 --out "$out/eval_frozen"
$vlascope steer-experiment --checkpoint $pretrained --rollouts "$rollouts" --sweep "" --seed 200000 --batch "$batch" \
  --sim-threads 1 --threads 1 --out "$out/prompts_pretrained"
$vlascope attention --checkpoint $unfrozen --episodes 2 --seed 100000 --threads 1 --out "$out/attention"
$vlascope compare-attention --a $frozen --a-name frozen --b $unfrozen --b-name unfrozen --episodes 3 \
  --seed 100000 --causal-every 2 --threads 1 --out "$out/compare_attention"
$vlascope patch --checkpoint $unfrozen --dataset "$out/demos" --episodes 4 --stride 15 --threads 1 --out "$out/patch"
$vlascope patch --checkpoint $unfrozen --dataset "$out/demos" --episodes 4 --stride 15 --threads 1 --layers "" \
  --source-variant high --target-variant low --specs "vlm.embed@images:scene;vlm.embed@images:wrist;vlm.embed@state" \
  --out "$out/patch_episodes"
$vlascope sae capture --checkpoint $unfrozen --dataset "$out/demos" --hook "vlm.layers.1.resid.post@images+words+state" \
  --stride 15 --threads 1 --out "$out/sae/store"
$vlascope sae train --store "$out/sae/store" --k 32 --features 768 --steps 1500 --threads 1 --out "$out/sae"
$vlascope sae eval --sae "$out/sae" --store "$out/sae/store" --checkpoint $unfrozen --dataset "$out/demos" --episodes 4 \
  --stride 15 --threads 1 --out "$out/sae"
$vlascope sae features --sae "$out/sae" --store "$out/sae/store" --checkpoint $unfrozen --threads 1 --out "$out/sae"
echo "waiting for the steering experiment (progress: $out/steering.log)"
status=0
wait $steering || status=$?
trap - EXIT
tr '\r' '\n' <"$out/steering.log" | grep -v '^[a-z /()]* \[[#.]*\]' || true  # without its progress bars
[ $status -eq 0 ] || { echo "main: the steering chain failed (exit $status)" >&2; exit $status; }
$vlascope report "$out"
echo "main job done in $(( ($(date +%s) - start) / 60 )) min: open $out/index.html"
