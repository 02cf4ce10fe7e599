#!/usr/bin/env bash
# The explorer end to end (issue 17): an output folder made by the real commands on the shipped model (one attention
# episode, the lexical neuron sets), `vlascope explore`, then the page in Debian's Chromium through playwright-core
# (tests/browser/explorer.test.mjs), which keeps a screenshot in the build's test_artifacts/.
set -euo pipefail
vlascope=$1
src=$2
artifacts=$3
fail() { echo "FAIL: $*" >&2; exit 1; }
command -v node >/dev/null || fail "node is missing: run scripts/setup.sh"
[ -x /usr/bin/chromium ] || fail "/usr/bin/chromium is missing: run scripts/setup.sh"
[ -d "$src/tests/browser/node_modules/playwright-core" ] || fail "playwright-core is missing: run scripts/setup.sh"
dir=$(mktemp -d)
trap 'rm -rf "$dir"' EXIT
model="$src/models/smolvla_small_unfrozen"
$vlascope attention --checkpoint "$model" --episodes 1 --max-seconds 4 --threads 1 --out "$dir/attention" \
  >"$dir/log.txt" 2>&1 || { cat "$dir/log.txt"; fail "attention"; }
[ -s "$dir/attention/explore/episode_0.js" ] || fail "attention wrote no explorer data"
$vlascope neurons --checkpoint "$model" --out "$dir/neurons" --prompt-directions "" --choices "" \
  >"$dir/log.txt" 2>&1 || { cat "$dir/log.txt"; fail "neurons"; }
$vlascope explore "$dir" >"$dir/log.txt" 2>&1 || { cat "$dir/log.txt"; fail "explore"; }
grep -q "1 episodes" "$dir/log.txt" || fail "explore: $(cat "$dir/log.txt")"
# A residual direction (the word directions: one weight per residual channel) is one entry, not a channel each.
python3 - "$dir/explorer_index.js" <<'PY' || fail "explore: the word directions should be listed as directions"
import json, sys
text = open(sys.argv[1]).read()
index = json.loads(text[text.index(", ") + 2:text.rindex(");")])
word = [n for n in index["neurons"] if n["set"] == "word_up"]
assert len(word) == 1 and word[0]["kind"] == "direction", word[:3]
PY
mkdir -p "$artifacts"
node "$src/tests/browser/explorer.test.mjs" "$dir" "$artifacts/explorer.png" || fail "the explorer page in Chromium"
echo "cli_explorer: attention → explore → Chromium OK"
