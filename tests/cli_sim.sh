#!/usr/bin/env bash
# End-to-end test of the simulator commands: collect (with resume and its refusals), dataset-info, replay, render,
# and errors on bad input. Usage: cli_sim.sh path/to/vlascope
set -euo pipefail
vlascope=$1
dir=$(mktemp -d)
trap 'rm -rf "$dir"' EXIT
fail() { echo "FAIL: $*" >&2; exit 1; }
# expect_error "<text the message must contain>" command...
expect_error() {
  local text=$1; shift
  if "$@" >"$dir/out" 2>"$dir/err"; then fail "succeeded: $*"; fi
  grep -q -- "$text" "$dir/err" || { cat "$dir/err" >&2; fail "error of '$*' does not mention '$text'"; }
}

# --help on every subcommand `vlascope --help` lists (main.cpp prints kCommands) shows its usage and exits 0.
"$vlascope" --help >"$dir/help.txt" || fail "vlascope --help exits $?"
commands=$(awk '/^commands:/ { listed = 1; next } listed && /^  [a-z]/ { print $1 }' "$dir/help.txt")
[ "$(echo "$commands" | wc -l)" -ge 20 ] || { cat "$dir/help.txt" >&2; fail "vlascope --help lists too few commands"; }
for command in $commands; do
  status=0
  "$vlascope" "$command" --help >"$dir/help.txt" 2>&1 || status=$?
  [ "$status" -eq 0 ] || { cat "$dir/help.txt" >&2; fail "$command --help exits $status"; }
  grep -q "^usage: vlascope $command" "$dir/help.txt" || { cat "$dir/help.txt" >&2; fail "$command --help: no usage"; }
done

# Two episodes, then a refused re-run, a refused resume with another seed, and a resume to three.
"$vlascope" collect --out "$dir/d" --episodes 2 --variants high,low --size 64 --segmentation 2>/dev/null
expect_error "--resume" "$vlascope" collect --out "$dir/d" --episodes 3 --variants high,low --size 64
expect_error "--seed" "$vlascope" collect --out "$dir/d" --episodes 3 --variants high,low --size 64 --seed 5 --resume
expect_error "--size" "$vlascope" collect --out "$dir/d" --episodes 3 --variants high,low --size 96 --resume
"$vlascope" collect --out "$dir/d" --episodes 3 --variants high,low --size 64 --segmentation --resume \
  --plot "$dir/height.png" 2>/dev/null
test -s "$dir/height.png" || fail "no height plot"
"$vlascope" dataset-info "$dir/d" 2>/dev/null | grep -Eq "^episodes +3," || fail "dataset-info does not count 3 episodes"
"$vlascope" dataset-info "$dir/d" 2>/dev/null | grep -q "high 2" || fail "attempt 2 should be a second 'high'"

# Every variant carries the same instruction: were the texts different, the prompt alone would tell high from low
# (fast from slow), and the concept neurons that interp/ looks for would only be reading the prompt.
"$vlascope" collect --out "$dir/variants" --episodes 4 --variants high,low,fast,slow --size 32 --cameras scene \
  2>/dev/null >/dev/null
"$vlascope" dataset-info "$dir/variants" 2>/dev/null >"$dir/variants.txt"
grep -q "^variants .*fast 1.*high 1.*low 1.*slow 1" "$dir/variants.txt" || { cat "$dir/variants.txt" >&2; fail "variants"; }
grep -Eq '^instructions +"[^"]+" \(4\)$' "$dir/variants.txt" ||
  { cat "$dir/variants.txt" >&2; fail "high, low, fast and slow episodes do not share one instruction"; }

# Replaying the recorded actions reproduces the recording.
"$vlascope" replay "$dir/d" --strict --tolerance-mm 0.01 --plot "$dir/replay.png" 2>/dev/null >"$dir/replay.txt" ||
  { cat "$dir/replay.txt" >&2; fail "replay diverged"; }
grep -q "3 episodes replayed" "$dir/replay.txt" || fail "replay summary"

# Render from the dataset (stored segmentation, depth re-simulated) and a fresh episode.
"$vlascope" render --dataset "$dir/d" --episode 2 --out "$dir/r" --stride 50 --display 64 --depth 2>/dev/null
test -s "$dir/r/episode.mp4" || fail "no mp4"
test -s "$dir/r/frames/frame_000000.png" || fail "no png"
"$vlascope" render --variant fast --seed 3 --size 64 --quality fast --out "$dir/fresh" --no-png 2>/dev/null
test -s "$dir/fresh/episode.mp4" || fail "no fresh mp4"

# The health check runs every variant and plots.
"$vlascope" sim-check --episodes 2 --threads 2 --plot "$dir/tracking.png" 2>/dev/null >"$dir/check.txt"
grep -Eq "^high +2/2" "$dir/check.txt" || { cat "$dir/check.txt" >&2; fail "sim-check: high did not succeed"; }
test -s "$dir/tracking.png" || fail "no tracking plot"

# Bad input is an error that names the culprit.
expect_error "episode 9" "$vlascope" render --dataset "$dir/d" --episode 9 --out "$dir/r2"
expect_error "medium" "$vlascope" collect --out "$dir/x" --variants medium
expect_error "medium" "$vlascope" sim-check --variants medium
expect_error "top" "$vlascope" collect --out "$dir/x" --cameras top
expect_error "--size" "$vlascope" collect --out "$dir/x" --size 0
expect_error "broken.xml" bash -c "echo '<mujoco><worldbody>' > '$dir/broken.xml' && '$vlascope' collect --out '$dir/x' --scene '$dir/broken.xml'"
test ! -e "$dir/x" || fail "a refused collect created its output directory"
echo "cli_sim: all checks passed"
