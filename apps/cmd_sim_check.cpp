// vlascope sim-check: how healthy the digital twin and its expert are. Runs expert episodes without rendering for
// every variant and reports success, lift heights, durations and how closely the position servos track the 30 Hz
// joint targets; optionally plots one episode's targets against the joints.
#include <algorithm>
#include <cmath>
#include <cstdio>
#include <mutex>
#include <thread>

#include "apps/commands.h"
#include "common/cli.h"
#include "common/error.h"
#include "common/plot.h"
#include "common/progress.h"
#include "sim/expert.h"
#include "sim/simulator.h"

namespace vlascope {

namespace {

struct Stats {
  int episodes = 0, successes = 0;
  double lift_min = INFINITY, lift_max = 0, lift_sum = 0;
  double duration_min = INFINITY, duration_max = 0, duration_sum = 0;
  JointVector tracking_sq{}, tracking_max{};
  double ik_max = 0;

  void add(const ExpertEpisode& e) {
    ++episodes;
    successes += e.success;
    lift_min = std::min(lift_min, e.max_cube_lift), lift_max = std::max(lift_max, e.max_cube_lift);
    lift_sum += e.max_cube_lift;
    duration_min = std::min(duration_min, e.duration), duration_max = std::max(duration_max, e.duration);
    duration_sum += e.duration;
    for (int j = 0; j < kNumJoints; ++j) {
      tracking_sq[j] += e.tracking_rms[j] * e.tracking_rms[j];
      tracking_max[j] = std::max(tracking_max[j], e.tracking_max[j]);
    }
    ik_max = std::max(ik_max, e.max_ik_error);
  }
};

constexpr double kDeg = 180 / M_PI;

// Targets and joint positions of one episode, per joint, in degrees, as a plot.
void plot_tracking(const std::string& path, const std::string& variant, uint64_t seed, const std::string& scene) {
  SimOptions options;
  options.cameras = {};
  options.scene = scene;
  Simulator sim(options);
  std::vector<double> time;
  std::array<std::vector<double>, kNumJoints> target, actual;
  run_expert_episode(sim, expert_variant(variant), seed,
                     [&](int, const Observation& obs, const JointVector& action, ExpertPhase) {
                       time.push_back(obs.timestamp);
                       for (int j = 0; j < kNumJoints; ++j) {
                         target[j].push_back(action[j] * kDeg);
                         actual[j].push_back(obs.joint_positions[j] * kDeg);
                       }
                     });
  LinePlot plot{"Joint targets (dashed) and joints, expert '" + variant + "' seed " + std::to_string(seed), "time (s)",
                "joint angle (deg, simulator convention)"};
  for (int j = 0; j < kNumJoints; ++j) {
    plot.add(kJointNames[j], time, actual[j]).colour = palette(j);
    Series& t = plot.add("", time, target[j]);
    t.colour = palette(j);
    t.dashed = true;
  }
  plot.save(path, 1000, 560);
}

}  // namespace

int run_sim_check(int argc, char** argv) {
  ArgParser args("vlascope sim-check",
                 "Run the scripted expert headless for every variant and report success, cube lift, episode\n"
                 "duration and servo tracking (joint target at tick k vs joint one tick later), so a change to\n"
                 "the scene, the actuators or the expert shows up as numbers.");
  args.option("episodes", "50", "episodes per variant (seeds 0 … n-1)");
  args.option("variants", "high,low,fast,slow", "expert variants");
  args.option("threads", "2", "simulation threads");
  args.option("plot", "", "write one episode's joint targets and joints to this PNG");
  args.option("scene", "", "MJCF scene (default: scenes/pick_cube.xml)");
  if (!args.parse(argc, argv)) return 0;
  const int episodes = args.get_int("episodes"), threads = args.get_int("threads");
  require(episodes > 0, "--episodes must be positive");
  require(threads >= 1 && threads <= 64, "--threads must be 1..64");
  const std::vector<std::string> variants = args.get_list("variants");
  for (const std::string& v : variants) expert_variant(v);  // unknown names fail here
  require(!variants.empty(), "--variants is empty");

  std::vector<Stats> stats(variants.size());
  std::mutex mutex;
  std::optional<std::string> error;
  ProgressBar bar("sim-check", static_cast<int64_t>(variants.size()) * episodes, "episodes");
  auto worker = [&](int thread) {
    try {
      SimOptions options;
      options.cameras = {};
      options.scene = args.get("scene");
      Simulator sim(options);
      for (size_t v = 0; v < variants.size(); ++v)
        for (int seed = thread; seed < episodes; seed += threads) {
          const ExpertEpisode e = run_expert_episode(sim, expert_variant(variants[v]), static_cast<uint64_t>(seed));
          std::lock_guard<std::mutex> lock(mutex);
          stats[v].add(e);
          bar.advance();
        }
    } catch (const std::exception& e) {
      std::lock_guard<std::mutex> lock(mutex);
      error = e.what();
    }
  };
  std::vector<std::thread> pool;
  for (int t = 0; t < threads; ++t) pool.emplace_back(worker, t);
  for (std::thread& t : pool) t.join();
  bar.finish();
  if (error) throw Error("sim-check: " + *error);

  std::printf("%-6s %9s %22s %22s %8s\n", "variant", "success", "cube lift m (min..max)", "duration s (min..max)",
              "IK mm");
  for (size_t v = 0; v < variants.size(); ++v) {
    const Stats& s = stats[v];
    std::printf("%-7s %4d/%-4d %7.3f (%.3f..%.3f) %7.2f (%.2f..%.2f) %8.2f\n", variants[v].c_str(), s.successes,
                s.episodes, s.lift_sum / s.episodes, s.lift_min, s.lift_max, s.duration_sum / s.episodes,
                s.duration_min, s.duration_max, s.ik_max * 1e3);
  }
  std::printf("\ntracking, degrees RMS / max (gripper: while reaching; holding the cube it squeezes by design)\n%-7s",
              "variant");
  for (const char* name : kJointNames) std::printf(" %15s", name);
  std::printf("\n");
  for (size_t v = 0; v < variants.size(); ++v) {
    std::printf("%-7s", variants[v].c_str());
    for (int j = 0; j < kNumJoints; ++j)
      std::printf("     %5.2f / %4.2f", std::sqrt(stats[v].tracking_sq[j] / stats[v].episodes) * kDeg,
                  stats[v].tracking_max[j] * kDeg);
    std::printf("\n");
  }
  if (!args.get("plot").empty()) {
    plot_tracking(args.get("plot"), variants.front(), 0, args.get("scene"));
    std::printf("plot: %s\n", args.get("plot").c_str());
  }
  return 0;
}

}  // namespace vlascope
