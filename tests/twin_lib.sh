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
show_logs() {  # the twins' and commands' own output, so a failure under load says what the processes saw
  for f in "$dir"/*.log "$dir"/*.out; do [ -s "$f" ] && { echo "--- $(basename "$f"):"; tail -n 15 "$f"; }; done >&2
}
fail() { echo "FAIL: $*" >&2; show_logs; exit 1; }
# A command that fails under set -e names itself instead of ending the test with no output.
trap 'rc=$?; echo "FAIL: line $LINENO: \`$BASH_COMMAND\` exited $rc" >&2; show_logs' ERR
wait_for() {  # wait_for <path>: a twin's link appears (10 s at most)
  for _ in $(seq 200); do [ -e "$1" ] && return 0; sleep 0.05; done
  fail "$1 never appeared"
}
