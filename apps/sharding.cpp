#include "apps/sharding.h"

#include <fstream>

#include "common/error.h"
#include "common/json_io.h"

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
    if (key == "shard" || key == "checkpoint") return;
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

}  // namespace vlascope
