#!/usr/bin/env bash
# `vlascope sim-vs-real` end to end against the servo-bus twin: a tiny model trained on the spot runs in the
# MuJoCo simulation and on a "real" SO-100 — the driver over a pseudo-terminal to `vlascope twin --backend
# mujoco`, with video files standing in for the cameras — and the report must hold both worlds. rollout, eval
# and attention each run a short episode on the same arm, so every command that drives a robot meets the
# driver. Then `collect --robot so100` records teleoperated episodes (a second twin, waved by hand, is the
# leader) that must validate as a dataset of the same format.
set -euo pipefail
vlascope=$1
source "$(dirname "$0")/twin_lib.sh"

# The arm: the simulator behind the servo protocol. The cameras: a test pattern that changes every frame (a
# still image would be reported as a frozen camera), long enough for the whole run.
"$vlascope" twin --backend mujoco --calibrated --link "$dir/arm" --duration 280 --write-calibration "$dir/arm.json" \
  </dev/null >/dev/null 2>"$dir/arm.log" &
pids+=($!)
ffmpeg -loglevel error -f lavfi -i testsrc=size=64x64:rate=30 -t 120 -threads 1 "$dir/clip.mp4" || fail "ffmpeg"
cameras="scene=$dir/clip.mp4:64x64,wrist=$dir/clip.mp4:64x64"
so100="--port $dir/arm --calibration $dir/arm.json --transport posix --bus-latency-ms 50 --cameras $cameras"

"$vlascope" collect --out "$dir/demos" --episodes 8 --variants high,low,fast,slow --size 64 >/dev/null 2>&1 || fail "collect"
"$vlascope" pretrain-vlm --dataset "$dir/demos" --out "$dir/vlm" --preset tiny --steps 6 --batch 4 --eval-every 3 \
  >/dev/null 2>&1 || fail "pretrain-vlm"
"$vlascope" train --dataset "$dir/demos" --init "$dir/vlm" --out "$dir/vla" --steps 6 --batch 4 --eval-every 3 \
  >/dev/null 2>&1 || fail "train"
"$vlascope" neurons --checkpoint "$dir/vla" --dataset "$dir/demos" --episodes 2 --stride 10 --set-size 3 \
  --out "$dir/neurons" >/dev/null 2>&1 || fail "neurons"
wait_for "$dir/arm"

# The real arm with the live view and its digital-twin mirror: the twin, posed at the joints read from the bus,
# must put the end effector where the robot's kinematics say it is.
"$vlascope" rollout --checkpoint "$dir/vla" --robot so100 $so100 --max-seconds 1.5 --live --mirror \
  --out "$dir/mirror" >"$dir/mirror.txt" 2>&1 || { cat "$dir/mirror.txt"; fail "rollout --live --mirror"; }
[ -s "$dir/mirror/live.mp4" ] || fail "rollout --mirror wrote no live.mp4"
gap=$(sed -n 's/^mirror: .* at most \([0-9.]*\) mm$/\1/p' "$dir/mirror.txt")
[ -n "$gap" ] && python3 -c "import sys; sys.exit(0 if float('$gap') < 1.0 else 1)" ||
  fail "mirror: twin and robot end-effector heights differ: '$gap' mm"

# The other commands that drive a robot, one short episode each on the same arm.
"$vlascope" eval --checkpoint "$dir/vla" --robot so100 $so100 --episodes 1 --max-seconds 1.5 --out "$dir/eval" \
  >"$dir/eval.txt" 2>&1 || { cat "$dir/eval.txt"; fail "eval --robot so100"; }
for f in eval.json episodes.csv ee_height.png lift.png episode_0.mp4; do
  [ -s "$dir/eval/$f" ] || fail "eval --robot so100 wrote no $f"
done
python3 - "$dir/eval/eval.json" <<'PY' || fail "eval.json: $(cat "$dir/eval/eval.json")"
import json, sys
d = json.load(open(sys.argv[1]))
assert d["robot"] == "so100" and d["episodes"] == 1 and len(d["per_episode"]) == 1
assert not d["success_known"]  # the real arm has no cube to check
PY
"$vlascope" attention --checkpoint "$dir/vla" --robot so100 $so100 --episodes 1 --max-seconds 1.5 \
  --out "$dir/attention" >"$dir/attention.txt" 2>&1 || { cat "$dir/attention.txt"; fail "attention --robot so100"; }
for f in attention.mp4 chunk_00.png attention_metrics.csv attention_summary.json; do
  [ -s "$dir/attention/$f" ] || fail "attention --robot so100 wrote no $f"
done

"$vlascope" sim-vs-real --checkpoint "$dir/vla" --episodes 2 --max-seconds 2 --sim-size 64 --steer high \
  --sets "$dir/neurons/neuron_sets.json" --alpha 4 $so100 --out "$dir/report" >"$dir/report.txt" 2>&1 ||
  { cat "$dir/report.txt"; fail "sim-vs-real"; }
for f in sim_vs_real.json sim_vs_real.csv height_aligned.png height_raw.png; do
  [ -s "$dir/report/$f" ] || fail "sim-vs-real wrote no $f"
done
grep -q "steering: set high := 4" "$dir/report.txt" || fail "sim-vs-real did not steer"
grep -q "^baseline  *real − sim" "$dir/report.txt" || fail "sim-vs-real printed no difference row"
python3 - "$dir/report/sim_vs_real.json" <<'PY' || fail "sim_vs_real.json"
import json, sys
d = json.load(open(sys.argv[1]))
assert set(d["worlds"]) == {"sim", "real"}, d["worlds"].keys()
assert d["worlds"]["sim"]["robot"] == "sim" and d["worlds"]["real"]["robot"] == "so100"
assert d["worlds"]["sim"]["success_known"] and not d["worlds"]["real"]["success_known"]
for world in d["worlds"].values():
    assert set(world["conditions"]) == {"baseline", "high"}, world["conditions"].keys()
    for c in world["conditions"].values():
        assert c["rollouts"] == 2 and len(c["episodes"]) == 2
        assert c["metrics"]["length"]["n"] == 2 and 1 < c["metrics"]["length"]["mean"] <= 2.5
        for e in c["episodes"]:
            z = e["ee_z_m"]
            # The arm moved (the policy drives it in both worlds), within a reach of the table.
            assert len(z) == len(e["time_s"]) >= 20 and all(-0.05 < h < 0.6 for h in z), e["lift"]
            assert max(z) - min(z) > 0.001, e["lift"]
    assert [e["seed"] for e in world["conditions"]["baseline"]["episodes"]] == [300000, 300001]
for name in ("baseline", "high"):
    diff = d["differences_real_minus_sim"][name]["length"]
    lengths = [d["worlds"][w]["conditions"][name]["metrics"]["length"]["mean"] for w in ("real", "sim")]
    assert abs(diff["real_minus_sim"] - (lengths[0] - lengths[1])) < 1e-9
PY

# Teleoperated demonstrations: a leader twin waved by hand, the MuJoCo twin follows; stdin has ended, so each
# episode starts after the countdown and ends after --seconds.
"$vlascope" twin --calibrated --hand wave --hand-period 2 --link "$dir/leader" --duration 60 \
  --write-calibration "$dir/leader.json" </dev/null >/dev/null 2>"$dir/leader.log" &
pids+=($!)
wait_for "$dir/leader"
"$vlascope" collect --robot so100 $so100 --leader "$dir/leader" --leader-calibration "$dir/leader.json" \
  --variant high --episodes 2 --seconds 1.5 --countdown 1 --size 32 --out "$dir/real_demos" \
  </dev/null >"$dir/collect.txt" 2>&1 || { cat "$dir/collect.txt"; fail "collect --robot so100"; }
"$vlascope" dataset-info "$dir/real_demos" >"$dir/info.txt" 2>&1 || { cat "$dir/info.txt"; fail "dataset-info"; }
for line in "2 valid, 0 damaged" "variants      high 2" "robots        so100 (2)" "sources       teleop (2)" \
  '"pick up the cube and lift it" (2)' "scene: 32x32 (2)" "wrist: 32x32 (2)"; do
  grep -qF "$line" "$dir/info.txt" || fail "real demonstrations: dataset-info lacks '$line': $(cat "$dir/info.txt")"
done
frames=$(sed -n 's/^episodes *2, \([0-9]*\) frames.*/\1/p' "$dir/info.txt")
[ -n "$frames" ] && [ "$frames" -ge 60 ] && [ "$frames" -le 100 ] || fail "real demonstrations hold $frames frames (1.5 s × 2 at 30 Hz)"
echo "cli_sim_vs_real: rollout, eval, attention, sim-vs-real (baseline + steered, both worlds) and collect --robot so100 against the twin OK"
