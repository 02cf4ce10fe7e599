# Sourced by the end-to-end scripts that run `vlascope twin` servo buses over pseudo-terminals: a scratch
# directory, background processes that are killed (and the directory removed) on exit, and waiting for a twin's
# link to appear. Defines $dir and the array pids; add each background process with pids+=($!).
dir=$(mktemp -d)
pids=()
cleanup() {
  for pid in "${pids[@]}"; do kill "$pid" 2>/dev/null || true; done
  rm -rf "$dir"
}
trap cleanup EXIT
fail() { echo "FAIL: $*" >&2; exit 1; }
wait_for() {  # wait_for <path>: a twin's link appears (10 s at most)
  for _ in $(seq 200); do [ -e "$1" ] && return 0; sleep 0.05; done
  fail "$1 never appeared"
}
