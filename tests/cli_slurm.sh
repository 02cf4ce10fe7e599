#!/usr/bin/env bash
# A one-node Slurm cluster on localhost, configured here in a scratch directory (munge with its own key and socket,
# slurmctld and slurmd in the foreground, free ports): scripts/slurm/sweep.sh submits a 2-task job array of a small
# eval and of a small prompt-following steer-experiment, each with its dependent merge job, through sbatch; the merged
# results must equal an unsharded run's on this machine.
set -euo pipefail
vlascope=$1
checkpoint=$2
here=$(cd "$(dirname "$0")/.." && pwd)
for tool in munged mungekey slurmctld slurmd sbatch squeue sinfo; do
  command -v $tool >/dev/null || { echo "cli_slurm: $tool not found (scripts/setup.sh installs slurm-wlm and munge)" >&2; exit 1; }
done
dir=$(mktemp -d)
pids=()
cleanup() {
  for pid in "${pids[@]}"; do kill "$pid" 2>/dev/null || true; done
  wait 2>/dev/null || true
  rm -rf "$dir"
}
trap cleanup EXIT
fail() {
  echo "FAIL: $*" >&2
  for f in "$dir"/*.log "$dir"/sweep/logs/*.out "$dir"/steer/logs/*.out; do [ -s "$f" ] && { echo "--- $f:"; tail -n 20 "$f"; }; done >&2
  exit 1
}
free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'; }

# munge: its own key, socket and files (munged refuses group-writable directories, hence 0700)
mkdir -m 0700 "$dir/munge"
mungekey --create --keyfile="$dir/munge/munge.key" --force 2>/dev/null ||
  dd if=/dev/urandom of="$dir/munge/munge.key" bs=1024 count=1 status=none
chmod 0400 "$dir/munge/munge.key"
munged --foreground --force --key-file="$dir/munge/munge.key" --socket="$dir/munge/munge.sock" \
  --pid-file="$dir/munge/munged.pid" --log-file="$dir/munge.log" --seed-file="$dir/munge/seed" 2>"$dir/munged.out.log" &
pids+=($!)

user=$(id -un)
node=$(hostname -s)
cpus=$(nproc)
mkdir -p "$dir/state" "$dir/spool"
cat >"$dir/slurm.conf" <<CONF
ClusterName=vlascope-test
SlurmctldHost=$node
SlurmUser=$user
SlurmdUser=$user
SlurmctldPort=$(free_port)
SlurmdPort=$(free_port)
AuthType=auth/munge
AuthInfo=socket=$dir/munge/munge.sock
CredType=cred/munge
StateSaveLocation=$dir/state
SlurmdSpoolDir=$dir/spool
SlurmctldPidFile=$dir/slurmctld.pid
SlurmdPidFile=$dir/slurmd.pid
SlurmctldLogFile=$dir/slurmctld.log
SlurmdLogFile=$dir/slurmd.log
ProctrackType=proctrack/linuxproc
TaskPlugin=task/none
MpiDefault=none
SchedulerType=sched/backfill
SelectType=select/cons_tres
SelectTypeParameters=CR_CPU
ReturnToService=2
JobCompType=jobcomp/none
AccountingStorageType=accounting_storage/none
NodeName=$node CPUs=$cpus State=UNKNOWN
PartitionName=test Nodes=$node Default=YES MaxTime=INFINITE State=UP
CONF
export SLURM_CONF=$dir/slurm.conf
for _ in $(seq 100); do [ -S "$dir/munge/munge.sock" ] && break; sleep 0.1; done
[ -S "$dir/munge/munge.sock" ] || fail "munged did not start"
slurmctld -D -i >"$dir/slurmctld.out.log" 2>&1 &
pids+=($!)
slurmd -D >"$dir/slurmd.out.log" 2>&1 &
pids+=($!)
for _ in $(seq 150); do
  state=$(sinfo -h -n "$node" -o %t 2>/dev/null || true)
  [ "$state" = idle ] && break
  sleep 0.2
done
[ "$state" = idle ] || fail "the node never became idle (state '$state')"

# The sweeps: 4 episodes of eval and 5 rollouts of steer-experiment, each in 2 shards through sbatch, the merges as
# dependent jobs.
args=(--checkpoint "$checkpoint" --episodes 4 --videos 0 --max-seconds 3 --threads 1)
steer_args=(--checkpoint "$checkpoint" --rollouts 1 --max-seconds 3 --threads 1 --sim-size 64)
VLASCOPE=$vlascope CPUS_PER_TASK=1 "$here/scripts/slurm/sweep.sh" "$dir/sweep" 2 eval "${args[@]}" >"$dir/submit.log" ||
  fail "sweep.sh eval"
VLASCOPE=$vlascope CPUS_PER_TASK=1 "$here/scripts/slurm/sweep.sh" "$dir/steer" 2 steer-experiment "${steer_args[@]}" \
  >>"$dir/submit.log" || fail "sweep.sh steer-experiment"
[ "$(grep -c "array job" "$dir/submit.log")" = 2 ] || fail "sweep.sh printed no job ids"
for _ in $(seq 600); do
  [ -z "$(squeue -h 2>/dev/null)" ] && break
  sleep 0.5
done
[ -z "$(squeue -h)" ] || fail "jobs still queued after 300 s: $(squeue)"
[ -s "$dir/sweep/merged/eval.json" ] || fail "the eval merge job wrote no report"
[ -s "$dir/steer/merged/steer_report.json" ] || fail "the steer-experiment merge job wrote no report"

"$vlascope" eval "${args[@]}" --out "$dir/whole" >"$dir/whole.log" 2>&1 || fail "unsharded eval"
per_episode="[{k: v for k, v in e.items() if k not in ('wall_seconds', 'model_seconds')} for e in d['per_episode']]"
json() { python3 -c "import json, sys; d = json.load(open(sys.argv[1])); print($2)" "$1"; }
[ "$(json "$dir/sweep/merged/eval.json" "$per_episode")" = "$(json "$dir/whole/eval.json" "$per_episode")" ] ||
  fail "merged eval shards differ from the unsharded run"
"$vlascope" steer-experiment "${steer_args[@]}" --out "$dir/steer_whole" >"$dir/steer_whole.log" 2>&1 ||
  fail "unsharded steer-experiment"
report="{k: v for k, v in d.items() if k != 'shard'}"
[ "$(json "$dir/steer/merged/steer_report.json" "$report")" = "$(json "$dir/steer_whole/steer_report.json" "$report")" ] ||
  fail "merged steer-experiment shards differ from the unsharded run"
echo "cli_slurm: 2-task job arrays + dependent merges through a one-node Slurm (eval, steer-experiment); merged results equal the unsharded runs'"
