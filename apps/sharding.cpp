#include "apps/sharding.h"

#include <fcntl.h>
#include <sched.h>
#include <signal.h>
#include <spawn.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cstring>
#include <deque>
#include <fstream>
#include <thread>

#include "common/cli.h"
#include "common/error.h"
#include "common/json_io.h"
#include "common/progress.h"

extern char** environ;

namespace vlascope {

namespace fs = std::filesystem;

Shard parse_shard(const std::string& text) {
  const std::string expected = "--shard: expected K/N with 0 ≤ K < N, e.g. 0/4; got '" + text + "'";
  Shard s;
  const size_t slash = text.find('/');
  try {
    require(slash != std::string::npos, "");
    size_t used = 0;
    s.index = std::stoi(text.substr(0, slash), &used);
    require(used == slash, "");
    s.count = std::stoi(text.substr(slash + 1), &used);
    require(used == text.size() - slash - 1, "");
  } catch (const std::exception&) {
    throw Error(expected);
  }
  require(s.count >= 1 && s.index >= 0 && s.index < s.count, expected);
  return s;
}

nlohmann::json read_json_file(const fs::path& path) { return read_json_object(path.string()); }

void require_same_experiment(const nlohmann::json& a, const std::string& a_file, const nlohmann::json& b,
                             const std::string& b_file) {
  auto differs = [&](const std::string& key) {
    if (key == "shard" || key == "checkpoint" || key == "pairs") return;  // "pairs" only chooses what is reported
    const nlohmann::json x = a.value(key, nlohmann::json()), y = b.value(key, nlohmann::json());
    if (x != y)
      throw Error(b_file + " is from another experiment than " + a_file + ": '" + key + "' is " + y.dump() + " there, " +
                  x.dump() + " here");
  };
  for (const auto& [key, value] : a.items()) differs(key);
  for (const auto& [key, value] : b.items()) differs(key);
}

std::vector<int> start_or_resume(const fs::path& out, const nlohmann::json& run, const Shard& shard, bool resume,
                                 int64_t jobs, const std::function<fs::path(int job)>& job_file) {
  fs::create_directories(out / "rollouts");
  const fs::path run_file = out / "run.json";
  std::vector<int> finished;
  if (resume && fs::exists(run_file)) {
    const nlohmann::json before = read_json_file(run_file);
    require_same_experiment(run, "this command", before, run_file.string());
    require(before.value("shard", "") == run.at("shard").get<std::string>(),
            run_file.string() + " is shard " + before.value("shard", "?") + ", this command runs " + shard.text());
    for (int j = 0; j < jobs; ++j)
      if (shard.owns(j) && fs::exists(job_file(j))) finished.push_back(j);
  } else {
    for (const auto& e : fs::directory_iterator(out / "rollouts")) fs::remove(e.path());  // a new run starts clean
  }
  std::ofstream(run_file) << run.dump(2) << "\n";
  return finished;
}

ShardedRun read_shards(const std::vector<std::string>& parts) {
  require(!parts.empty(), "merge: name the shards' output directories");
  ShardedRun sharded;
  std::string first_file;
  for (const std::string& part : parts) {
    const fs::path run_file = fs::path(part) / "run.json";
    require(fs::exists(run_file), "merge: " + part + " has no run.json (not an output of a sharded vlascope command)");
    const nlohmann::json run = read_json_file(run_file);
    if (sharded.run.is_null()) {
      sharded.run = run;
      first_file = run_file.string();
    } else {
      require_same_experiment(sharded.run, first_file, run, run_file.string());
    }
    const Shard s = parse_shard(run.value("shard", std::string("?")));
    if (sharded.dirs.empty()) sharded.count = s.count;
    require(s.count == sharded.count, "merge: " + run_file.string() + " is shard " + s.text() + " of " +
                                          std::to_string(s.count) + ", " + first_file + " one of " +
                                          std::to_string(sharded.count));
    const auto [it, added] = sharded.dirs.emplace(s.index, part);
    require(added, "merge: shard " + s.text() + " appears twice: " + it->second + " and " + part);
  }
  for (int i = 0; i < sharded.count; ++i)
    require(sharded.dirs.count(i),
            "merge: shard " + std::to_string(i) + "/" + std::to_string(sharded.count) + " is missing");
  return sharded;
}

void add_workers_option(ArgParser& args) {
  args.option("workers", "1",
              "run as this many processes, each a --shard of the rollouts on its share of the cores, merged into\n"
              "<out> at the end (0 = one per core; simulation only; results reproduce for the same --workers and\n"
              "--batch)");
}

namespace {

int64_t count_rollout_files(const fs::path& dir) {
  int64_t n = 0;
  std::error_code ec;
  for (fs::directory_iterator it(dir, ec), end; !ec && it != end; it.increment(ec))
    n += it->path().extension() == ".json";
  return n;
}

std::string last_lines(const fs::path& file, size_t count) {
  std::ifstream in(file);
  std::deque<std::string> lines;
  for (std::string line; std::getline(in, line);) {
    // A progress bar redraws its line with carriage returns; keep what the line ended as.
    while (!line.empty() && line.back() == '\r') line.pop_back();
    if (const size_t cr = line.rfind('\r'); cr != std::string::npos) line = line.substr(cr + 1);
    lines.push_back(line);
    if (lines.size() > count) lines.pop_front();
  }
  std::string text;
  for (const std::string& line : lines) text += "  " + line + "\n";
  return text;
}

pid_t spawn_worker(const std::vector<std::string>& arguments, const fs::path& log) {
  std::vector<char*> argv;
  for (const std::string& a : arguments) argv.push_back(const_cast<char*>(a.c_str()));
  argv.push_back(nullptr);
  posix_spawn_file_actions_t actions;
  posix_spawn_file_actions_init(&actions);
  posix_spawn_file_actions_addopen(&actions, STDOUT_FILENO, log.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0644);
  posix_spawn_file_actions_adddup2(&actions, STDOUT_FILENO, STDERR_FILENO);
  pid_t pid = 0;
  const int failed = posix_spawn(&pid, "/proc/self/exe", &actions, nullptr, argv.data(), environ);
  posix_spawn_file_actions_destroy(&actions);
  require(failed == 0, "--workers: could not start a worker process (" + std::string(std::strerror(failed)) + ")");
  return pid;
}

}  // namespace

namespace {

// The cores this process may run on (a Slurm allocation's, not the node's).
int available_cores() {
  cpu_set_t set;
  if (sched_getaffinity(0, sizeof set, &set) == 0) return std::max(1, CPU_COUNT(&set));
  return std::max(1, static_cast<int>(std::thread::hardware_concurrency()));
}

}  // namespace

bool run_in_workers(const ArgParser& args, const std::string& command, int64_t rollouts) {
  int workers = args.get_int("workers");
  require(workers >= 0 && workers <= 64, "--workers must be 0..64, got " + args.get("workers"));
  const int cores = available_cores();
  if (workers == 0) workers = cores;
  if (workers == 1) return false;
  require(!args.given("shard"),
          "--workers splits the run into shards itself: leave out --shard (or run each shard with --workers 1)");
  require(args.get("robot") == "sim", "--workers needs --robot sim: one real arm runs one episode at a time");
  require(!args.given("live") || !args.get_flag("live"), "--live shows one episode at a time: leave out --workers");

  const fs::path out(args.get("out"));
  const fs::path dir = out / "workers";
  const bool resume = args.get_flag("resume");
  if (!resume) fs::remove_all(dir);
  fs::create_directories(dir);
  const std::string threads = std::to_string(std::max(1, cores / workers));
  std::vector<fs::path> parts, logs;
  for (int k = 0; k < workers; ++k) {
    parts.push_back(dir / ("shard_" + std::to_string(k)));
    logs.push_back(dir / ("shard_" + std::to_string(k) + ".log"));
  }
  // Rollouts a resumed run kept: counted before the workers start, shown as done but not in the rate.
  int64_t kept = 0;
  if (resume)
    for (const fs::path& part : parts) kept += count_rollout_files(part / "rollouts");
  std::vector<pid_t> pids;
  for (int k = 0; k < workers; ++k) {
    std::vector<std::string> argv = {"vlascope", command};
    for (std::string& a : args.given_arguments({"workers", "out", "shard"})) argv.push_back(std::move(a));
    argv.push_back("--shard=" + std::to_string(k) + "/" + std::to_string(workers));
    argv.push_back("--out=" + parts[static_cast<size_t>(k)].string());
    for (const char* option : {"threads", "sim-threads"})  // 0 (all cores) would give each worker every core
      if (!args.given(option) || args.get(option) == "0") argv.push_back(std::string("--") + option + "=" + threads);
    try {
      pids.push_back(spawn_worker(argv, logs[static_cast<size_t>(k)]));
    } catch (const Error&) {
      for (pid_t pid : pids) kill(pid, SIGTERM);
      for (pid_t pid : pids) waitpid(pid, nullptr, 0);
      throw;
    }
  }
  std::printf("%s: %d workers of %s thread%s each, logs in %s\n", command.c_str(), workers, threads.c_str(),
              threads == "1" ? "" : "s", dir.c_str());
  std::fflush(stdout);

  const auto wall0 = std::chrono::steady_clock::now();
  ProgressBar bar(command, rollouts, "rollouts");
  bar.skip(kept);
  int64_t shown = kept;
  std::vector<bool> running(pids.size(), true);
  std::string failure;
  for (size_t left = pids.size(); left > 0;) {
    for (size_t k = 0; k < pids.size(); ++k) {
      int status = 0;
      if (!running[k] || waitpid(pids[k], &status, WNOHANG) != pids[k]) continue;
      running[k] = false;
      --left;
      if (failure.empty() && !(WIFEXITED(status) && WEXITSTATUS(status) == 0))
        failure = "worker " + std::to_string(k) + "/" + std::to_string(workers) + " failed (" +
                  (WIFEXITED(status) ? "exit status " + std::to_string(WEXITSTATUS(status))
                                     : "signal " + std::to_string(WTERMSIG(status))) +
                  "); its log " + logs[k].string() + " ends:\n" + last_lines(logs[k], 12);
    }
    if (!failure.empty()) {
      for (size_t k = 0; k < pids.size(); ++k)
        if (running[k]) kill(pids[k], SIGTERM);
      for (size_t k = 0; k < pids.size(); ++k)
        if (running[k]) waitpid(pids[k], nullptr, 0);
      throw Error(command + " --workers: " + failure +
                  (shown > 0 ? "finished rollouts are kept in " + dir.string() + "; run again with --resume" : ""));
    }
    int64_t done = 0;
    for (const fs::path& part : parts) done += count_rollout_files(part / "rollouts");
    if (done > shown) bar.advance(done - shown);
    shown = std::max(shown, done);
    if (left > 0) std::this_thread::sleep_for(std::chrono::milliseconds(250));
  }
  bar.finish();
  const double wall_seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - wall0).count();

  std::vector<std::string> part_names;
  for (const fs::path& part : parts) part_names.push_back(part.string());
  const ShardedRun shards = read_shards(part_names);
  if (command == "eval") {
    merge_eval_shards(shards, out, RunTime{wall_seconds, rollouts - kept});
    for (const fs::path& part : parts)
      for (const auto& entry : fs::directory_iterator(part))
        if (entry.path().extension() == ".mp4") fs::rename(entry.path(), out / entry.path().filename());
  } else {
    merge_steer_shards(shards, out);
  }
  std::printf("%s: %lld rollouts in %.1f s of wall time: %.1f rollouts/min (%d workers); merged into %s\n",
              command.c_str(), static_cast<long long>(rollouts - kept), wall_seconds,
              60.0 * static_cast<double>(rollouts - kept) / std::max(1e-9, wall_seconds), workers, out.c_str());
  return true;
}

}  // namespace vlascope
