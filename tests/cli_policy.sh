#!/usr/bin/env bash
# End to end through the vlascope command on a tiny model trained on the spot: collect → pretrain-vlm → train
# (unfrozen and frozen) → export → eval → rollout --steer --live → attention → compare-attention → neurons →
# steer-experiment → report. Checks that every step writes what it promises and that the numbers parse.
set -euo pipefail
vlascope=$1
dir=$(mktemp -d)
trap 'rm -rf "$dir"' EXIT
fail() { echo "FAIL: $*" >&2; exit 1; }
json() { python3 -c "import json,sys; d=json.load(open('$1')); print($2)"; }

$vlascope collect --out "$dir/demos" --episodes 8 --variants high,low,fast,slow --size 64 --threads 2 >/dev/null 2>&1
$vlascope pretrain-vlm --dataset "$dir/demos" --out "$dir/vlm" --preset tiny --steps 6 --batch 4 --eval-every 3 \
  >"$dir/pretrain.txt" 2>&1 || { cat "$dir/pretrain.txt"; fail "pretrain-vlm"; }
grep -q "held-out next-word accuracy" "$dir/pretrain.txt" || fail "pretrain-vlm printed no accuracy"
[ -f "$dir/vlm/tokenizer.json" ] && [ -f "$dir/vlm/training/loss.png" ] || fail "pretrain-vlm files"
$vlascope train --dataset "$dir/demos" --init "$dir/vlm" --out "$dir/vla" --steps 6 --batch 4 --eval-every 3 \
  --save-every 3 >/dev/null 2>&1 || fail "train"
# Resume continues where the run stopped: 6 more steps on top of 6.
$vlascope train --dataset "$dir/demos" --init "$dir/vlm" --out "$dir/vla" --steps 12 --batch 4 --eval-every 3 \
  --resume >"$dir/resume.txt" 2>&1 || fail "train --resume"
grep -q "resuming at step 6" "$dir/resume.txt" || fail "train --resume did not resume: $(cat "$dir/resume.txt")"
[ "$(tail -n +2 "$dir/vla/training/loss.csv" | wc -l)" = 12 ] || fail "loss.csv should hold 12 steps"
$vlascope train --dataset "$dir/demos" --init "$dir/vlm" --out "$dir/vla_frozen" --frozen-vlm --steps 4 --batch 4 \
  >/dev/null 2>&1 || fail "train --frozen-vlm"
grep -q '"train_expert_only": true' "$dir/vla_frozen/config.json" || fail "frozen config"
$vlascope export --checkpoint "$dir/vla" --out "$dir/export" --dtypes lerobot >/dev/null || fail "export"
$vlascope inspect "$dir/export" --summary | grep -q "BF16" || fail "export has no bf16 tensors"

common="--sim-size 64 --max-seconds 2"
$vlascope eval --checkpoint "$dir/export" --episodes 2 --videos 1 --out "$dir/eval" $common >/dev/null 2>&1 || fail "eval"
[ "$(json "$dir/eval/eval.json" "d['episodes']")" = 2 ] || fail "eval.json"
[ -s "$dir/eval/episode_0.mp4" ] && [ -s "$dir/eval/ee_height.png" ] || fail "eval outputs"

$vlascope neurons --checkpoint "$dir/vla" --dataset "$dir/demos" --episodes 2 --stride 10 --set-size 3 \
  --out "$dir/neurons" >"$dir/neurons.txt" 2>&1 || { cat "$dir/neurons.txt"; fail "neurons"; }
[ "$(json "$dir/neurons/neuron_sets.json" "len(d['sets'])")" = 8 ] || fail "neurons: expected 4 lexical + 4 contrastive sets"
grep -q "^3,17," "$dir/neurons/top_tokens.csv" || fail "top_tokens.csv lacks layer 3 neuron 17"

$vlascope rollout --checkpoint "$dir/vla" --out "$dir/rollout" --steer high --sets "$dir/neurons/neuron_sets.json" \
  --alpha 4 --live $common >"$dir/rollout.txt" 2>&1 || { cat "$dir/rollout.txt"; fail "rollout --steer --live"; }
grep -q "steering: set high := 4" "$dir/rollout.txt" || fail "rollout did not steer"
[ -s "$dir/rollout/live.mp4" ] && [ -s "$dir/rollout/trajectory.csv" ] || fail "rollout outputs"

$vlascope attention --checkpoint "$dir/vla" --out "$dir/attention" --every 1 $common >/dev/null 2>&1 || fail "attention"
[ -s "$dir/attention/chunk_00.png" ] && [ -s "$dir/attention/attention.mp4" ] || fail "attention figures"
python3 - "$dir/attention/attention_summary.json" <<'PY' || fail "attention metrics"
import json, sys
d = json.load(open(sys.argv[1]))
m = d["metrics"]["scene"]["vlm"]["0"]["all"]
total = m["cube_mass"] + m["gripper_mass"] + m["arm_mass"] + m["background_mass"]
assert abs(total - 1) < 0.05, total          # the four classes cover the frame
assert 0 <= m["entropy"] <= 1
assert d["causal"]["chunks"] >= 1
PY
$vlascope compare-attention --a "$dir/vla_frozen" --b "$dir/vla" --episodes 1 --causal-cells 0 --out "$dir/cmp" \
  $common >/dev/null 2>&1 || fail "compare-attention"
[ "$(json "$dir/cmp/compare_attention.json" "len(d)")" = 2 ] || fail "compare_attention.json"

$vlascope steer-experiment --checkpoint "$dir/vla" --sets "$dir/neurons/neuron_sets.json" --rollouts 2 \
  --sweep "" --out "$dir/steer" $common >"$dir/steer.txt" 2>&1 || { cat "$dir/steer.txt"; fail "steer-experiment"; }
[ "$(json "$dir/steer/steer_report.json" "len(d['conditions'])")" = 8 ] || fail "steer: 8 conditions"
[ -s "$dir/steer/height_over_time.png" ] || fail "steer plots"
mkdir -p "$dir/report_root"
cp -r "$dir/eval" "$dir/report_root/eval_unfrozen"
cp -r "$dir/cmp" "$dir/report_root/compare_attention"
cp -r "$dir/attention" "$dir/neurons" "$dir/steer" "$dir/report_root/"
$vlascope report "$dir/report_root" >/dev/null || fail "report"
grep -q "Steering" "$dir/report_root/index.html" && grep -q "Concept neurons" "$dir/report_root/index.html" || fail "index.html"
echo "cli_policy: collect, pretrain, train (+resume, frozen), export, eval, rollout --steer --live, attention, compare, neurons, steer, report OK"
