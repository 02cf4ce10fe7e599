#include "interp/closed_loop.h"

#include <algorithm>
#include <cmath>

#include "common/error.h"

namespace vlascope {

const char* concept_name(Concept concept) { return concept == Concept::kLift ? "lift" : "speed"; }

ConceptTarget parse_concept_target(const std::string& text, const std::string& flag) {
  const std::string expected = flag + ": expected lift:METRES or speed:METRES_PER_S (e.g. lift:0.1), got '" + text + "'";
  const size_t colon = text.find(':');
  require(colon != std::string::npos, expected);
  ConceptTarget t;
  const std::string name = text.substr(0, colon), number = text.substr(colon + 1);
  if (name == "lift")
    t.concept = Concept::kLift;
  else if (name == "speed")
    t.concept = Concept::kSpeed;
  else
    throw Error(expected);
  char* end = nullptr;
  t.value = std::strtod(number.c_str(), &end);
  require(!number.empty() && end && *end == '\0' && std::isfinite(t.value) && t.value > 0,
          expected + " (the target must be a positive number)");
  return t;
}

namespace {

double distance(const std::array<double, 3>& a, const std::array<double, 3>& b) {
  return std::sqrt((a[0] - b[0]) * (a[0] - b[0]) + (a[1] - b[1]) * (a[1] - b[1]) + (a[2] - b[2]) * (a[2] - b[2]));
}

// Speed at sample i: distance travelled since the last sample at least kSpeedWindowS earlier (or the first), over
// the time between them; nullopt at the first sample.
std::optional<double> speed_at(const EeTrajectory& t, size_t i) {
  if (i == 0) return std::nullopt;
  size_t j = i;
  while (j > 0 && t.time[i] - t.time[j] < kSpeedWindowS) --j;
  const double dt = t.time[i] - t.time[j];
  if (dt <= 0) return std::nullopt;
  return distance(t.ee[i], t.ee[j]) / dt;
}

}  // namespace

std::optional<double> measure_concept(Concept concept, const std::vector<RolloutStep>& steps, const RolloutStep& now) {
  RolloutResult so_far;
  so_far.steps = steps;
  so_far.steps.push_back(now);
  const EeTrajectory t = so_far.ee_trajectory();
  if (concept == Concept::kSpeed) return speed_at(t, t.time.size() - 1);
  if (t.time.size() < 2) return std::nullopt;
  const LiftSegment lift = find_lift_segment(t);
  if (lift.status == LiftStatus::kNoGrasp) return std::nullopt;
  return now.end_effector.position[2] - lift.grasp_height;
}

double concept_error(const RolloutResult& rollout, const LiftSegment& lift, const ConceptTarget& target) {
  const EeTrajectory t = rollout.ee_trajectory();
  double sum = 0;
  int n = 0;
  if (target.concept == Concept::kLift) {
    if (lift.status != LiftStatus::kLifted) return target.value;
    for (size_t i = static_cast<size_t>(lift.lift_start_index); i < t.time.size(); ++i, ++n)
      sum += std::abs(t.ee[i][2] - lift.grasp_height - target.value);
  } else {
    for (size_t i = 1; i < t.time.size(); ++i)
      if (const std::optional<double> v = speed_at(t, i)) sum += std::abs(*v - target.value), ++n;
  }
  return n ? sum / n : target.value;
}

AlphaController::AlphaController(const ControllerOptions& options, double target)
    : options_(options), target_(target) {
  require(target != 0 && std::isfinite(target), "closed-loop steering: the target must be a non-zero number");
  require(options.alpha_min <= options.alpha_max, "closed-loop steering: α's lower clip is above its upper clip");
}

double AlphaController::update(double measured, double dt) {
  const double error = (target_ - measured) / target_;
  const double derivative = started_ && dt > 0 ? (error - previous_error_) / dt : 0;
  const double candidate = integral_ + (started_ ? error * std::max(0.0, dt) : 0);
  auto output = [&](double integral) {
    return options_.kp * error + options_.ki * integral + options_.kd * derivative;
  };
  double u = output(candidate);
  // Conditional integration: while the output is clipped and the error pushes it further out, the integral holds.
  const bool winding_up = (u > options_.alpha_max && error > 0) || (u < options_.alpha_min && error < 0);
  if (winding_up)
    u = output(integral_);
  else
    integral_ = candidate;
  previous_error_ = error;
  started_ = true;
  return std::clamp(u, options_.alpha_min, options_.alpha_max);
}

}  // namespace vlascope
