#include "apps/steer_report.h"

#include <cmath>

#include "common/error.h"

namespace vlascope {

const std::vector<MetricDef>& metric_defs() {
  static const std::vector<MetricDef> defs = {
      {"mean_height", "cm", 100, true, [](const SteerMetrics& m) { return m.mean_height; }},
      {"max_height", "cm", 100, true, [](const SteerMetrics& m) { return m.max_height; }},
      {"max_rise", "cm", 100, true, [](const SteerMetrics& m) { return m.max_rise; }},
      {"step_displacement", "mm/step", 1000, true, [](const SteerMetrics& m) { return m.step_displacement; }},
      {"speed", "cm/s", 100, true, [](const SteerMetrics& m) { return m.speed; }},
      {"lift_duration", "s", 1, true, [](const SteerMetrics& m) { return m.lift_duration; }},
      {"length", "s", 1, false, [](const SteerMetrics& m) { return m.length; }},
  };
  return defs;
}

const MetricDef& metric_def(const std::string& name) {
  for (const MetricDef& m : metric_defs())
    if (name == m.name) return m;
  throw Error("unknown metric '" + name + "'");
}

std::vector<double> metric_values(const SteerRun& run, const MetricDef& metric) {
  std::vector<double> v;
  for (const SteerMetrics& x : run.metrics)
    if (!metric.needs_lift || x.lifted) v.push_back(metric.get(x) * metric.scale);
  return v;
}

nlohmann::json comparison_json(const SteerComparison& c, double scale) {
  if (!c.valid) return nullptr;
  return {{"a", c.a},
          {"b", c.b},
          {"mean_a", c.summary_a.mean * scale},
          {"mean_b", c.summary_b.mean * scale},
          {"n_a", c.summary_a.n},
          {"n_b", c.summary_b.n},
          {"difference", c.welch.difference * scale},
          {"ci95", {c.welch.ci_lo * scale, c.welch.ci_hi * scale}},
          {"welch_p", c.welch.p},
          {"mann_whitney_p", c.mann_whitney.p},
          {"hedges_g", c.hedges_g}};
}

LiftAlignedHeight lift_aligned_height(const SteerRun& run, double control_hz) {
  const int before = static_cast<int>(std::lround(0.5 * control_hz)), after = static_cast<int>(std::lround(5 * control_hz));
  std::vector<std::vector<double>> at(static_cast<size_t>(before + after));
  LiftAlignedHeight h;
  for (size_t k = 0; k < run.rollouts.size(); ++k) {
    const LiftSegment& lift = run.lifts[k];
    if (lift.status != LiftStatus::kLifted) continue;
    ++h.lifted;
    const std::vector<RolloutStep>& steps = run.rollouts[k].steps;
    for (int d = -before; d < after; ++d) {
      const int i = lift.lift_start_index + d;
      if (i >= 0 && i < static_cast<int>(steps.size()))
        at[static_cast<size_t>(d + before)].push_back(steps[static_cast<size_t>(i)].end_effector.position[2]);
    }
  }
  for (int d = -before; d < after; ++d) {
    const std::vector<double>& v = at[static_cast<size_t>(d + before)];
    if (v.size() < 2) continue;
    const Summary s = summarize(v);
    h.time.push_back(d / control_hz), h.mean.push_back(s.mean), h.lo.push_back(s.ci_lo), h.hi.push_back(s.ci_hi);
  }
  return h;
}

}  // namespace vlascope
