// Sharded many-rollout runs (`--shard K/N`, `--resume`, `vlascope merge`), shared by eval and steer-experiment.
//
// A run is a list of rollouts ("jobs", numbered 0, 1, …). Shard K of N runs the jobs j with j mod N = K and keeps
// each finished one in <out>/rollouts/ the moment it ends, with <out>/run.json describing the experiment: the
// checkpoint's digest, the sets' digest, the seeds, the conditions and every option that changes a rollout. Parts
// of one experiment agree on all of run.json but the shard (and the checkpoint's path, which may differ between
// machines); --resume and merge check that and name the field and the files when they do not.
#pragma once

#include <cstdint>
#include <filesystem>
#include <functional>
#include <map>
#include <nlohmann/json.hpp>
#include <optional>
#include <string>
#include <vector>

namespace vlascope {

class ArgParser;

// "K/N": this process runs jobs j with j mod N = K (K counts from 0, as Slurm's array indices do with --array=0-…).
struct Shard {
  int index = 0, count = 1;
  bool owns(int64_t job) const { return job % count == index; }
  std::string text() const { return std::to_string(index) + "/" + std::to_string(count); }
};
Shard parse_shard(const std::string& text);  // Error naming --shard for anything but K/N with 0 ≤ K < N

// An Error naming the file when it is missing or not JSON.
nlohmann::json read_json_file(const std::filesystem::path& path);

// b (read from b_file) describes the same experiment as a (from a_file): every field but "shard", "checkpoint" and
// "pairs" (what a report compares, not what runs) equal; otherwise an Error naming the first field that differs and both files.
void require_same_experiment(const nlohmann::json& a, const std::string& a_file, const nlohmann::json& b,
                             const std::string& b_file);

// Starts or resumes the run in `out`: with `resume` and an existing run.json of the same experiment and shard,
// returns the jobs whose files `job_file` finds (the caller reads them); otherwise empties <out>/rollouts/. Writes
// run.json either way.
std::vector<int> start_or_resume(const std::filesystem::path& out, const nlohmann::json& run, const Shard& shard,
                                 bool resume, int64_t jobs,
                                 const std::function<std::filesystem::path(int job)>& job_file);

// The parts of a sharded run, checked: one experiment, one shard count, every shard once.
struct ShardedRun {
  nlohmann::json run;  // the first part's run.json
  int count = 1;
  std::map<int, std::string> dirs;  // shard index → its output directory
  const std::string& dir_of(int64_t job) const { return dirs.at(static_cast<int>(job % count)); }
};
ShardedRun read_shards(const std::vector<std::string>& parts);

// The reports merge rebuilds, one per sharding command (run.json's "command"). `time`: how long the parts took to
// run `rollouts_run` rollouts, when one process watched them (--workers); without it eval's rate sums the episodes'
// own times.
struct RunTime {
  double wall_seconds = 0;
  int64_t rollouts_run = 0;
};
void merge_eval_shards(const ShardedRun& shards, const std::filesystem::path& out,
                       std::optional<RunTime> time = std::nullopt);
void merge_steer_shards(const ShardedRun& shards, const std::filesystem::path& out);

// --workers W: one run as W processes of this binary, worker k running shard k/W in <out>/workers/shard_k/ on
// cores/W threads, merged into <out> when all have finished. On 2 cores a batched chunk of the shipped model runs
// 1.3–1.4× faster on libtorch's second thread, while a second process doing the same work (policy and simulation)
// doubles it.
void add_workers_option(ArgParser& args);
// With --workers > 1: starts the workers (the command line as given, plus --shard, --out and, unless given, --threads
// and --sim-threads), shows one progress bar over their `rollouts` (finished files in their rollouts/ folders), and
// when every worker succeeded merges their parts into <out> (eval also moves the workers' videos there) and returns
// true. A failed worker stops the others and is an Error naming its log (<out>/workers/shard_k.log) with its last
// lines. With --resume the workers resume. Returns false when this process runs the rollouts itself (--workers 1).
bool run_in_workers(const ArgParser& args, const std::string& command, int64_t rollouts);

}  // namespace vlascope
