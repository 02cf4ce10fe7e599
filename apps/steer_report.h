// What the steering experiment and sim-vs-real report about sets of rollouts, in one place so both
// measure and print the same things: the lift-segment metrics with their units, comparisons as JSON, and
// the end-effector height aligned at the lift start.
#pragma once

#include <nlohmann/json.hpp>
#include <vector>

#include "interp/steer_experiment.h"

namespace vlascope {

struct MetricDef {
  const char* name;
  const char* unit;
  double scale;     // for printing and reports (m → cm)
  bool needs_lift;  // defined only for rollouts with a lift segment
  MetricGetter get;
};
// mean_height, max_height, max_rise, step_displacement, speed, lift_duration, length.
const std::vector<MetricDef>& metric_defs();
const MetricDef& metric_def(const std::string& name);  // Error for an unknown name

// The metric's values over the rollouts where it is defined, scaled for reports.
std::vector<double> metric_values(const SteerRun& run, const MetricDef& metric);

// null when the comparison is not valid (fewer than two values on a side).
nlohmann::json comparison_json(const SteerComparison& c, double scale);

// The EE height of a run's lifted rollouts around their lift start (aligned by sample index, from 0.5 s
// before the start to 5 s after, at the control rate): per offset, the mean and its 95% band over the
// rollouts that reach it (at least two).
struct LiftAlignedHeight {
  std::vector<double> time, mean, lo, hi;  // s from the lift start; metres
  int lifted = 0;                          // rollouts with a lift segment
};
LiftAlignedHeight lift_aligned_height(const SteerRun& run, double control_hz);

}  // namespace vlascope
