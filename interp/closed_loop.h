// Closed-loop steering (issue 16; CTRL-STEER, arXiv 2606.00269): α is a signal, not a constant. At every policy
// call a controller sets α from the measured concept — the end effector's rise above its grasp height, or its
// speed — toward a target, so a push that lifts the arm stops pushing once it is there, instead of overshooting and
// breaking the grasp as a large static α does (models/README.md, "Steering").
//
// The measurements use only what the real arm also reports (the end-effector trajectory and the gripper), found the
// same way as the lift segment (interp/lift_segment.h), so the same controller runs in sim and on the arm.
#pragma once

#include <optional>
#include <string>
#include <vector>

#include "interp/lift_segment.h"
#include "interp/rollout.h"

namespace vlascope {

enum class Concept {
  kLift,   // metres the end effector is above its height at the grasp (0 before a held grasp)
  kSpeed,  // m/s of the end effector over the last speed_window_s
};
const char* concept_name(Concept concept);  // "lift" | "speed"

// "lift:0.1" or "speed:0.15": a concept and the value to hold it at (m, m/s). Error naming `flag` otherwise.
struct ConceptTarget {
  Concept concept = Concept::kLift;
  double value = 0;
};
ConceptTarget parse_concept_target(const std::string& text, const std::string& flag);

// The concept measured on an episode so far (the steps recorded up to and including `now`); nullopt while it is not
// defined — the lift before the gripper has held a grasp, the speed before two samples.
inline constexpr double kSpeedWindowS = 1.0 / 3;
std::optional<double> measure_concept(Concept concept, const std::vector<RolloutStep>& steps, const RolloutStep& now);

// Mean |concept − target| of a finished episode, over its steps from the lift start (lift) or from the first step
// (speed) to the end; an episode that never lifted counts the whole target as its error (nothing was lifted).
double concept_error(const RolloutResult& rollout, const LiftSegment& lift, const ConceptTarget& target);

// A PID controller on the relative error e = (target − measured) / target, so the gains carry across concepts and
// units (CTRL-STEER's defaults: K_P 4, K_I 0.5, K_D 1, α in [0, 20]). Anti-windup by conditional integration: the
// integral does not grow while the output is clipped in the direction the error pushes it. The derivative is of the
// error between calls (no derivative on the first call).
struct ControllerOptions {
  double kp = 4, ki = 0.5, kd = 1;
  double alpha_min = 0, alpha_max = 20;
};
class AlphaController {
 public:
  AlphaController(const ControllerOptions& options, double target);
  // α for a measurement taken dt seconds after the previous call (dt ignored on the first call).
  double update(double measured, double dt);
  double integral() const { return integral_; }

 private:
  ControllerOptions options_;
  double target_;
  double integral_ = 0, previous_error_ = 0;
  bool started_ = false;
};

}  // namespace vlascope
