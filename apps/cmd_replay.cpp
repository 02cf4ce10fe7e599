// vlascope replay: re-runs the recorded actions of simulated episodes from their recorded seeds and reports how far
// the replayed joint, end-effector and cube trajectories drift from the recorded ones. A faithful simulator
// reproduces its own recordings to float precision; drift means the scene, the physics settings or the simulator
// changed since the data was collected.
#include <algorithm>
#include <cmath>
#include <cstdio>

#include "apps/commands.h"
#include "apps/sim_episodes.h"
#include "common/cli.h"
#include "common/error.h"
#include "common/plot.h"
#include "common/progress.h"
#include "dataset/dataset.h"
#include "hardware/units.h"

namespace vlascope {

namespace {

struct Deviation {
  double joint_max_deg = 0, joint_rms_deg = 0;  // the five arm joints, LeRobot degrees
  double gripper_max = 0;                       // LeRobot 0–100 units
  double ee_max_mm = 0, ee_final_mm = 0;
  double cube_max_mm = 0;
  bool recorded_success = false, replayed_success = false;
  std::vector<double> ee_mm;  // per frame
};

double norm3(const std::array<float, 3>& a, const std::array<double, 3>& b) {
  double s = 0;
  for (int i = 0; i < 3; ++i) s += (a[i] - b[i]) * (a[i] - b[i]);
  return std::sqrt(s);
}

Deviation replay_episode(const DatasetReader& reader, int episode, const std::string& scene) {
  const EpisodeInfo& info = reader.info(episode);
  require(info.robot == "sim",
          reader.path(episode) + " was recorded on '" + info.robot + "'; only simulated episodes can be replayed");
  SimOptions base;
  base.cameras = {};
  base.scene = scene;
  Simulator sim(sim_options_from(info, base));
  const std::vector<Frame> frames = reader.trajectory(episode);
  sim.reset(info.seed);
  Deviation d;
  double sum_sq = 0;
  for (const Frame& frame : frames) {
    const Observation obs = sim.observe();
    const JointVector state = to_lerobot(obs.joint_positions);
    for (int j = 0; j < kGripper; ++j) {
      const double e = std::abs(state[j] - frame.state[j]);
      d.joint_max_deg = std::max(d.joint_max_deg, e);
      sum_sq += e * e;
    }
    d.gripper_max = std::max(d.gripper_max, std::abs(state[kGripper] - frame.state[kGripper]));
    const double ee = 1e3 * norm3(frame.ee_position, obs.end_effector.position);
    d.ee_mm.push_back(ee);
    d.ee_max_mm = std::max(d.ee_max_mm, ee);
    if (std::isfinite(frame.object_position[0]))
      d.cube_max_mm = std::max(d.cube_max_mm, 1e3 * norm3(frame.object_position, sim.cube_pose().position));
    JointVector action;
    for (int j = 0; j < kNumJoints; ++j) action[j] = frame.action[j];
    sim.act(from_lerobot(action));
  }
  d.joint_rms_deg = std::sqrt(sum_sq / std::max<size_t>(1, frames.size() * kGripper));
  d.ee_final_mm = d.ee_mm.empty() ? 0 : d.ee_mm.back();
  d.recorded_success = info.success;
  d.replayed_success = sim.task_state()->success;
  return d;
}

}  // namespace

int run_replay(int argc, char** argv) {
  ArgParser args("vlascope replay",
                 "Re-run the recorded actions of simulated episodes in the simulator, from each episode's seed and\n"
                 "stored simulator settings, and report the deviation of the joint, end-effector and cube\n"
                 "trajectories from the recording (and whether the replay succeeds where the recording did).");
  args.positional("dataset", "dataset directory");
  args.option("episodes", "all", "episode indices, e.g. 0,3,7, or all");
  args.option("tolerance-mm", "1", "end-effector deviation above which an episode counts as diverged");
  args.option("plot", "", "write the per-frame end-effector deviation of every episode to this PNG");
  args.option("scene", "", "MJCF scene (default: scenes/pick_cube.xml)");
  args.flag("strict", "exit with status 1 if any episode diverged or its success changed");
  if (!args.parse(argc, argv)) return 0;

  DatasetReader reader(args.get("dataset"));
  std::vector<int> episodes;
  if (args.get("episodes") == "all") {
    for (int e = 0; e < reader.num_episodes(); ++e) episodes.push_back(e);
  } else {
    for (double e : args.get_doubles("episodes")) {
      require(e >= 0 && e < reader.num_episodes() && e == std::floor(e),
              "--episodes: no episode " + std::to_string(e) + " (the dataset has " +
                  std::to_string(reader.num_episodes()) + ")");
      episodes.push_back(static_cast<int>(e));
    }
  }
  require(!episodes.empty(), args.get("dataset") + " holds no episodes");
  const double tolerance = args.get_double("tolerance-mm");

  std::vector<Deviation> results;
  {
    ProgressBar bar("replay", static_cast<int64_t>(episodes.size()), "episodes");
    for (int e : episodes) {
      results.push_back(replay_episode(reader, e, args.get("scene")));
      bar.advance();
    }
  }

  std::printf("%7s %-8s %6s %12s %12s %9s %10s %10s %10s %8s\n", "episode", "variant", "frames", "joint max°",
              "joint rms°", "gripper", "ee max mm", "ee end mm", "cube max mm", "success");
  int diverged = 0, flipped = 0;
  double worst = 0;
  for (size_t i = 0; i < episodes.size(); ++i) {
    const Deviation& d = results[i];
    const EpisodeInfo& info = reader.info(episodes[i]);
    const bool bad = d.ee_max_mm > tolerance, changed = d.recorded_success != d.replayed_success;
    diverged += bad;
    flipped += changed;
    worst = std::max(worst, d.ee_max_mm);
    std::printf("%7d %-8s %6d %12.3g %12.3g %9.3g %10.3g %10.3g %10.3g %4s→%-3s%s\n", episodes[i], info.variant.c_str(),
                static_cast<int>(d.ee_mm.size()), d.joint_max_deg, d.joint_rms_deg, d.gripper_max, d.ee_max_mm,
                d.ee_final_mm, d.cube_max_mm, d.recorded_success ? "yes" : "no", d.replayed_success ? "yes" : "no",
                bad ? "  DIVERGED" : "");
  }
  std::printf("%zu episodes replayed: largest end-effector deviation %.3g mm; %d above %.3g mm; %d changed success\n",
              episodes.size(), worst, diverged, tolerance, flipped);

  if (!args.get("plot").empty()) {
    LinePlot plot{"Replay: end-effector deviation from the recording", "frame", "deviation (mm)"};
    for (size_t i = 0; i < episodes.size(); ++i) {
      std::vector<double> x(results[i].ee_mm.size());
      for (size_t k = 0; k < x.size(); ++k) x[k] = static_cast<double>(k);
      plot.add("episode " + std::to_string(episodes[i]), x, results[i].ee_mm).colour = palette(static_cast<int>(i));
    }
    plot.hlines.push_back({tolerance, "tolerance"});
    plot.save(args.get("plot"));
    std::printf("plot: %s\n", args.get("plot").c_str());
  }
  return args.get_flag("strict") && (diverged || flipped) ? 1 : 0;
}

}  // namespace vlascope
