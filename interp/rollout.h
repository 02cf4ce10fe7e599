// Closed-loop rollouts of a policy on any Robot (the simulator or the real SO-100): the one control loop that eval,
// attention, steering and sim-vs-real experiments share.
//
//   observe → state in LeRobot units (hardware/units.h) + camera frames → policy.select_action → radians → act
//
// Every step is recorded (time, joints, targets, end-effector pose, and the simulator's task state when there is
// one), so the lift segment and heights are computed the same way in both worlds.
#pragma once

#include <array>
#include <cstdint>
#include <functional>
#include <optional>
#include <string>
#include <vector>

#include "hardware/robot.h"
#include "hardware/units.h"
#include "interp/lift_segment.h"
#include "policy/policy.h"

namespace vlascope {

struct RolloutOptions {
  std::string task = "pick up the cube and lift it";
  double max_seconds = 15;            // the episode ends here at the latest
  double stop_after_success_s = 2.0;  // …or this long after the simulator first reports success (< 0: never)
  UnitMapping units;                  // LeRobot units ↔ the robot interface's radians
};

struct RolloutStep {
  double time = 0;                   // s, the observation's timestamp
  JointVector joints{};              // rad, observed
  JointVector target{};              // rad, sent
  std::array<float, 6> state{};      // LeRobot units, what the policy saw
  std::array<float, 6> action{};     // LeRobot units, what it answered
  Pose end_effector;
  bool model_ran = false;            // this step computed a new action chunk
  double model_seconds = 0;          // …and it took this long
  std::optional<TaskState> task;     // simulator only
};

struct RolloutResult {
  uint64_t seed = 0;
  std::vector<RolloutStep> steps;
  bool success = false;           // simulator: cube lifted and held (SuccessCriteria); real arm: false (unknown)
  bool success_known = false;     // the robot reports task state
  double success_time = -1;       // s, first step with success
  double cube_start_z = 0, max_cube_lift = 0;  // simulator: metres the cube rose at most
  double seconds = 0;             // episode length (simulated time)
  double wall_seconds = 0;
  int model_calls = 0;
  double model_seconds = 0;       // total time in the policy

  EeTrajectory ee_trajectory() const;  // for interp/lift_segment.h
};

// Called at every step after the policy answered and before the targets are sent (so the robot is still in the
// observed state: a simulator can render it), with the observation and the filled step; returning false ends the
// episode. Live views, capture, figures and videos hang here.
using RolloutObserver = std::function<bool(int index, const Observation& observation, const RolloutStep& step)>;

// One episode: robot.reset(seed), policy.reset(seed), then the loop. The robot is stopped (robot.stop()) on
// every exit, errors included.
RolloutResult run_rollout(Robot& robot, Policy& policy, uint64_t seed, const RolloutOptions& options = {},
                          const RolloutObserver& observer = {});

}  // namespace vlascope
