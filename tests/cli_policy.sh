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
# --ema: the checkpoint holds the moving average (not the live weights the resumable state keeps), and a run resumed
# halfway writes the same average as one that never stopped.
ema="--dataset $dir/demos --init $dir/vlm --steps 4 --batch 4 --eval-every 2 --save-every 2 --threads 1 --ema 0.9"
# shellcheck disable=SC2086
$vlascope train $ema --out "$dir/ema_once" >/dev/null 2>&1 || fail "train --ema"
# shellcheck disable=SC2086
$vlascope train $ema --out "$dir/ema_twice" --max-minutes 1e-9 >/dev/null 2>&1 || fail "train --ema (stopped)"
[ "$(json "$dir/ema_twice/training/state/step.json" "d['step']")" = 1 ] || fail "the budget should stop after a step"
# Resuming with another decay must stop with the file's name, and leave the state to resume properly.
# shellcheck disable=SC2086
if $vlascope train ${ema% --ema 0.9} --ema 0.5 --out "$dir/ema_twice" --resume >"$dir/bad.txt" 2>&1; then
  fail "resuming an --ema 0.9 run with --ema 0.5 must fail"
fi
grep -q "ema.pt averages with --ema 0.9" "$dir/bad.txt" || fail "changed --ema on resume: $(cat "$dir/bad.txt")"
# shellcheck disable=SC2086
$vlascope train $ema --out "$dir/ema_twice" --resume >/dev/null 2>&1 || fail "train --ema --resume"
cmp -s "$dir/ema_once/model.safetensors" "$dir/ema_twice/model.safetensors" || fail "a resumed --ema run differs"
! cmp -s "$dir/ema_once/model.safetensors" "$dir/ema_once/training/state/model.safetensors" ||
  fail "--ema saved the live weights"
[ -s "$dir/ema_once/training/state/ema.pt" ] || fail "--ema keeps no average in the resumable state"
# Shifted training images: a different run from the unshifted one, and the same on a rerun.
for run in a b; do
  $vlascope train --dataset "$dir/demos" --init "$dir/vlm" --out "$dir/shift_$run" --steps 2 --batch 4 --threads 1 \
    --augment-shift 6 >/dev/null 2>&1 || fail "train --augment-shift"
done
cmp -s "$dir/shift_a/model.safetensors" "$dir/shift_b/model.safetensors" || fail "--augment-shift is not reproducible"
$vlascope train --dataset "$dir/demos" --init "$dir/vlm" --out "$dir/shift_none" --steps 2 --batch 4 --threads 1 \
  >/dev/null 2>&1 || fail "train without shifts"
! cmp -s "$dir/shift_a/model.safetensors" "$dir/shift_none/model.safetensors" || fail "--augment-shift changed nothing"
$vlascope pretrain-vlm --dataset "$dir/demos" --out "$dir/vlm_shift" --preset tiny --steps 2 --batch 4 --augment-shift 6 \
  --tie-embeddings --paraphrase-fraction 0.5 >/dev/null 2>&1 || fail "pretrain-vlm --augment-shift --tie-embeddings"
grep -q '"tie_word_embeddings": true' "$dir/vlm_shift/vlm_config.json" || fail "pretrain-vlm --tie-embeddings"
if $vlascope train --dataset "$dir/demos" --init "$dir/vlm" --out "$dir/shift_bad" --steps 1 --augment-shift -2 \
  >"$dir/bad.txt" 2>&1; then fail "a negative --augment-shift must fail"; fi
grep -q -- "--augment-shift" "$dir/bad.txt" || fail "the error names no flag: $(cat "$dir/bad.txt")"
if $vlascope train --dataset "$dir/demos" --init "$dir/vlm" --out "$dir/shift_big" --steps 1 --augment-shift 4000 \
  >"$dir/bad.txt" 2>&1; then fail "a shift larger than the image must fail"; fi
grep -q -- "--augment-shift 4000: the model's images are" "$dir/bad.txt" || fail "shift too large: $(cat "$dir/bad.txt")"
if $vlascope pretrain-vlm --dataset "$dir/demos" --out "$dir/vlm_both" --preset tiny --steps 1 --canonical-captions \
  --paraphrase-fraction 0.5 >"$dir/bad.txt" 2>&1; then fail "--canonical-captions with a paraphrase fraction must fail"; fi
grep -q -- "--canonical-captions means" "$dir/bad.txt" || fail "conflicting caption flags: $(cat "$dir/bad.txt")"
$vlascope train --dataset "$dir/demos" --init "$dir/vlm" --out "$dir/vla_frozen" --frozen-vlm --steps 4 --batch 4 \
  >/dev/null 2>&1 || fail "train --frozen-vlm"
grep -q '"train_expert_only": true' "$dir/vla_frozen/config.json" || fail "frozen config"
# The two-stage recipe: VLA pre-training on mixed instructions, then same-prompt fine-tuning from that checkpoint.
$vlascope train --dataset "$dir/demos" --init "$dir/vlm" --out "$dir/vla_mix" --instruction-mix 0.67 --steps 3 \
  --batch 4 >/dev/null 2>&1 || fail "train --instruction-mix"
$vlascope train --dataset "$dir/demos" --init "$dir/vla_mix" --out "$dir/vla_ft" --frozen-vlm \
  --instruction "pick up the cube and lift it" --steps 2 --batch 4 --warmup 1 >/dev/null 2>&1 ||
  fail "fine-tuning from a VLA checkpoint"
[ -s "$dir/vla_ft/model.safetensors" ] || fail "fine-tuned model"
for bad in "--instruction-mix 1.5" "--instruction-mix 0.5 --instruction lift"; do
  # shellcheck disable=SC2086
  if $vlascope train --dataset "$dir/demos" --init "$dir/vlm" --out "$dir/vla_bad" --steps 1 $bad \
    >"$dir/bad.txt" 2>&1; then fail "train $bad must fail"; fi
  grep -q -- "--instruction" "$dir/bad.txt" || fail "train $bad: the error names no flag: $(cat "$dir/bad.txt")"
done
$vlascope export --checkpoint "$dir/vla" --out "$dir/export" --dtypes lerobot >/dev/null || fail "export"
$vlascope inspect "$dir/export" --summary | grep -q "BF16" || fail "export has no bf16 tensors"

common="--sim-size 64 --max-seconds 2"
$vlascope eval --checkpoint "$dir/export" --episodes 2 --videos 1 --out "$dir/eval" $common >/dev/null 2>&1 || fail "eval"
[ "$(json "$dir/eval/eval.json" "d['episodes']")" = 2 ] || fail "eval.json"
[ -s "$dir/eval/episode_0.mp4" ] && [ -s "$dir/eval/ee_height.png" ] || fail "eval outputs"
# Batched lock-step episodes: every episode once, videos of the first ones, and the same numbers on a rerun.
for run in b1 b2; do
  $vlascope eval --checkpoint "$dir/export" --episodes 4 --videos 2 --batch 3 --sim-threads 2 --out "$dir/eval_$run" \
    $common >"$dir/eval_$run.txt" 2>&1 || { cat "$dir/eval_$run.txt"; fail "eval --batch"; }
done
[ "$(json "$dir/eval_b1/eval.json" "(d['episodes'], d['batch'], [e['seed'] for e in d['per_episode']])")" = \
  "(4, 3, [100000, 100001, 100002, 100003])" ] || fail "eval --batch: episodes"
[ -s "$dir/eval_b1/episode_1.mp4" ] && [ ! -e "$dir/eval_b1/episode_2.mp4" ] || fail "eval --batch: videos"
cmp <(cut -d, -f1-9 "$dir/eval_b1/episodes.csv") <(cut -d, -f1-9 "$dir/eval_b2/episodes.csv") ||
  fail "eval --batch: a rerun differs"
$vlascope eval --checkpoint "$dir/export" --episodes 2 --batch 2 --robot so100 --port /dev/null --out "$dir/eval_bad" \
  >"$dir/eval_bad.txt" 2>&1 && fail "eval --batch on the real arm must fail"
grep -q -- "--batch 2 needs --robot sim" "$dir/eval_bad.txt" || fail "eval --batch on the real arm must name --batch"
# Options are checked before anything runs, each error naming its option.
for bad in "--camera-map scene=nose|camera 'nose' but the robot (sim) has \[scene, wrist\].*--camera-map" \
  "--max-seconds 0|--max-seconds must be > 0" "--seed -5|--seed must be ≥ 0" "--videos -1|--videos must be ≥ 0"; do
  $vlascope eval --checkpoint "$dir/export" --episodes 1 ${bad%%|*} --out "$dir/eval_bad" >"$dir/eval_bad.txt" 2>&1 &&
    fail "eval ${bad%%|*} must fail"
  grep -q -- "${bad#*|}" "$dir/eval_bad.txt" || fail "eval ${bad%%|*}: $(cat "$dir/eval_bad.txt")"
  [ -z "$(ls "$dir/eval_bad/rollouts" 2>/dev/null)" ] || fail "eval ${bad%%|*} ran episodes before failing"
  rm -rf "$dir/eval_bad"
done
# Shards and merge: two shards combine into exactly the per-episode results of one unsharded run; a resumed run keeps
# its finished episodes; merge refuses parts of another experiment and names a missing shard.
e4="--checkpoint $dir/export --episodes 4 --videos 0 $common"
$vlascope eval $e4 --out "$dir/eval_whole" >/dev/null 2>&1 || fail "eval (unsharded)"
for k in 0 1; do
  $vlascope eval $e4 --shard $k/2 --out "$dir/eval_shard_$k" >/dev/null 2>&1 || fail "eval --shard $k/2"
done
[ "$(ls "$dir/eval_shard_1/rollouts")" = "$(printf 'episode_1.json\nepisode_3.json')" ] || fail "shard 1/2 episodes"
$vlascope merge --parts "$dir/eval_shard_0,$dir/eval_shard_1" --out "$dir/eval_merged" >"$dir/merge.txt" 2>&1 ||
  { cat "$dir/merge.txt"; fail "merge"; }
per_episode="[{k: v for k, v in e.items() if k not in ('wall_seconds', 'model_seconds')} for e in d['per_episode']]"
[ "$(json "$dir/eval_merged/eval.json" "$per_episode")" = "$(json "$dir/eval_whole/eval.json" "$per_episode")" ] ||
  fail "merged shards differ from the unsharded run"
[ -s "$dir/eval_merged/ee_height.png" ] || fail "merge plots"
rm "$dir/eval_whole/rollouts/episode_2.json"
$vlascope eval $e4 --resume --out "$dir/eval_whole" >"$dir/resume.txt" 2>&1 || { cat "$dir/resume.txt"; fail "eval --resume"; }
grep -q "resume: 3 finished episodes kept" "$dir/resume.txt" || fail "eval --resume kept $(cat "$dir/resume.txt")"
[ "$(json "$dir/eval_whole/eval.json" "$per_episode")" = "$(json "$dir/eval_merged/eval.json" "$per_episode")" ] ||
  fail "a resumed run differs"
$vlascope eval $e4 --max-seconds 1 --shard 1/2 --out "$dir/eval_other" >/dev/null 2>&1 || fail "eval (other options)"
$vlascope merge --parts "$dir/eval_shard_0,$dir/eval_other" --out "$dir/eval_bad_merge" >"$dir/merge_bad.txt" 2>&1 &&
  fail "merge of two experiments must fail"
grep -q "eval_other/run.json is from another experiment.*'options'" "$dir/merge_bad.txt" ||
  fail "merge must name the part and the field: $(cat "$dir/merge_bad.txt")"
$vlascope merge --parts "$dir/eval_shard_0" --out "$dir/eval_bad_merge" >"$dir/merge_bad.txt" 2>&1 &&
  fail "merge without shard 1 must fail"
grep -q "shard 1/2 is missing" "$dir/merge_bad.txt" || fail "merge must name the missing shard"
# --workers 2: the same two shards as processes of one command, merged at its end: the per-episode results equal the
# unsharded run's; the videos come to <out>; a second run with --resume runs nothing again; a failing worker is an
# error naming its log.
$vlascope eval $e4 --videos 1 --workers 2 --out "$dir/eval_workers" >"$dir/workers.txt" 2>&1 ||
  { cat "$dir/workers.txt"; fail "eval --workers 2"; }
grep -q "eval: 4 rollouts in .* (2 workers); merged into" "$dir/workers.txt" || fail "eval --workers: $(cat "$dir/workers.txt")"
[ "$(json "$dir/eval_workers/eval.json" "$per_episode")" = "$(json "$dir/eval_whole/eval.json" "$per_episode")" ] ||
  fail "eval --workers 2 differs from the unsharded run"
[ -s "$dir/eval_workers/episode_0.mp4" ] && [ ! -e "$dir/eval_workers/episode_1.mp4" ] || fail "eval --workers: videos"
[ "$(json "$dir/eval_workers/run.json" "d['shard']")" = "merged from 2" ] || fail "eval --workers: run.json"
$vlascope eval $e4 --videos 1 --workers 2 --resume --out "$dir/eval_workers" >"$dir/workers.txt" 2>&1 ||
  { cat "$dir/workers.txt"; fail "eval --workers 2 --resume"; }
grep -q "eval: 0 rollouts in" "$dir/workers.txt" || fail "eval --workers --resume ran again: $(cat "$dir/workers.txt")"
for k in 0 1; do
  grep -q "resume: 2 finished episodes kept" "$dir/eval_workers/workers/shard_$k.log" ||
    fail "worker $k did not resume: $(cat "$dir/eval_workers/workers/shard_$k.log")"
done
$vlascope eval --checkpoint "$dir/nowhere" --episodes 2 --workers 2 --out "$dir/eval_workers_bad" \
  >"$dir/workers_bad.txt" 2>&1 && fail "eval --workers with a missing checkpoint must fail"
grep -q "worker [01]/2 failed (exit status 1); its log .*/shard_[01].log ends:" "$dir/workers_bad.txt" &&
  grep -q "nowhere" "$dir/workers_bad.txt" || fail "a failed worker must be named with its log: $(cat "$dir/workers_bad.txt")"
$vlascope eval $e4 --workers 2 --shard 0/2 --out "$dir/eval_workers_bad" >"$dir/workers_bad.txt" 2>&1 &&
  fail "--workers with --shard must fail"
grep -q -- "--workers splits the run into shards itself" "$dir/workers_bad.txt" || fail "--workers with --shard: message"

$vlascope neurons --checkpoint "$dir/vla" --dataset "$dir/demos" --episodes 2 --stride 10 --set-size 3 \
  --choice-episodes 2 --choice-stride 10 --choice-samples 4 \
  --out "$dir/neurons" >"$dir/neurons.txt" 2>&1 || { cat "$dir/neurons.txt"; fail "neurons"; }
# One residual prompt direction per measured layer and prompt pair, on the images, the last word and the state.
resid_layers=$(json "$dir/neurons/prompt_directions.json" "len(d['prompt_rise']['resid_sets'])")
[ "$resid_layers" -ge 1 ] || fail "neurons: no residual prompt directions"
[ "$(json "$dir/neurons/neuron_sets.json" "len(d['sets'])")" = $((26 + 2 * resid_layers)) ] ||
  fail "neurons: expected 4 lexical + 4 semantic + 4 word + 4 contrastive + 4 choice sets + 2 directions + 2 × 2 prompt directions + 2 × $resid_layers residual ones"
[ "$(json "$dir/neurons/word_directions.json" "sorted(d)")" = "['word_down', 'word_fast', 'word_slow', 'word_up']" ] || fail "neurons: word_directions.json"
[ "$(json "$dir/neurons/word_directions.json" "sorted(d['word_up']['sets']) == sorted(s['name'] for s in json.load(open('$dir/neurons/neuron_sets.json'))['sets'] if s['name'] in ('high', 'low', 'fast', 'slow') or s['name'].endswith('_semantic'))")" = True ] ||
  fail "neurons: word_directions.json should compare every lexical and semantic set"
[ "$(json "$dir/neurons/neuron_sets.json" "sorted({(n.get('site'), n.get('tokens')) for s in d['sets'] if '_resid' in s['name'] for n in s['neurons']})")" = \
  "[('resid.post', 'images'), ('resid.post', 'last_word'), ('resid.post', 'state')]" ] ||
  fail "neurons: residual prompt directions must act on resid.post at the images, the last word and the state"
[ "$(json "$dir/neurons/neuron_sets.json" "sorted(s['name'] for s in d['sets'] if '_' in s['name'] and 'contrast' not in s['name'] and 'semantic' not in s['name'] and '_resid' not in s['name'] and not s['name'].startswith('word_'))")" = \
  "['fast_choice', 'high_choice', 'low_choice', 'prompt_rise', 'prompt_rise_tokens', 'prompt_speed', 'prompt_speed_tokens', 'rise_direction', 'slow_choice', 'speed_direction']" ] ||
  fail "neurons: choice and direction set names"
[ "$(json "$dir/neurons/neuron_sets.json" "all(n.get('weight', 1) != 1 for s in d['sets'] if s['name'] in ('rise_direction', 'prompt_rise') for n in s['neurons'])")" = True ] ||
  fail "neurons: rise_direction or prompt_rise is not weighted"
[ "$(json "$dir/neurons/prompt_directions.json" "sorted(d)")" = "['prompt_rise', 'prompt_speed']" ] || fail "neurons: prompt_directions.json"
[ "$(json "$dir/neurons/neuron_sets.json" "sorted({n.get('tokens', 'all') for s in d['sets'] if s['name'] == 'prompt_rise_tokens' for n in s['neurons']})")" = \
  "['images', 'state', 'words']" ] || fail "neurons: prompt_rise_tokens should act per kind of row"
[ "$(json "$dir/neurons/choices.json" "sorted(d)")" = "['rise', 'speed']" ] || fail "neurons: choices.json"
[ -s "$dir/neurons/choice_rise.csv" ] && [ -s "$dir/neurons/choice_speed.csv" ] || fail "neurons: choice CSVs"
grep -q "choice contrast (rise, speed)" "$dir/neurons.txt" || fail "neurons: rise and speed did not share one pass"
grep -q "^3,17," "$dir/neurons/top_tokens.csv" || fail "top_tokens.csv lacks layer 3 neuron 17"
# The lexical and semantic sets restricted to chosen layers and rows (logit lens only: no dataset); unrestricted,
# some of them lie elsewhere, so the check below can fail.
[ "$(json "$dir/neurons/neuron_sets.json" "any(n['layer'] > 1 for s in d['sets'] if s['name'] in ('high', 'low', 'fast', 'slow', 'high_semantic', 'low_semantic') for n in s['neurons'])")" = True ] ||
  fail "neurons: every unrestricted lexical neuron is in layers 0–1, so --lexical-layers is not tested"
$vlascope neurons --checkpoint "$dir/vla" --set-size 3 --lexical-layers 0,1 --lexical-tokens last_word --choices "" \
  --out "$dir/neurons01" >"$dir/neurons01.txt" 2>&1 || { cat "$dir/neurons01.txt"; fail "neurons --lexical-layers"; }
[ "$(json "$dir/neurons01/neuron_sets.json" "sorted({(n['layer'], n.get('tokens')) for s in d['sets'] for n in s['neurons']} - {(0, 'last_word'), (1, 'last_word')})")" = "[]" ] ||
  fail "neurons --lexical-layers 0,1 --lexical-tokens last_word: a set has a neuron elsewhere"
[ "$(json "$dir/neurons01/neuron_sets.json" "all('VLM layers 0 1; acting on the last_word rows' in s['provenance']['method'] for s in d['sets'] if not s['name'].startswith('word_'))")" = True ] ||
  fail "neurons --lexical-layers: the provenance does not say what was restricted"
$vlascope neurons --checkpoint "$dir/vla" --lexical-layers 9 --choices "" --out "$dir/neurons_bad" >"$dir/neurons_bad.txt" 2>&1 &&
  fail "neurons accepted a layer the VLM lacks"
grep -q -- "--lexical-layers: 9 names a layer the VLM lacks" "$dir/neurons_bad.txt" || { cat "$dir/neurons_bad.txt"; fail "neurons: unclear error for a bad layer"; }
$vlascope neurons --checkpoint "$dir/vla" --word-directions "up=high|aloftz" --choices "" --out "$dir/neurons_bad" \
  >"$dir/neurons_bad.txt" 2>&1 && fail "neurons accepted a word the vocabulary lacks"
grep -q -- "--word-directions: 'up=high|aloftz': .*'aloftz' is not one token" "$dir/neurons_bad.txt" ||
  { cat "$dir/neurons_bad.txt"; fail "neurons: unclear error for an unknown word"; }
$vlascope neurons --checkpoint "$dir/vla" --word-directions "up=high|it;up=low|it" --choices "" --out "$dir/neurons_bad" \
  >"$dir/neurons_bad.txt" 2>&1 && fail "neurons accepted one word direction name twice"
grep -q -- "the name 'up' is given twice" "$dir/neurons_bad.txt" || { cat "$dir/neurons_bad.txt"; fail "neurons: duplicate name error"; }

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
# The aggregation flags: one expert layer, max over heads, one denoising step, the action tokens as the query.
$vlascope attention --checkpoint "$dir/vla" --out "$dir/attention_flags" --every 1 --query actions --heads max \
  --expert-layers 0 --step 2 --causal-cells 0 $common >"$dir/attention_flags.txt" 2>&1 \
  || { cat "$dir/attention_flags.txt"; fail "attention --query actions --heads max --expert-layers 0 --step 2"; }
[ -s "$dir/attention_flags/chunk_00.png" ] && [ -s "$dir/attention_flags/chunk_00_expert_layers_heads.png" ] \
  || fail "attention flags stills"
[ ! -e "$dir/attention_flags/chunk_00_vlm_layers_heads.png" ] || fail "--query actions should leave the VLM out"
python3 - "$dir/attention/chunk_00_vlm_layers_heads.png" <<'PY' || fail "attention overlay"
import struct, sys, zlib
def read_png(path):  # 8-bit RGB, non-interlaced: what OpenCV writes
    data = open(path, "rb").read()
    assert data[:8] == b"\x89PNG\r\n\x1a\n"
    pos, idat = 8, b""
    while pos < len(data):
        n, kind = struct.unpack(">I4s", data[pos:pos + 8])
        if kind == b"IHDR":
            w, h, depth, colour = struct.unpack(">IIBB", data[pos + 8:pos + 18])
            assert depth == 8 and colour == 2, (depth, colour)
        elif kind == b"IDAT":
            idat += data[pos + 8:pos + 8 + n]
        pos += 12 + n
    raw, stride, out, prev = zlib.decompress(idat), 3 * w + 1, [], bytearray(3 * w)
    for y in range(h):
        f, line = raw[y * stride], bytearray(raw[y * stride + 1:(y + 1) * stride])
        for i in range(len(line)):
            a, b, c = (line[i - 3] if i >= 3 else 0), prev[i], (prev[i - 3] if i >= 3 else 0)
            p = a + b - c
            pred = [0, a, b, (a + b) // 2,
                    a if abs(p - a) <= abs(p - b) and abs(p - a) <= abs(p - c) else b if abs(p - b) <= abs(p - c) else c][f]
            line[i] = (line[i] + pred) & 255
        out.append(bytes(line))
        prev = line
    return w, h, out
w, h, rows = read_png(sys.argv[1])
# Every thumbnail overlays one head's map on the same scene frame. The figure is not uniform, and thumbnails
# differ from one another, so the overlay depends on the map: at most one of them can equal the raw frame.
pixels = {rows[y][3 * x:3 * x + 3] for y in range(0, h, 2) for x in range(0, w, 2)}
assert len(pixels) > 200, f"layers x heads figure nearly uniform: {len(pixels)} colours"
band = range(h // 4, 3 * h // 4)
tiles = [b"".join(rows[y][3 * x0:3 * (x0 + 90)] for y in band) for x0 in range(0, w - 90, 100)]
assert len(set(tiles)) > 1, "every thumbnail identical: the overlay does not depend on the map"
PY
$vlascope compare-attention --a "$dir/vla_frozen" --b "$dir/vla" --episodes 2 --causal-cells 2 --out "$dir/cmp" \
  $common >/dev/null 2>&1 || fail "compare-attention"
[ "$(json "$dir/cmp/compare_attention.json" "len(d)")" = 2 ] || fail "compare_attention.json"
python3 - "$dir/cmp/compare_attention_tests.json" <<'PY' || fail "compare-attention tests"
import json, sys
d = json.load(open(sys.argv[1]))
t = d["metrics"]["scene"]["vlm"]["all"]["cube_mass"]
assert t["n_a"] == 2 and t["n_b"] == 2, t
assert 0 <= t["mann_whitney_p"] <= 1
assert t["welch_p"] is None or 0 <= t["welch_p"] <= t["welch_p_holm"] <= 1
assert d["causal_effect"] is not None
PY
[ -s "$dir/cmp/causal_effect.png" ] || fail "causal_effect.png"

$vlascope steer-experiment --checkpoint "$dir/vla" --sets "$dir/neurons/neuron_sets.json" --rollouts 2 --batch 2 \
  --sweep "" --out "$dir/steer" $common >"$dir/steer.txt" 2>&1 || { cat "$dir/steer.txt"; fail "steer-experiment"; }
[ "$(json "$dir/steer/steer_report.json" "len(d['conditions'])")" = 10 ] ||
  fail "steer: 10 conditions (baseline, 4 prompts, 4 sets, random)"
[ "$(json "$dir/steer/steer_report.json" "'prompt_high_vs_low_mean_height_cm' in d and 'prompt_fast_over_slow_step_displacement_mm' in d")" = True ] ||
  fail "steer: prompt contrasts"
$vlascope steer-experiment --checkpoint "$dir/vla" --sets "$dir/neurons/neuron_sets.json" --rollouts 1 --op add \
  --high rise_direction@2 --low rise_direction@-2 --fast "" --slow "" --prompt-high "" --prompt-low "" \
  --prompt-fast "" --prompt-slow "" --add-conditions caa-high=prompt_rise@1,caa-low=prompt_rise@-1,word-up=word_up@1 \
  --pairs caa-high:caa-low,word-up:baseline --target lift:0.05 --closed-loop cl-high=prompt_rise --sweep "" --out "$dir/steer_dir" $common >"$dir/steer_dir.txt" 2>&1 ||
  { cat "$dir/steer_dir.txt"; fail "steer-experiment with a direction"; }
[ "$(json "$dir/steer_dir/steer_report.json" "d['conditions']['low']['interventions'][0]['alpha']")" = -2.0 ] ||
  fail "steer: SET@ALPHA"
[ "$(json "$dir/steer_dir/steer_report.json" "(d['conditions']['caa-low']['interventions'][0]['alpha'], d['conditions']['caa-low']['interventions'][0]['op'])")" = "(-1.0, 'add')" ] ||
  fail "steer: --add-conditions"
[ "$(json "$dir/steer_dir/steer_report.json" "sorted(d['pairs']) == ['caa-high:caa-low', 'word-up:baseline'] and 'mean_height_cm' in d['pairs']['word-up:baseline'] and 'lift_speed_cm_s' in d['pairs']['word-up:baseline']")" = True ] ||
  fail "steer: --pairs"
$vlascope steer-experiment --checkpoint "$dir/vla" --sets "$dir/neurons/neuron_sets.json" --pairs high:nope --rollouts 1 \
  --out "$dir/steer_bad" $common >"$dir/steer_bad.txt" 2>&1 && fail "steer: --pairs naming no condition must fail"
grep -q -- "--pairs: 'nope' (in high:nope) is not a condition of this run" "$dir/steer_bad.txt" ||
  fail "steer: --pairs error: $(cat "$dir/steer_bad.txt")"
[ "$(json "$dir/steer_dir/steer_report.json" "all('concept_error' in c for c in d['conditions'].values()) and 'alpha_while_acting' in d['conditions']['cl-high']")" = True ] ||
  fail "steer: --target and --closed-loop"
[ -s "$dir/steer_dir/alpha_trace_cl-high.png" ] || fail "steer: the closed loop's α trace"
$vlascope steer-experiment --checkpoint "$dir/vla" --sets "$dir/neurons/neuron_sets.json" --closed-loop cl=prompt_rise \
  --rollouts 1 --out "$dir/steer_bad" $common >"$dir/steer_bad.txt" 2>&1 && fail "steer: --closed-loop without --target must fail"
grep -q -- "--closed-loop needs --target" "$dir/steer_bad.txt" || fail "steer: --closed-loop without --target: $(cat "$dir/steer_bad.txt")"
$vlascope steer-experiment --checkpoint "$dir/vla" --add-conditions caa=nope@1 --rollouts 1 --out "$dir/steer_bad" \
  $common >"$dir/steer_bad.txt" 2>&1 && fail "steer: --add-conditions without --sets must fail"
$vlascope steer-experiment --checkpoint "$dir/vla" --rollouts 1 --sweep "" --out "$dir/steer_prompts" $common \
  >"$dir/steer_prompts.txt" 2>&1 || { cat "$dir/steer_prompts.txt"; fail "steer-experiment without --sets"; }
[ "$(json "$dir/steer_prompts/steer_report.json" "sorted(d['conditions'])")" = \
  "['baseline', 'prompt-fast', 'prompt-high', 'prompt-low', 'prompt-slow']" ] || fail "steer: prompt-following study"
[ -s "$dir/steer/height_over_time.png" ] || fail "steer plots"
# A sharded steering sweep (conditions and α sweep, 10 rollouts in 2 shards) merges into the unsharded run's report;
# a resumed shard runs nothing twice; merge refuses a part of another experiment.
s4=(--checkpoint "$dir/vla" --sets "$dir/neurons/neuron_sets.json" --rollouts 2 --sweep 2 --sweep-rollouts 1 --fast ""
  --slow "" --prompt-high "" --prompt-low "" --prompt-fast "" --prompt-slow "" $common)
steer4() { $vlascope steer-experiment "${s4[@]}" "$@"; }
steer4 --out "$dir/steer_whole" >"$dir/steer_whole.txt" 2>&1 || { cat "$dir/steer_whole.txt"; fail "steer (unsharded)"; }
for k in 0 1; do
  steer4 --shard $k/2 --out "$dir/steer_shard_$k" >"$dir/steer_shard.txt" 2>&1 ||
    { cat "$dir/steer_shard.txt"; fail "steer --shard $k/2"; }
done
[ "$(ls "$dir/steer_shard_0/rollouts" | wc -l)" = 5 ] || fail "steer shard 0/2: 5 of 10 rollouts"
steer4 --shard 1/2 --resume --out "$dir/steer_shard_1" >"$dir/steer_shard.txt" 2>&1 || fail "steer --resume"
grep -q "resume: 5 finished rollouts kept" "$dir/steer_shard.txt" && grep -q "^0 rollouts in" "$dir/steer_shard.txt" ||
  fail "steer --resume ran again: $(cat "$dir/steer_shard.txt")"
$vlascope merge --parts "$dir/steer_shard_1,$dir/steer_shard_0" --out "$dir/steer_merged" >"$dir/merge.txt" 2>&1 ||
  { cat "$dir/merge.txt"; fail "merge (steer)"; }
report="{k: v for k, v in d.items() if k != 'shard'}"
[ "$(json "$dir/steer_merged/steer_report.json" "$report")" = "$(json "$dir/steer_whole/steer_report.json" "$report")" ] ||
  fail "merged steering shards differ from the unsharded run"
[ "$(json "$dir/steer_merged/steer_report.json" "sorted(d['alpha_sweep'])")" = "['high', 'low']" ] ||
  fail "merged steering report: the α sweep"
[ -s "$dir/steer_merged/alpha_sweep.png" ] && [ -s "$dir/steer_merged/high_vs_low_height.png" ] || fail "merge: steer plots"
steer4 --workers 2 --out "$dir/steer_workers" >"$dir/steer_workers.txt" 2>&1 ||
  { cat "$dir/steer_workers.txt"; fail "steer --workers 2"; }
[ "$(json "$dir/steer_workers/steer_report.json" "$report")" = "$(json "$dir/steer_whole/steer_report.json" "$report")" ] ||
  fail "steer --workers 2 differs from the unsharded run"
steer4 --seed 7 --shard 1/2 --out "$dir/steer_other" >/dev/null 2>&1 || fail "steer (other seeds)"
$vlascope merge --parts "$dir/steer_shard_0,$dir/steer_other" --out "$dir/steer_bad_merge" >"$dir/merge_bad.txt" 2>&1 &&
  fail "merge of two steering experiments must fail"
grep -q "steer_other/run.json is from another experiment.*'first_seed'" "$dir/merge_bad.txt" ||
  fail "merge must name the part and the field: $(cat "$dir/merge_bad.txt")"
mkdir -p "$dir/report_root"
cp -r "$dir/eval" "$dir/report_root/eval_unfrozen"
cp -r "$dir/cmp" "$dir/report_root/compare_attention"
cp -r "$dir/attention" "$dir/neurons" "$dir/steer" "$dir/report_root/"
cp -r "$dir/steer_prompts" "$dir/report_root/prompts_pretrained"
$vlascope report "$dir/report_root" >/dev/null || fail "report"
grep -q "Steering" "$dir/report_root/index.html" && grep -q "Concept neurons" "$dir/report_root/index.html" || fail "index.html"
grep -q "<td>random − baseline (control)</td>" "$dir/report_root/index.html" || fail "index.html: steering controls"
# Both studies' prompt conditions, one row each.
[ "$(grep -c '<tr><td>\(steer\|prompts_pretrained\)</td>' "$dir/report_root/index.html")" = 2 ] ||
  fail "index.html: prompt following rows"
# Ablations: one condition per expert layer with its MLP output zeroed, without any neuron file.
$vlascope steer-experiment --checkpoint "$dir/vla" --rollouts 1 --sweep "" --prompt-high "" --prompt-low "" \
  --prompt-fast "" --prompt-slow "" --ablate-mlp expert --out "$dir/ablate" $common >"$dir/ablate.txt" 2>&1 ||
  { cat "$dir/ablate.txt"; fail "steer-experiment --ablate-mlp"; }
[ "$(json "$dir/ablate/steer_report.json" "len(d['ablations'])")" -ge 1 ] && [ -s "$dir/ablate/ablation_successes.png" ] ||
  fail "ablations: $(cat "$dir/ablate.txt" | tail -5)"
[ "$(json "$dir/ablate/steer_report.json" "sorted(d['conditions'])[0:2]")" = "['baseline', 'zero-expert0']" ] ||
  fail "ablations: conditions named zero-expert<layer>"
$vlascope steer-experiment --checkpoint "$dir/vla" --rollouts 1 --ablate-mlp nose --out "$dir/steer_bad" $common \
  >"$dir/steer_bad.txt" 2>&1 && fail "--ablate-mlp nose must fail"
grep -q "ablate-mlp: 'nose' is not a stream" "$dir/steer_bad.txt" || fail "--ablate-mlp: $(cat "$dir/steer_bad.txt")"
# Patching, open loop: layer by layer with the random control; the last expert layer gives the source's chunk exactly.
$vlascope patch --checkpoint "$dir/vla" --dataset "$dir/demos" --episodes 1 --stride 20 --bootstrap 50 \
  --out "$dir/patch" >"$dir/patch.txt" 2>&1 || { cat "$dir/patch.txt"; fail "patch"; }
[ -s "$dir/patch/patch_layers.png" ] && [ -s "$dir/patch/patch_effects.csv" ] || fail "patch: files"
[ "$(json "$dir/patch/patch_report.json" "[e['remaining'] for e in d['effects'] if e['stream'] == 'expert'][-1]")" = "0.0" ] ||
  fail "patch: the last expert layer did not give the source's chunk: $(cat "$dir/patch.txt")"
# The step sweep: one spec per expert layer and denoising step; the last layer at a single step leaves part of the
# difference (at every step it left none, above), so the steps really are patched one at a time.
$vlascope patch --checkpoint "$dir/vla" --dataset "$dir/demos" --episodes 1 --stride 20 --bootstrap 50 --layers "" \
  --step-sweep --no-random --out "$dir/patch_steps" >"$dir/patch_steps.txt" 2>&1 ||
  { cat "$dir/patch_steps.txt"; fail "patch --step-sweep"; }
[ -s "$dir/patch_steps/patch_steps.png" ] && [ ! -e "$dir/patch_steps/patch_layers.png" ] || fail "patch --step-sweep: files"
expert_layers=$(json "$dir/patch/patch_report.json" "len([e for e in d['effects'] if e['stream'] == 'expert'])")
steps=$(json "$dir/vla/config.json" "d['num_steps']")
steps_check="len(d['effects']) == $expert_layers * $steps and d['effects'][-1]['spec'].endswith('@steps:$((steps - 1))') \
and all(e['remaining'] > 0 for e in d['effects'] if e['layer'] == $expert_layers - 1)"
[ "$(json "$dir/patch_steps/patch_report.json" "$steps_check")" = "True" ] ||
  fail "patch --step-sweep: $(cat "$dir/patch_steps.txt" | tail -12)"
# Between episodes: a high demonstration's activations into a low one's frames, phase by phase, under one prompt;
# the last expert layer again gives the source's chunk, and the words (the same prompt) can be patched in full.
$vlascope patch --checkpoint "$dir/vla" --dataset "$dir/demos" --episodes 1 --stride 20 --bootstrap 50 --no-random \
  --source-variant high --target-variant low --vlm-rows all --out "$dir/patch_episodes" >"$dir/patch_episodes.txt" 2>&1 ||
  { cat "$dir/patch_episodes.txt"; fail "patch between episodes"; }
[ "$(json "$dir/patch_episodes/patch_report.json" "d['between'] == 'episodes' and d['source_variant'] == 'high' and \
d['frames'] > 0 and d['mean_source_target_distance'] > 0 and \
[e['remaining'] for e in d['effects'] if e['stream'] == 'expert'][-1] == 0")" = True ] ||
  fail "patch between episodes: $(cat "$dir/patch_episodes.txt")"
grep -q "of low episodes, each from a high one" "$dir/patch_episodes.txt" || fail "patch between episodes: the printout"
$vlascope patch --checkpoint "$dir/vla" --dataset "$dir/demos" --source-variant high --out "$dir/patch_bad" \
  >"$dir/patch_bad.txt" 2>&1 && fail "patch: --source-variant alone must fail"
grep -q -- "--source-variant and --target-variant: give both" "$dir/patch_bad.txt" || fail "patch: $(cat "$dir/patch_bad.txt")"
$vlascope patch --checkpoint "$dir/vla" --dataset "$dir/demos" --layers "" --specs "vlm.layers.0.resid.post@words" \
  --out "$dir/patch_bad" >"$dir/patch_bad.txt" 2>&1 && fail "patch: words across prompts of different lengths must fail"
grep -q "cannot be matched by position" "$dir/patch_bad.txt" || fail "patch: $(cat "$dir/patch_bad.txt")"
# Patching, closed loop: writing the last expert layer at every call makes each episode the source prompt's, step for
# step; a per-layer sweep and the random controls land in the report.
last_expert=$(json "$dir/patch/patch_report.json" "[e['layer'] for e in d['effects'] if e['stream'] == 'expert'][-1]")
$vlascope steer-experiment --checkpoint "$dir/vla" --rollouts 2 --batch 2 --sweep "" --prompt-low "" --prompt-fast "" \
  --prompt-slow "" --patch "whole=expert.layers.$last_expert.resid.post" --patch-layers vlm --patch-random \
  --out "$dir/patch_cl" $common >"$dir/patch_cl.txt" 2>&1 || { cat "$dir/patch_cl.txt"; fail "steer-experiment --patch"; }
python3 - "$dir/patch_cl" <<'PY' || fail "closed-loop patching"
import json, sys
out = sys.argv[1]
run = json.load(open(out + "/run.json"))
names = [c["name"] for c in run["conditions"]]
report = json.load(open(out + "/steer_report.json"))
assert "whole" in report["patching"] and "patch-vlm0" in report["patching"], sorted(report["patching"])
assert report["patching"]["whole"]["random_control"]["condition"] == "random-whole", report["patching"]["whole"]
def joints(c, k):
    r = json.load(open(f"{out}/rollouts/condition_{names.index(c)}_rollout_{k}.json"))
    return [s["joints"] for s in r["steps"]]
for k in range(2):
    assert joints("whole", k) == joints("prompt-high", k), f"rollout {k}: the patched episode is not the source's"
    assert joints("random-whole", k) != joints("prompt-high", k), f"rollout {k}: the random control is the source"
PY
[ -s "$dir/patch_cl/patch_heights.png" ] || fail "closed-loop patching: patch_heights.png"
# Resumed, it runs nothing and rebuilds the same report from the kept rollouts (run.json's patch conditions round-trip).
cp "$dir/patch_cl/steer_report.json" "$dir/patch_cl_report.json"
$vlascope steer-experiment --checkpoint "$dir/vla" --rollouts 2 --batch 2 --sweep "" --prompt-low "" --prompt-fast "" \
  --prompt-slow "" --patch "whole=expert.layers.$last_expert.resid.post" --patch-layers vlm --patch-random --resume \
  --out "$dir/patch_cl" $common >"$dir/patch_cl_resume.txt" 2>&1 || { cat "$dir/patch_cl_resume.txt"; fail "--patch --resume"; }
grep -q "^0 rollouts in" "$dir/patch_cl_resume.txt" || fail "--patch --resume ran rollouts: $(cat "$dir/patch_cl_resume.txt")"
python3 -c "import json,sys; a,b=[json.load(open(f))['patching'] for f in sys.argv[1:]]; sys.exit(a!=b)" \
  "$dir/patch_cl/steer_report.json" "$dir/patch_cl_report.json" || fail "--patch --resume: another report"
# A spec whose rows cannot match between the prompts is refused before any rollout runs.
$vlascope steer-experiment --checkpoint "$dir/vla" --rollouts 1 --patch "w=vlm.layers.0.resid.post@words" \
  --out "$dir/steer_bad" $common >"$dir/steer_bad.txt" 2>&1 && fail "--patch @words across prompt lengths must fail"
grep -q "cannot be matched by position" "$dir/steer_bad.txt" && ! grep -q "rollouts in" "$dir/steer_bad.txt" ||
  fail "--patch @words: $(cat "$dir/steer_bad.txt")"
$vlascope steer-experiment --checkpoint "$dir/vla" --rollouts 1 --patch "x=vlm.layers.99.resid.post" \
  --out "$dir/steer_bad" $common >"$dir/steer_bad.txt" 2>&1 && fail "--patch with a layer out of range must fail"
grep -q "layer 99 is out of range" "$dir/steer_bad.txt" || fail "--patch: $(cat "$dir/steer_bad.txt")"
# Patching from demonstrations: each rollout's state token written from a high demonstration at the same time of its
# episode, with its control; the rollout is no longer the baseline's, and the report names the source.
$vlascope steer-experiment --checkpoint "$dir/vla" --rollouts 2 --batch 2 --sweep "" --prompt-high "" --prompt-low "" \
  --prompt-fast "" --prompt-slow "" --patch-episodes "hi-state=high:vlm.embed@state" --patch-dataset "$dir/demos" \
  --patch-random --out "$dir/patch_demo" $common >"$dir/patch_demo.txt" 2>&1 ||
  { cat "$dir/patch_demo.txt"; fail "steer-experiment --patch-episodes"; }
python3 - "$dir/patch_demo" <<'PY' || fail "--patch-episodes: $(tail -5 "$dir/patch_demo.txt")"
import json, sys
out = sys.argv[1]
p = json.load(open(out + "/steer_report.json"))["patching"]["hi-state"]
assert p["source_demonstrations"]["variant"] == "high" and p["random_control"]["condition"] == "random-hi-state", p
names = [c["name"] for c in json.load(open(out + "/run.json"))["conditions"]]
assert json.load(open(out + "/run.json"))["conditions"][names.index("hi-state")]["patch"]["mode"] == "episode"
rollout = lambda c, k: json.load(open(out + "/rollouts/condition_%d_rollout_%d.json" % (names.index(c), k)))
for k in range(2):
    assert rollout("hi-state", k) != rollout("baseline", k), f"rollout {k}: the patch changed nothing"
PY
$vlascope steer-experiment --checkpoint "$dir/vla" --rollouts 1 --patch-episodes "x=sideways:vlm.embed@state" \
  --patch-dataset "$dir/demos" --out "$dir/steer_bad" $common >"$dir/steer_bad.txt" 2>&1 &&
  fail "--patch-episodes with a variant the dataset lacks must fail"
grep -q "has no successful 'sideways' episode" "$dir/steer_bad.txt" || fail "--patch-episodes: $(cat "$dir/steer_bad.txt")"
# Ablations through the patcher: every expert head zeroed, a mean and a resample ablation from the demonstrations.
$vlascope steer-experiment --checkpoint "$dir/vla" --rollouts 1 --sweep "" --prompt-high "" --prompt-low "" \
  --prompt-fast "" --prompt-slow "" --ablate-heads expert --ablate-dataset "$dir/demos" --ablate-frames 4 \
  --ablate "m0=mean:expert.layers.0.mlp.out;r0=resample:vlm.layers.0.resid.post@images" --out "$dir/ablate_heads" \
  $common >"$dir/ablate_heads.txt" 2>&1 || { cat "$dir/ablate_heads.txt"; fail "steer-experiment --ablate-heads"; }
python3 - "$dir/ablate_heads/steer_report.json" <<'PY' || fail "head ablations: $(tail -5 "$dir/ablate_heads.txt")"
import json, sys
a = json.load(open(sys.argv[1]))["ablations"]
assert a["zero-expert0h0"]["specs"] == ["expert.layers.0.attn.heads@head:0"] and a["zero-expert0h0"]["mode"] == "zero", a
assert a["m0"]["mode"] == "mean" and a["r0"]["mode"] == "resample", sorted(a)
assert sum(1 for k in a if k.startswith("zero-expert")) >= 2, sorted(a)
PY
$vlascope steer-experiment --checkpoint "$dir/vla" --rollouts 1 --ablate "m=mean:vlm.layers.0.mlp.out" \
  --out "$dir/steer_bad" $common >"$dir/steer_bad.txt" 2>&1 && fail "--ablate mean without a dataset must fail"
grep -q "mean ablation needs --ablate-dataset" "$dir/steer_bad.txt" || fail "--ablate: $(cat "$dir/steer_bad.txt")"
# Sparse autoencoders: capture → train → eval (held out, open-loop splice) → features → steer sets, then the SAE
# spliced into closed-loop rollouts and one feature clamped; bad input names what is wrong.
$vlascope sae capture --checkpoint "$dir/vla" --dataset "$dir/demos" --hook "vlm.layers.0.resid.post@images+state" \
  --stride 4 --out "$dir/sae_store" >"$dir/sae.txt" 2>&1 || { cat "$dir/sae.txt"; fail "sae capture"; }
[ "$(json "$dir/sae_store/store.json" "d['count'] > 0 and d['variants'] != []")" = True ] || fail "sae capture: store.json"
# From rollouts: two episodes under two prompts, each prompt's rows labelled with its name; a frame is a step index.
$vlascope sae capture --checkpoint "$dir/vla" --rollouts 2 --prompts "high=pick up the cube and lift it high;low=pick up \
the cube and lift it low" --hook "expert.layers.0.resid.post@steps:0" $common --out "$dir/sae_rollouts" >"$dir/sae.txt" 2>&1 ||
  { cat "$dir/sae.txt"; fail "sae capture --rollouts"; }
python3 - "$dir/sae_rollouts" <<'PY' || fail "sae capture --rollouts: the store"
import json, struct, sys
d = json.load(open(sys.argv[1] + "/store.json"))
assert d["variants"] == ["high", "low"] and d["count"] > 0 and d["dataset"].startswith("rollouts:"), d
raw = open(sys.argv[1] + "/rows.i32", "rb").read()
rows = [struct.unpack_from("<7i", raw, 28 * i) for i in range(d["count"])]
assert {r[0] for r in rows} == {0, 1} and {r[6] for r in rows if r[0] == 1} == {1}, "episode 1 is the low prompt's"
assert all(r[3] == 0 and r[4] == 3 for r in rows), "expert rows of step 0, kind action"
assert len({r[1] for r in rows}) >= 2, "rows from several policy calls"
PY
# Features of a rollout store: the statistics (high vs low = the two prompts), no frame figures (no recorded frames).
$vlascope sae train --store "$dir/sae_rollouts" --out "$dir/sae_r" --k 2 --features 16 --steps 20 --batch 16 --holdout 1 \
  >/dev/null 2>&1 || fail "sae train (rollout store)"
$vlascope sae features --sae "$dir/sae_r" --store "$dir/sae_rollouts" --checkpoint "$dir/vla" --out "$dir/sae_r" \
  >"$dir/sae.txt" 2>&1 || { cat "$dir/sae.txt"; fail "sae features (rollout store)"; }
grep -q "no frame figures: the store comes from rollouts" "$dir/sae.txt" && [ -s "$dir/sae_r/features.json" ] ||
  fail "sae features (rollout store): $(cat "$dir/sae.txt")"
$vlascope sae train --store "$dir/sae_store" --out "$dir/sae" --k 4 --features 64 --steps 60 --batch 64 --holdout 4 \
  >"$dir/sae.txt" 2>&1 || { cat "$dir/sae.txt"; fail "sae train"; }
[ -s "$dir/sae/sae.safetensors" ] && [ -s "$dir/sae/training_curve.png" ] || fail "sae train: files"
python3 - "$dir/sae/train_report.json" <<'PY' || fail "sae train: report"
import json, sys
r = json.load(open(sys.argv[1]))
assert r["features"] == 64 and r["k"] == 4 and r["heldout_rows"] > 0, r
assert 0 < r["heldout"]["variance_explained"] <= 1 and r["samples_per_second"] > 0, r
PY
$vlascope sae eval --sae "$dir/sae" --store "$dir/sae_store" --checkpoint "$dir/vla" --dataset "$dir/demos" \
  --episodes 2 --stride 20 --out "$dir/sae_eval" >"$dir/sae.txt" 2>&1 || { cat "$dir/sae.txt"; fail "sae eval"; }
[ "$(json "$dir/sae_eval/sae_eval.json" "d['open_loop']['mean_abs_change_mean_ablated'] > 0")" = True ] ||
  fail "sae eval: the open-loop check"
$vlascope sae features --sae "$dir/sae" --store "$dir/sae_store" --checkpoint "$dir/vla" --out "$dir/sae_features" \
  --top 3 --min-frequency 0 >"$dir/sae.txt" 2>&1 || { cat "$dir/sae.txt"; fail "sae features"; }
python3 - "$dir/sae_features/features.json" <<'PY' || fail "sae features: features.json"
import json, sys
d = json.load(open(sys.argv[1]))
assert len(d["features"]) == 64 and len(d["rankings"]["lift"]) == 3, d["rankings"]
f = d["features"][d["rankings"]["lift"][0]]
assert len(f["top_tokens"]) == 10 and f["top_rows"], f
PY
[ -s "$dir/sae_features/lift_features.png" ] || fail "sae features: lift_features.png"
feature=$(json "$dir/sae_features/features.json" "d['rankings']['lift'][0]")
$vlascope sae steer --sae "$dir/sae" --features "$feature" --out "$dir/sae_sets.json" >/dev/null || fail "sae steer"
[ "$(json "$dir/sae_sets.json" "d['sets'][0]['name']")" = "sae_$feature" ] || fail "sae steer: the set's name"
$vlascope eval --checkpoint "$dir/vla" --episodes 1 --sae "$dir/sae" --out "$dir/sae_cl" $common >"$dir/sae.txt" 2>&1 ||
  { cat "$dir/sae.txt"; fail "eval --sae"; }
grep -q "spliced in at vlm.layers.0.resid.post@images+state (reconstruct)" "$dir/sae.txt" || fail "eval --sae: $(cat "$dir/sae.txt")"
[ "$(json "$dir/sae_cl/run.json" "d['sae'] != ''")" = True ] || fail "eval --sae: run.json has no SAE digest"
$vlascope eval --checkpoint "$dir/vla" --episodes 1 --sae "$dir/sae" --sae-mode "clamp:$feature=2" --out "$dir/sae_clamp" \
  $common >/dev/null 2>&1 || fail "eval --sae-mode clamp"
$vlascope eval --checkpoint "$dir/vla" --episodes 1 --sae "$dir/sae" --sae-mode "clamp:x" --out "$dir/sae_bad" $common \
  >"$dir/sae_bad.txt" 2>&1 && fail "--sae-mode clamp:x must fail"
grep -q -- "--sae-mode: 'x' is not F=V" "$dir/sae_bad.txt" || fail "--sae-mode: $(cat "$dir/sae_bad.txt")"
# SAE conditions in the steering experiment: the splice, the mean reference and a clamp beside the baseline, on
# the same seeds; the mean ablation must change the rollout (a splice that never hooked in would leave it identical).
$vlascope steer-experiment --checkpoint "$dir/vla" --rollouts 1 --sweep "" --prompt-high "" --prompt-low "" \
  --prompt-fast "" --prompt-slow "" --sae "$dir/sae" --sae-conditions "splice=reconstruct;mean=mean;on=clamp:$feature=4@state" \
  --out "$dir/steer_sae" $common >"$dir/steer_sae.txt" 2>&1 || { cat "$dir/steer_sae.txt"; fail "steer-experiment --sae"; }
python3 - "$dir/steer_sae" "$feature" <<'PY' || fail "steer-experiment --sae: report"
import json, sys
out, feature = sys.argv[1], sys.argv[2]
r = json.load(open(out + "/steer_report.json"))
assert sorted(r["conditions"]) == ["baseline", "mean", "on", "splice"], r["conditions"].keys()
assert r["conditions"]["on"]["sae"]["setting"] == "clamp:" + feature + "=4@state", r["conditions"]["on"]
assert set(r["vs_baseline_mean_height_cm"]) == {"mean", "on", "splice"}, r["vs_baseline_mean_height_cm"].keys()
run = json.load(open(out + "/run.json"))
names = [c["name"] for c in run["conditions"]]
assert run["conditions"][names.index("mean")]["sae"]["digest"], run["conditions"]
steps = lambda c: json.load(open(out + "/rollouts/condition_%d_rollout_0.json" % names.index(c)))
assert steps("baseline") != steps("mean"), "the mean ablation left the rollout as it was"
PY
$vlascope steer-experiment --checkpoint "$dir/vla" --rollouts 1 --sae "$dir/sae" --sae-conditions "big=clamp:100000=1" \
  --out "$dir/steer_bad" $common >"$dir/steer_bad.txt" 2>&1 && fail "steer: a clamp of a feature the SAE lacks must fail"
grep -q "sae clamp: feature 100000 is not one of the 64" "$dir/steer_bad.txt" || fail "steer --sae: $(cat "$dir/steer_bad.txt")"
$vlascope steer-experiment --checkpoint "$dir/vla" --rollouts 1 --sae-conditions "s=reconstruct" --out "$dir/steer_bad" \
  $common >"$dir/steer_bad.txt" 2>&1 && fail "steer: --sae-conditions without --sae must fail"
grep -q -- "--sae-conditions needs --sae" "$dir/steer_bad.txt" || fail "steer --sae-conditions: $(cat "$dir/steer_bad.txt")"
$vlascope sae train --store "$dir/demos" --out "$dir/sae_bad" >"$dir/sae_bad.txt" 2>&1 && fail "sae train on a dataset"
grep -q "not a finished activation store" "$dir/sae_bad.txt" || fail "sae train: $(cat "$dir/sae_bad.txt")"
# The index page's intervention sections: open-loop patching, closed-loop patching with its controls, ablations.
mkdir -p "$dir/report_patch"
cp -r "$dir/patch" "$dir/patch_cl" "$dir/ablate_heads" "$dir/report_patch/"
$vlascope report "$dir/report_patch" >/dev/null || fail "report (patching)"
grep -q "<h2>Activation patching: patch</h2>" "$dir/report_patch/index.html" &&
  grep -q "<h2>Closed-loop patching: patch_cl</h2>" "$dir/report_patch/index.html" &&
  grep -q "<tr><td>whole</td>" "$dir/report_patch/index.html" &&
  grep -q "<td style=\"text-align:left\">zero: expert.layers.0.attn.heads@head:0</td>" "$dir/report_patch/index.html" ||
  fail "index.html: the intervention sections"
# A study with a target: the index page gives every condition's concept error and marks the closed loop.
mkdir -p "$dir/report_target"
cp -r "$dir/steer_dir" "$dir/report_target/steer"
$vlascope report "$dir/report_target" >/dev/null || fail "report (target)"
grep -q "<th>mean |concept − target| (lift:0.05)</th>" "$dir/report_target/index.html" &&
  grep -q "<tr><td>cl-high</td>.*(closed loop)</td></tr>" "$dir/report_target/index.html" ||
  fail "index.html: the concept error column"
grep -q "<tr><td>word-up − baseline</td>" "$dir/report_target/index.html" || fail "index.html: the --pairs contrasts"
echo "cli_policy: collect, pretrain, train (+resume, frozen), export, eval, rollout --steer --live, attention, compare, neurons, steer, patch, sae, report OK"
