#include "interp/steer_experiment.h"

#include "common/error.h"
#include "common/progress.h"
#include "interp/capture.h"
#include "policy/policy.h"

namespace vlascope {

SteerMetrics steer_metrics(const RolloutResult& r, const LiftSegment& lift) {
  SteerMetrics m;
  m.success = r.success;
  m.lifted = lift.status == LiftStatus::kLifted;
  m.length = r.success ? r.success_time : r.seconds;
  if (m.lifted) {
    m.mean_height = lift.mean_height;
    m.max_height = lift.max_height;
    m.mean_rise = lift.mean_rise;
    m.max_rise = lift.max_rise;
    m.step_displacement = lift.mean_step_displacement;
    m.speed = lift.mean_speed;
    m.lift_duration = lift.duration_s;
  }
  return m;
}

std::vector<SteerRun> run_steer_conditions(const RobotFactory& robots, Policy& policy,
                                           const std::vector<NeuronSet>& sets,
                                           const std::vector<SteerCondition>& conditions, int n, uint64_t seed0,
                                           const RolloutOptions& options, const BatchOptions& batch,
                                           const BeforeRollout& before_rollout) {
  require(!before_rollout || batch.lanes == 1, "steering: a step before each rollout needs one rollout at a time");
  std::vector<uint64_t> seeds;
  for (int k = 0; k < n; ++k) seeds.push_back(seed0 + static_cast<uint64_t>(k));
  std::vector<SteerRun> runs;
  ProgressBar bar("steer", static_cast<int64_t>(conditions.size()) * n, "rollouts");
  for (const SteerCondition& c : conditions) {
    SteerRun run;
    run.condition = c;
    Steering steering(policy.model(), sets, c.interventions);
    RolloutOptions o = options;
    if (!c.task.empty()) o.task = c.task;
    int successes = 0, finished = 0;
    RolloutCallbacks callbacks;
    if (before_rollout)
      callbacks.start = [&](int k) {
        before_rollout(c, k);
        return RolloutObserver{};
      };
    callbacks.done = [&](int, const RolloutResult& r) {
      successes += r.success;
      bar.set_status(c.name + " success " + std::to_string(successes) + "/" + std::to_string(++finished));
      bar.advance();
    };
    run.rollouts = run_rollouts(robots, policy, seeds, o, batch, callbacks);
    for (const RolloutResult& r : run.rollouts) {
      const LiftSegment lift = find_lift_segment(r.ee_trajectory());
      run.metrics.push_back(steer_metrics(r, lift));
      run.lifts.push_back(lift);
    }
    runs.push_back(std::move(run));
  }
  bar.finish();
  return runs;
}

std::vector<SteerRun> run_steer_conditions(Robot& robot, Policy& policy, const std::vector<NeuronSet>& sets,
                                           const std::vector<SteerCondition>& conditions, int n, uint64_t seed0,
                                           const RolloutOptions& options, const BeforeRollout& before_rollout) {
  const std::shared_ptr<Robot> borrowed(std::shared_ptr<Robot>{}, &robot);
  return run_steer_conditions([&](int) { return borrowed; }, policy, sets, conditions, n, seed0, options, BatchOptions{},
                              before_rollout);
}

SteerComparison compare_runs(const SteerRun& a, const SteerRun& b, const std::string& metric, const MetricGetter& get,
                             bool needs_lift) {
  SteerComparison c;
  c.metric = metric;
  c.a = a.condition.name;
  c.b = b.condition.name;
  std::vector<double> x, y;
  for (const SteerMetrics& m : a.metrics)
    if (!needs_lift || m.lifted) x.push_back(get(m));
  for (const SteerMetrics& m : b.metrics)
    if (!needs_lift || m.lifted) y.push_back(get(m));
  if (x.size() < 2 || y.size() < 2) return c;
  c.summary_a = summarize(x);
  c.summary_b = summarize(y);
  if (sample_sd(x) == 0 && sample_sd(y) == 0) return c;
  c.welch = welch_t_test(x, y);
  c.mann_whitney = mann_whitney_u(x, y);
  c.hedges_g = hedges_g(x, y);
  c.valid = true;
  return c;
}

}  // namespace vlascope
