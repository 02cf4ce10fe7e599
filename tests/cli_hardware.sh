#!/usr/bin/env bash
# End to end through the vlascope command, over pseudo-terminals: `twin` serves six servos, `servo scan`
# finds them, `calibrate` runs LeRobot's procedure unattended (piped ENTERs, the twin's hand sweeps the
# joints) and writes LeRobot's file, `teleop` makes one twin follow another.
set -euo pipefail
vlascope=$1
source "$(dirname "$0")/twin_lib.sh"

# A factory-fresh arm that a "hand" holds at mid-range until calibrate has written the homing offsets (its first
# ENTER), then sweeps between the stops every 4 s: event-driven, so a slow machine cannot start the sweep early.
"$vlascope" twin --hand sweep --hand-start homing --hand-delay 0.3 --hand-period 4 --link "$dir/arm" --duration 60 --write-calibration "$dir/truth.json" \
  </dev/null >"$dir/arm.out" 2>"$dir/arm.log" &
pids+=($!)
wait_for "$dir/arm"
[ "$(head -1 "$dir/arm.out")" = "$dir/arm" ] || fail "twin did not print its device path first"

[ "$("$vlascope" servo scan --port "$dir/arm" --last 8 --bus-latency-ms 250 --scan-timeout-ms 50 | grep -c 'model  777 (STS3215)')" = 6 ] || fail "servo scan"

printf '\n\n' | HF_LEROBOT_CALIBRATION="$dir/cal" "$vlascope" calibrate --port "$dir/arm" --id twin --bus-latency-ms 250 \
  --min-sweep-seconds 6 >"$dir/calibrate.out"
file="$dir/cal/robots/so_follower/twin.json"
[ -f "$file" ] || fail "no calibration at $file"
# The recorded spans (range_max − range_min) do not depend on where the arm was at the first ENTER:
# they must equal the twin's true spans, within a tick (the hand reaches the stops exactly).
spans() { awk -F'[:,]' '/range_min/ {lo=$2} /range_max/ {print $2 - lo}' "$1"; }
paste <(spans "$file") <(spans "$dir/truth.json") | awk '{d=$1-$2; if (d<0) d=-d; if (d>1) bad=1} END {exit bad}' ||
  fail "calibrated spans differ from the twin's: $(spans "$file" | tr '\n' ' ') vs $(spans "$dir/truth.json" | tr '\n' ' ')"
for key in '"shoulder_pan": {' '"id": 1,' '"drive_mode": 0,' '"homing_offset":' '"range_min":' '"range_max":'; do
  grep -qF "$key" "$file" || fail "calibration file lacks $key"
done

# Teleoperation between two calibrated twins: the leader (first-order model) is waved by hand, the follower
# is the MuJoCo simulation behind the servo protocol and copies it.
"$vlascope" twin --calibrated --hand wave --hand-period 2 --link "$dir/leader" --duration 60 \
  --write-calibration "$dir/leader.json" </dev/null >/dev/null 2>"$dir/leader.log" &
pids+=($!)
"$vlascope" twin --backend mujoco --calibrated --link "$dir/follower" --duration 60 --write-calibration "$dir/follower.json" \
  </dev/null >/dev/null 2>"$dir/follower.log" &
pids+=($!)
wait_for "$dir/leader"
wait_for "$dir/follower"
"$vlascope" servo read 3 Present_Position --port "$dir/follower" --bus-latency-ms 250 >/dev/null
"$vlascope" teleop --leader "$dir/leader" --follower "$dir/follower" --leader-calibration "$dir/leader.json" \
  --follower-calibration "$dir/follower.json" --duration 2 --quiet --bus-latency-ms 250 2>"$dir/teleop.log"
ticks=$(sed -n 's/^teleop: \([0-9]*\) ticks.*/\1/p' "$dir/teleop.log")
[ -n "$ticks" ] && [ "$ticks" -ge 30 ] || fail "teleop ran $ticks ticks: $(cat "$dir/teleop.log")"
echo "cli_hardware: twin, servo scan, calibrate and teleop OK ($ticks teleop ticks)"
