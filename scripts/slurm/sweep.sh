#!/usr/bin/env bash
# A sharded `vlascope eval` or `vlascope steer-experiment` on a Slurm cluster: one job array of N tasks, each running
# the rollouts j with j mod N = its index (--shard K/N, resumable: a requeued task keeps its finished rollouts), and a
# merge job that starts when every task has succeeded (--dependency=afterok) and writes the report of one unsharded run.
#
#   scripts/slurm/sweep.sh OUT N COMMAND [options of the command…]      COMMAND: eval or steer-experiment
#   e.g. scripts/slurm/sweep.sh sweep 8 eval --checkpoint models/smolvla_small_unfrozen --episodes 400 --batch 8
#        scripts/slurm/sweep.sh steer 16 steer-experiment --checkpoint … --sets …/neuron_sets.json --rollouts 50
#
# Writes OUT/shard_K/ (each task's rollouts), OUT/merged/ (the report), OUT/logs/. Prints the two job ids. Environment: VLASCOPE (the binary; default: vlascope on PATH, else build/apps/vlascope), SBATCH_OPTIONS
# (extra sbatch options for both jobs, e.g. "--partition=cpu --time=2:00:00"), CPUS_PER_TASK (default 2).
set -euo pipefail
[ $# -ge 3 ] || { sed -n 2,14p "$0"; exit 2; }
out=$(realpath -m "$1")
shards=$2
command=$3
shift 3
[[ "$shards" =~ ^[1-9][0-9]*$ ]] || { echo "sweep.sh: N must be a positive number, got '$shards'" >&2; exit 2; }
[[ "$command" =~ ^(eval|steer-experiment)$ ]] ||
  { echo "sweep.sh: COMMAND must be eval or steer-experiment (the commands that shard), got '$command'" >&2; exit 2; }
here=$(cd "$(dirname "$0")/../.." && pwd)
vlascope=${VLASCOPE:-$(command -v vlascope || echo "$here/build/apps/vlascope")}
[ -x "$vlascope" ] || { echo "sweep.sh: no vlascope binary at $vlascope (set VLASCOPE)" >&2; exit 2; }
mkdir -p "$out/logs"
# Each argument quoted once, so options with spaces (--task "…") survive the job script.
args=$(printf ' %q' "$@")

array_id=$(sbatch --parsable ${SBATCH_OPTIONS:-} --job-name=vlascope-$command --array=0-$((shards - 1)) \
  --cpus-per-task="${CPUS_PER_TASK:-2}" --output="$out/logs/shard_%a.out" <<JOB
#!/usr/bin/env bash
set -euo pipefail
exec $(printf '%q' "$vlascope") $command$args --shard \$SLURM_ARRAY_TASK_ID/$shards --resume \\
  --out $(printf '%q' "$out")/shard_\$SLURM_ARRAY_TASK_ID
JOB
)
parts=$(for ((k = 0; k < shards; ++k)); do printf '%s%s' "$([ $k -gt 0 ] && echo ,)" "$out/shard_$k"; done)
merge_id=$(sbatch --parsable ${SBATCH_OPTIONS:-} --job-name=vlascope-merge --dependency=afterok:"$array_id" \
  --cpus-per-task=1 --output="$out/logs/merge.out" <<JOB
#!/usr/bin/env bash
set -euo pipefail
exec $(printf '%q' "$vlascope") merge --parts $(printf '%q' "$parts") --out $(printf '%q' "$out")/merged
JOB
)
echo "sweep: array job $array_id ($shards tasks), merge job $merge_id → $out/merged"
