// vlascope sim-vs-real: one experiment configuration (a checkpoint, seeds, optional steering) run in the MuJoCo twin
// and on the real SO-100, measured the same way in both worlds — the end-effector lift segment from the shared
// kinematics (interp/lift_segment.h) — and reported side by side: height traces aligned at the lift start, the
// per-condition table for each world, real − sim differences, plots and JSON.
//
// The real arm runs first, so that a wrong port, calibration or camera stops the command before the simulation
// has spent its time.
#include <cmath>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <iostream>
#include <nlohmann/json.hpp>

#include "apps/commands.h"
#include "apps/policy_options.h"
#include "apps/robot_factory.h"
#include "apps/steer_report.h"
#include "common/cli.h"
#include "common/error.h"
#include "common/plot.h"
#include "interp/steer_experiment.h"

namespace vlascope {
namespace {

namespace fs = std::filesystem;

struct World {
  std::string key;    // "sim", "real": the report's name for it
  std::string robot;  // Robot::name()
  double control_hz = 30;
  std::vector<SteerRun> runs;  // one per condition, in the same order in both worlds
};

int successes(const SteerRun& r) {
  int s = 0;
  for (const SteerMetrics& m : r.metrics) s += m.success;
  return s;
}

int lifted(const SteerRun& r) {
  int n = 0;
  for (const SteerMetrics& m : r.metrics) n += m.lifted;
  return n;
}

// Mean of a metric over the rollouts where it is defined; NaN when there are none.
double metric_mean(const SteerRun& run, const MetricDef& m) {
  const std::vector<double> v = metric_values(run, m);
  return v.empty() ? NAN : mean(v);
}

nlohmann::json number_or_null(double x) { return std::isfinite(x) ? nlohmann::json(x) : nlohmann::json(nullptr); }

nlohmann::json condition_json(const SteerRun& run, bool success_known) {
  nlohmann::json c;
  c["rollouts"] = run.metrics.size();
  c["successes"] = success_known ? nlohmann::json(successes(run)) : nlohmann::json(nullptr);
  c["lifted"] = lifted(run);
  for (const MetricDef& m : metric_defs()) {
    const std::vector<double> v = metric_values(run, m);
    nlohmann::json j = {{"unit", m.unit}, {"n", v.size()}, {"mean", nullptr}};
    if (!v.empty()) j["mean"] = mean(v);
    if (v.size() >= 2) {
      const Summary s = summarize(v);
      j["sd"] = s.sd;
      j["ci95"] = {s.ci_lo, s.ci_hi};
    }
    c["metrics"][m.name] = j;
  }
  nlohmann::json episodes = nlohmann::json::array();
  for (size_t k = 0; k < run.rollouts.size(); ++k) {
    const RolloutResult& r = run.rollouts[k];
    const LiftSegment& lift = run.lifts[k];
    std::vector<double> time, ee_z;
    for (const RolloutStep& s : r.steps) time.push_back(s.time), ee_z.push_back(s.end_effector.position[2]);
    episodes.push_back({{"seed", r.seed},
                        {"success", success_known ? nlohmann::json(r.success) : nlohmann::json(nullptr)},
                        {"seconds", r.seconds},
                        {"lift", lift.describe()},
                        {"lift_status", lift_status_name(lift.status)},
                        {"lift_start_index", lift.lift_start_index},
                        {"time_s", time},
                        {"ee_z_m", ee_z}});
  }
  c["episodes"] = episodes;
  return c;
}

// Real − sim for every metric: the difference of the means when both worlds have a value, and Welch's test with
// its 95% CI when both have at least two.
nlohmann::json differences_json(const SteerRun& real, const SteerRun& sim) {
  nlohmann::json d;
  for (const MetricDef& m : metric_defs()) {
    const double a = metric_mean(real, m), b = metric_mean(sim, m);
    d[m.name] = {{"unit", m.unit},
                 {"real_minus_sim", number_or_null(a - b)},
                 {"test", comparison_json(compare_runs(real, sim, m.name, m.get, m.needs_lift), m.scale)}};
  }
  return d;
}

// The lift-aligned mean height per condition, sim solid and real dashed in the condition's colour.
void plot_aligned(const World& sim, const World& real, const std::string& path) {
  LinePlot plot{"End-effector height from the lift start: sim solid, real dashed (mean, 95% band)",
                "time from lift start (s)", "end-effector height (m)"};
  int drawn = 0;
  for (size_t c = 0; c < sim.runs.size(); ++c) {
    for (const World* w : {&sim, &real}) {
      const LiftAlignedHeight h = lift_aligned_height(w->runs[c], w->control_hz);
      if (h.time.size() < 2) continue;
      Series& s = plot.add(w->runs[c].condition.name + " " + w->key + " (n=" + std::to_string(h.lifted) + ")", h.time,
                           h.mean, h.lo, h.hi);
      s.colour = palette(static_cast<int>(c));
      s.dashed = w == &real;
      ++drawn;
    }
  }
  if (drawn == 0) plot.title = "End-effector height from the lift start: no condition has two lifted rollouts";
  plot.save(path);
}

// Every episode's height from its start, sim blue and real red, like eval's ee_height.png.
void plot_raw(const World& sim, const World& real, const std::string& path) {
  LinePlot plot{"End-effector height per episode: sim (blue) vs real (red)", "time (s)", "height (m)"};
  for (const World* w : {&sim, &real}) {
    bool first = true;
    for (const SteerRun& run : w->runs)
      for (const RolloutResult& r : run.rollouts) {
        std::vector<double> t, z;
        for (const RolloutStep& s : r.steps) t.push_back(s.time), z.push_back(s.end_effector.position[2]);
        if (t.size() < 2) continue;
        Series& s = plot.add(first ? w->key : "", t, z);
        s.colour = w == &sim ? Rgb{40, 120, 200} : Rgb{220, 80, 60};
        s.dashed = run.condition.interventions.size() > 0;
        first = false;
      }
  }
  plot.save(path);
}

}  // namespace

int run_sim_vs_real(int argc, char** argv) {
  ArgParser args("vlascope sim-vs-real",
                 "Run one experiment configuration — a checkpoint on the same seeds, without and (with --steer) with\n"
                 "neuron sets switched on — on the real SO-100 and in the MuJoCo twin, and report the two side by side:\n"
                 "end-effector height traces aligned at the lift start, per condition and world the lift segment's\n"
                 "mean/max height, speed and episode length, the real − sim differences (Welch 95% CI), plots, JSON.\n"
                 "The real arm's options are those of --robot so100 (--port, --cameras named like the simulator's\n"
                 "cameras, …); the simulation uses --sim-size, --sim-quality and --scene.");
  add_policy_options(args);
  add_episode_options(args);
  add_steering_options(args);
  add_robot_options(args, RobotOptions::kBothWorlds);
  args.option("episodes", "5", "episodes per condition and world; episode k uses seed + k");
  args.option("seed", "300000", "first seed (the simulator's scene; a label on the real arm)");
  args.flag("wait", "real arm: wait for Enter before each episode (time to put the cube back)");
  args.required("out", "output directory");
  if (!args.parse(argc, argv)) return 0;
  const fs::path out(args.get("out"));
  const int episodes = args.get_int("episodes");
  require(episodes > 0, "--episodes must be positive");
  const uint64_t seed0 = static_cast<uint64_t>(args.get_int64("seed"));
  fs::create_directories(out);

  std::unique_ptr<Policy> policy = load_policy(args);
  const std::unique_ptr<SplicedSae> sae = sae_splice_from(args, *policy);  // in both worlds, every condition
  const std::vector<NeuronSet> sets = steering_sets(args);
  const std::vector<Intervention> interventions = steering_interventions(args);
  std::vector<SteerCondition> conditions = {{"baseline", {}, ""}};
  if (!interventions.empty()) {
    std::string name;
    for (const Intervention& iv : interventions) name += (name.empty() ? "" : "+") + iv.set;
    conditions.push_back({name, interventions, ""});
  }
  const RolloutOptions options = rollout_options(args);

  World real{"real", "", 30, {}}, sim{"sim", "", 30, {}};
  {
    std::unique_ptr<So100Follower> arm = make_so100_follower(args);
    real.robot = arm->name();
    real.control_hz = arm->control_hz();
    std::printf("real: %s on %s, %zu condition(s) × %d episodes\n", real.robot.c_str(), arm->port().c_str(),
                conditions.size(), episodes);
    std::fflush(stdout);
    BeforeRollout wait;
    if (args.get_flag("wait"))
      wait = [&](const SteerCondition& c, int k) {
        std::fprintf(stderr, "real arm, %s episode %d/%d: put the cube in place and press Enter\n", c.name.c_str(), k + 1,
                     episodes);
        std::string line;
        require(static_cast<bool>(std::getline(std::cin, line)), "--wait: stdin ended before the real episodes did");
      };
    real.runs = run_steer_conditions(*arm, *policy, sets, conditions, episodes, seed0, options, wait);
    arm->stop();
  }
  {
    std::unique_ptr<Robot> robot = make_sim_robot(args);
    sim.robot = robot->name();
    sim.control_hz = robot->control_hz();
    std::printf("sim: %zu condition(s) × %d episodes\n", conditions.size(), episodes);
    std::fflush(stdout);
    sim.runs = run_steer_conditions(*robot, *policy, sets, conditions, episodes, seed0, options);
  }

  // Report.
  nlohmann::json report;
  report["checkpoint"] = args.get("checkpoint");
  report["task"] = options.task;
  report["episodes_per_condition"] = episodes;
  report["first_seed"] = seed0;
  report["steering"] = nlohmann::json::array();
  for (const Intervention& iv : interventions) report["steering"].push_back(iv.describe());
  for (const World* w : {&sim, &real}) {
    nlohmann::json& j = report["worlds"][w->key];
    j["robot"] = w->robot;
    j["control_hz"] = w->control_hz;
    const bool known = w == &sim;  // only the simulator knows whether the cube was lifted
    j["success_known"] = known;
    for (const SteerRun& run : w->runs) j["conditions"][run.condition.name] = condition_json(run, known);
  }
  for (size_t c = 0; c < conditions.size(); ++c)
    report["differences_real_minus_sim"][conditions[c].name] = differences_json(real.runs[c], sim.runs[c]);
  std::ofstream(out / "sim_vs_real.json") << report.dump(2) << "\n";

  std::ofstream csv(out / "sim_vs_real.csv");
  csv << "condition,world,rollouts,lifted";
  for (const MetricDef& m : metric_defs()) csv << "," << m.name << "_" << m.unit;
  csv << "\n";
  for (size_t c = 0; c < conditions.size(); ++c)
    for (const World* w : {&sim, &real}) {
      const SteerRun& run = w->runs[c];
      csv << run.condition.name << "," << w->key << "," << run.metrics.size() << "," << lifted(run);
      for (const MetricDef& m : metric_defs()) {
        const double x = metric_mean(run, m);
        csv << ",";
        if (std::isfinite(x)) csv << x;
      }
      csv << "\n";
    }

  plot_aligned(sim, real, (out / "height_aligned.png").string());
  plot_raw(sim, real, (out / "height_raw.png").string());

  // Terminal table: each condition in both worlds and the difference.
  std::printf("%-12s %-11s %6s %12s %12s %13s %10s\n", "condition", "world", "lifted", "mean h (cm)", "max h (cm)",
              "speed (cm/s)", "length s");
  const MetricDef& mh = metric_def("mean_height");
  const MetricDef& xh = metric_def("max_height");
  const MetricDef& sp = metric_def("speed");
  const MetricDef& len = metric_def("length");
  for (size_t c = 0; c < conditions.size(); ++c) {
    for (const World* w : {&sim, &real}) {
      const SteerRun& run = w->runs[c];
      std::printf("%-12s %-11s %3d/%-2zu %12.2f %12.2f %13.2f %10.2f\n", conditions[c].name.c_str(), w->key.c_str(),
                  lifted(run), run.metrics.size(), metric_mean(run, mh), metric_mean(run, xh), metric_mean(run, sp),
                  metric_mean(run, len));
    }
    auto diff = [&](const MetricDef& m) { return metric_mean(real.runs[c], m) - metric_mean(sim.runs[c], m); };
    std::printf("%-12s %-11s %6s %+12.2f %+12.2f %+13.2f %+10.2f\n", conditions[c].name.c_str(), "real − sim", "",
                diff(mh), diff(xh), diff(sp), diff(len));
  }
  std::printf("(nan: no lifted rollout in that world)\nwrote %s\n", (out / "sim_vs_real.json").c_str());
  return 0;
}

}  // namespace vlascope
