#!/usr/bin/env bash
# The main job: installs, builds, then collects and renders a few scripted demonstrations in simulation.
# Results go to ./out (or $OUT):
#   demos/                  8 expert episodes (2 per variant: high, low, fast, slow), 128² scene + wrist images
#                           with segmentation, HDF5 (dataset/README.md)
#   cube_height.png         cube height over time per episode, coloured by variant
#   replay_deviation.png    replaying the recorded actions in simulation: end-effector deviation per frame
#   render/episode_N/       PNG frames + MP4 of demos 0–3 (RGB beside segmentation)
#   render/nice_high/       a fresh "high" demonstration rendered in the nice mode (shadows, reflections)
#   tracking.png            joint targets vs joints of one expert episode (sim-check also prints success, lift,
#                           duration and servo tracking per variant over 20 headless episodes each)
# Running it again keeps the existing demos (collect --resume) and re-renders.
set -euo pipefail
cd "$(dirname "$0")/.."
./scripts/setup.sh
./scripts/build.sh
out=${OUT:-out}
mkdir -p "$out"
vlascope=./build/apps/vlascope
$vlascope info
$vlascope sim-check --episodes 20 --threads 2 --plot "$out/tracking.png"
$vlascope collect --out "$out/demos" --episodes 8 --variants high,low,fast,slow --seed 0 --size 128 \
  --segmentation --threads 2 --resume --plot "$out/cube_height.png"
$vlascope dataset-info "$out/demos"
$vlascope replay "$out/demos" --plot "$out/replay_deviation.png" --strict
for episode in 0 1 2 3; do
  $vlascope render --dataset "$out/demos" --episode $episode --out "$out/render/episode_$episode" --stride 15
done
$vlascope render --variant high --seed 1000 --size 320x240 --quality nice --depth --stride 30 \
  --out "$out/render/nice_high"
echo "main job done: results in $out/"
