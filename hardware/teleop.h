// Teleoperation: the follower copies the leader, tick by tick, in LeRobot units (as LeRobot's teleoperate
// does), through the follower's safety chain (limits, step limit, watchdog, Ctrl-C).
#pragma once

#include <functional>

#include "hardware/so100_follower.h"
#include "hardware/so100_leader.h"

namespace vlascope {

struct TeleopTick {
  int index = 0;
  double time = 0;         // seconds since teleoperation started
  JointVector leader{};    // LeRobot units
  JointVector follower{};  // LeRobot units, the follower's reading this tick
  const Observation* observation = nullptr;  // with TeleopOptions::observe: the follower's whole observation
};

struct TeleopOptions {
  double duration_s = 0;                           // 0: until Ctrl-C (stop_requested()) or on_tick returns false
  std::function<bool(const TeleopTick&)> on_tick;  // e.g. recording, printing; false stops
  // Read the follower through Robot::observe() (joints, end effector, camera frames) instead of joints only,
  // so that a recording sees exactly the state the follower was in when it was sent the leader's position.
  bool observe = false;
};

struct TeleopStats {
  int ticks = 0;
  double seconds = 0;
  double max_tracking_error = 0;  // LeRobot units, largest |leader − follower| seen on any joint
};

TeleopStats run_teleop(So100Leader& leader, So100Follower& follower, const TeleopOptions& options = {});

}  // namespace vlascope
